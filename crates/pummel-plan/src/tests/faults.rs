//! `[[fault]]` and `[proxy.NAME]` (issue 13): what a valid one becomes, and each mistake at its
//! line:col.

use std::time::Duration;

use pummel_faults::{Action, ProcessTarget, ProxyEffect};

use super::{BASE, short, valid};

#[test]
fn faults_and_proxies_are_read() {
    let text = format!(
        r#"{BASE}
[proxy.db]
listen = "15432"
upstream = "127.0.0.1:5432"

[[fault]]
name = "db down"
at = "30s"
for = "10s"
proxy = "db"
down = true

[[fault]]
at = "1m"
proxy = "db"
toxic = {{ type = "latency", latency = 200, jitter = 10, stream = "both" }}

[[fault]]
at = "5s"
for = "2s"
signal = "STOP"
port = 8080

[[fault]]
at = "5s"
for = "2s"
kill = true
pid = 4321
restart = "pummel sink --listen 127.0.0.1:8090"

[[fault]]
at = "9s"
exec = "tc qdisc add dev lo root netem delay 100ms"
undo = "tc qdisc del dev lo root"
"#
    );
    let spec = valid(&text);
    let plan = &spec.faults;
    assert_eq!(plan.proxies.len(), 1);
    assert_eq!(
        (plan.proxies[0].listen.as_str(), plan.proxies[0].upstream.as_str()),
        ("127.0.0.1:15432", "127.0.0.1:5432")
    );
    let f = &plan.faults;
    assert_eq!(f.len(), 5);
    assert_eq!(
        (f[0].name.as_str(), f[0].at, f[0].length),
        ("db down", Duration::from_secs(30), Some(Duration::from_secs(10)))
    );
    assert!(matches!(f[0].action, Action::Proxy { effect: ProxyEffect::Down, .. }));
    match &f[1].action {
        Action::Proxy { effect: ProxyEffect::Toxics(toxics), .. } => assert_eq!(toxics.len(), 2, "one each way"),
        other => panic!("{other:?}"),
    }
    assert_eq!((f[1].name.as_str(), f[1].length), ("db latency", None));
    assert!(matches!(f[2].action, Action::Stop { target: ProcessTarget::Port(8080) }));
    assert!(matches!(f[3].action, Action::Kill { target: ProcessTarget::Pid(4321), restart: Some(_) }));
    assert!(matches!(f[4].action, Action::Exec { undo: Some(_), .. }));
    let plan = spec.to_plan(1).expect("an engine plan");
    assert_eq!(plan.faults.faults.len(), 5);
}

#[test]
fn fault_mistakes_point_at_their_key() {
    let text = format!(
        r#"{BASE}
[proxy.web]
listen = "127.0.0.1:18080"

[[fault]]
at = "3x"
proxy = "web"
down = true

[[fault]]
at = "2s"
signal = "TERM"
pid = 1234

[[fault]]
at = "2s"
kill = true

[[fault]]
at = "2s"
proxy = "cache"
down = true

[[fault]]
at = "2s"
proxy = "web"
toxic = {{ type = "latency", jitter = 5 }}

[[fault]]
name = "same"
at = "1s"
exec = "true"

[[fault]]
name = "same"
at = "2s"
exec = "true"
"#
    );
    let lines = short(&text);
    let want = [
        "plan.toml:9:1: error: [proxy.web] needs upstream",
        "plan.toml:13:6: error: [[fault]]: at: invalid duration \"3x\"",
        "plan.toml:19:10: error: [[fault]]: signal=TERM: only STOP is supported",
        "plan.toml:23:1: error: [[fault]]: kill needs the process: pid=N or port=N",
        "plan.toml:28:9: error: [[fault]]: proxy \"cache\" is not defined (defined: web)",
        "plan.toml:34:9: error: [[fault]]: \"web:latency:jitter=5\": latency needs latency=N (milliseconds)",
        "plan.toml:42:8: error: a second fault named \"same\"",
    ];
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "{lines:#?}\n{line}\n  does not start with\n{want}");
    }
}

#[test]
fn the_steady_state_is_the_users_when_given() {
    let spec = valid(&format!("steady_state = \"error_rate=5% p99_factor=3\"\n{BASE}"));
    let steady = spec.faults.steady_state.expect("set");
    assert_eq!((steady.max_error_rate, steady.p99_factor, steady.min_ok_share), (0.05, 3.0, 0.5));
    assert!(valid(BASE).faults.steady_state.is_none(), "issue 13's defaults otherwise");
    let lines = short(&format!("steady_state = \"error_rate=5\"\n{BASE}"));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("plan.toml:1:16: error: steady_state: error_rate=5: expected a percentage"),
        "{lines:?}"
    );
}
