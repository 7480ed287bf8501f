//! The `--fault` grammar, and the one builder that plan files share with it.
//!
//! ```text
//! --fault 'at=30s for=10s signal=STOP pid=1234'
//! --fault 'at=5s for=2s kill port=8090 restart="pummel sink --listen 127.0.0.1:8090"'
//! --fault 'at=5s for=2s proxy=web listen=127.0.0.1:18080 upstream=127.0.0.1:8080 down'
//! --fault 'at=5s for=3s proxy=web listen=18080 upstream=8080 toxic=latency:latency=200,jitter=10'
//! --fault 'name=netem at=10s exec="tc qdisc add ..." undo="tc qdisc del ..."'
//! ```
//!
//! Words are `key=value`, separated by spaces; a value with spaces is quoted with `'` or `"`.
//! `down` and `kill` stand alone (or `=true`). The keys are those of a `[[fault]]` table
//! (`at`, `for`, `name`, `proxy`, `toxic`, `down`, `pid`, `port`, `signal`, `kill`, `restart`,
//! `exec`, `undo`), plus `listen` and `upstream`, which define the proxy on the command line
//! as a plan's `[proxy.NAME]` does. A toxic is `TYPE[:KEY=VALUE,...]` in `pummel proxy
//! --toxic`'s form (toxiproxy's attributes and units, plus `stream`, `toxicity`, `name`).
//!
//! [`FaultFields::build`] checks a fault's keys together (exactly one action, keys that
//! belong to it) for both forms; its errors name the key they are about, so a plan file can
//! point at it.

use pummel_proxy::quick;
use pummel_results::duration::parse_duration;

use crate::spec::{Action, Fault, ProcessTarget, ProxyDef, ProxyEffect};

/// The keys of one fault as written, not interpreted yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultFields {
    /// `name`: how output and results call it (a default is made from its action).
    pub name: Option<String>,
    /// `at`: when it starts, a duration from the run's start.
    pub at: Option<String>,
    /// `for`: how long it lasts (until the run's end when absent).
    pub length: Option<String>,
    /// `proxy`: the proxy it changes.
    pub proxy: Option<String>,
    /// `listen` (command line): where that proxy listens.
    pub listen: Option<String>,
    /// `upstream` (command line): where that proxy connects.
    pub upstream: Option<String>,
    /// `toxic`: `TYPE[:KEY=VALUE,...]`.
    pub toxic: Option<String>,
    /// `down`: the proxy goes down.
    pub down: bool,
    /// `pid`: the process to act on.
    pub pid: Option<String>,
    /// `port`: act on the processes listening on this port.
    pub port: Option<String>,
    /// `signal`: `STOP` (SIGCONT when the fault ends).
    pub signal: Option<String>,
    /// `kill`: SIGKILL the process.
    pub kill: bool,
    /// `restart`: the command that starts it again when the fault ends.
    pub restart: Option<String>,
    /// `exec`: a command to run at the start.
    pub exec: Option<String>,
    /// `undo`: the command to run at the end.
    pub undo: Option<String>,
}

/// A mistake in a fault's keys, about one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The key it is about (`at`, `signal`, ...), or `""` for the fault as a whole.
    pub key: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { key, message: message.into() }
}

/// Every key of the grammar, for messages.
const KEYS: &str = "at, for, name, proxy, listen, upstream, toxic, down, pid, port, signal, kill, restart, exec, undo";

/// Parses one `--fault` value into its fault and, with `listen`/`upstream`, the proxy it
/// defines; `proxies` are those defined by earlier `--fault`s. Errors say what is expected.
pub fn parse_fault(text: &str, proxies: &[ProxyDef]) -> Result<(Fault, Option<ProxyDef>), String> {
    let fields = fields(text)?;
    let mut known = proxies.to_vec();
    let defined = match (&fields.listen, &fields.upstream, &fields.proxy) {
        (None, None, _) => None,
        (Some(listen), Some(upstream), Some(name)) => {
            let listen = quick::address(listen).map_err(|e| format!("listen={listen}: {e}"))?;
            let upstream = quick::address(upstream).map_err(|e| format!("upstream={upstream}: {e}"))?;
            if known.iter().any(|p| p.name == *name) {
                return Err(format!("proxy={name} is defined twice (give listen= and upstream= once)"));
            }
            let def = ProxyDef { name: name.clone(), listen, upstream };
            known.push(def.clone());
            Some(def)
        }
        (_, _, None) => return Err("listen= and upstream= define a proxy: add proxy=NAME".into()),
        _ => return Err("a proxy needs both listen=ADDRESS and upstream=ADDRESS".into()),
    };
    let fault = fields.build(&known).map_err(|e| e.message)?;
    Ok((fault, defined))
}

/// The words of `text` as fields.
fn fields(text: &str) -> Result<FaultFields, String> {
    let mut out = FaultFields::default();
    let words = split_words(text)?;
    if words.is_empty() {
        return Err("it is empty (expected e.g. 'at=30s for=10s signal=STOP pid=1234')".into());
    }
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in words {
        if seen.contains(&key) {
            return Err(format!("{key} is given twice"));
        }
        seen.push(key.clone());
        let flag = |value: Option<String>| match value.as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!("{key}={other}: expected {key} alone, {key}=true or {key}=false")),
        };
        let slot = match key.as_str() {
            "down" => {
                out.down = flag(value)?;
                continue;
            }
            "kill" => {
                out.kill = flag(value)?;
                continue;
            }
            "name" => &mut out.name,
            "at" => &mut out.at,
            "for" => &mut out.length,
            "proxy" => &mut out.proxy,
            "listen" => &mut out.listen,
            "upstream" => &mut out.upstream,
            "toxic" => &mut out.toxic,
            "pid" => &mut out.pid,
            "port" => &mut out.port,
            "signal" => &mut out.signal,
            "restart" => &mut out.restart,
            "exec" => &mut out.exec,
            "undo" => &mut out.undo,
            _ => return Err(format!("unknown key {key:?} (known: {KEYS})")),
        };
        match value {
            Some(v) if !v.is_empty() => *slot = Some(v),
            _ => return Err(format!("{key} needs a value: {key}=...")),
        }
    }
    Ok(out)
}

/// `key=value` words separated by whitespace; a value may be quoted (`'...'` or `"..."`).
fn split_words(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return Err("a word starts with '=' (expected key=value)".into());
        }
        if chars.next_if_eq(&'=').is_none() {
            words.push((key, None));
            continue;
        }
        let mut value = String::new();
        match chars.next_if(|c| *c == '\'' || *c == '"') {
            Some(quote) => {
                loop {
                    match chars.next() {
                        Some(c) if c == quote => break,
                        Some(c) => value.push(c),
                        None => return Err(format!("{key}=: the quote {quote} is not closed")),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(format!("{key}=: a space is expected after the closing quote"));
                }
            }
            None => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    value.push(c);
                }
            }
        }
        words.push((key, Some(value)));
    }
}

impl FaultFields {
    /// The fault these keys describe; `proxies` are the proxies the run starts.
    pub fn build(&self, proxies: &[ProxyDef]) -> Result<Fault, FieldError> {
        let at_text = self.at.as_deref().ok_or_else(|| err("at", "a fault needs at=DURATION (when it starts)"))?;
        let at = parse_duration(at_text)
            .map_err(|e| err("at", format!("at: invalid duration {at_text:?}: {}", e.reason)))?;
        let length = match self.length.as_deref() {
            None => None,
            Some(text) => match parse_duration(text) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => return Err(err("for", "for must be longer than 0s (leave it out: until the end)")),
                Err(e) => return Err(err("for", format!("for: invalid duration {text:?}: {}", e.reason))),
            },
        };
        let actions: Vec<&'static str> = [
            ("proxy", self.proxy.is_some()),
            ("signal", self.signal.is_some()),
            ("kill", self.kill),
            ("exec", self.exec.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        let action = match actions.as_slice() {
            [] => {
                return Err(err(
                    "",
                    "a fault needs one action: proxy=NAME (with toxic or down), signal=STOP, kill or exec=COMMAND",
                ));
            }
            [_, second, ..] => {
                return Err(err(second, format!("a fault has one action; this one has {}", actions.join(" and "))));
            }
            ["proxy"] => self.proxy_action(proxies)?,
            ["signal"] => {
                let signal = self.signal.as_deref().unwrap_or_default();
                let bare = signal.trim().to_ascii_uppercase();
                if bare != "STOP" && bare != "SIGSTOP" {
                    return Err(err(
                        "signal",
                        format!(
                            "signal={signal}: only STOP is supported (SIGCONT is sent when the fault ends); use kill for SIGKILL"
                        ),
                    ));
                }
                self.only_with("signal=STOP", &[("restart", self.restart.is_some())])?;
                Action::Stop { target: self.process_target("signal")? }
            }
            ["kill"] => Action::Kill { target: self.process_target("kill")?, restart: self.restart.clone() },
            _ => {
                let command = self.exec.clone().unwrap_or_default();
                Action::Exec { command, undo: self.undo.clone() }
            }
        };
        let allowed: &[&str] = match &action {
            Action::Proxy { .. } => &["toxic", "down"],
            Action::Stop { .. } => &["pid", "port"],
            Action::Kill { .. } => &["pid", "port", "restart"],
            Action::Exec { .. } => &["undo"],
        };
        let stray = [
            ("toxic", self.toxic.is_some()),
            ("down", self.down),
            ("pid", self.pid.is_some()),
            ("port", self.port.is_some()),
            ("restart", self.restart.is_some()),
            ("undo", self.undo.is_some()),
        ]
        .into_iter()
        .find(|(key, on)| *on && !allowed.contains(key));
        if let Some((key, _)) = stray {
            let belongs = match key {
                "toxic" | "down" => "proxy=NAME",
                "pid" | "port" => "signal=STOP or kill",
                "restart" => "kill",
                _ => "exec=COMMAND",
            };
            return Err(err(key, format!("{key} goes with {belongs}, not with {}", actions[0])));
        }
        let name = self.name.clone().unwrap_or_else(|| default_name(&action));
        Ok(Fault { name, at, length, action })
    }

    fn only_with(&self, what: &str, keys: &[(&'static str, bool)]) -> Result<(), FieldError> {
        match keys.iter().find(|(_, on)| *on) {
            Some((key, _)) => Err(err(key, format!("{key} does not go with {what}"))),
            None => Ok(()),
        }
    }

    fn proxy_action(&self, proxies: &[ProxyDef]) -> Result<Action, FieldError> {
        let proxy = self.proxy.clone().unwrap_or_default();
        if !proxies.iter().any(|p| p.name == proxy) {
            let known: Vec<&str> = proxies.iter().map(|p| p.name.as_str()).collect();
            let hint = if known.is_empty() {
                "no proxy is defined: add [proxy.NAME] in a plan, or listen= and upstream= on the command line"
                    .to_string()
            } else {
                format!("defined: {}", known.join(", "))
            };
            return Err(err("proxy", format!("proxy {proxy:?} is not defined ({hint})")));
        }
        let effect = match (&self.toxic, self.down) {
            (Some(_), true) => return Err(err("down", "a proxy fault is a toxic or down, not both")),
            (None, false) => return Err(err("proxy", "a proxy fault needs toxic=TYPE[:KEY=VALUE,...] or down")),
            (None, true) => ProxyEffect::Down,
            (Some(toxic), false) => {
                let (_, toxics) = quick::parse_toxic(&format!("{proxy}:{toxic}")).map_err(|e| err("toxic", e))?;
                ProxyEffect::Toxics(toxics)
            }
        };
        Ok(Action::Proxy { proxy, effect })
    }

    fn process_target(&self, action: &str) -> Result<ProcessTarget, FieldError> {
        let own = std::process::id();
        match (&self.pid, &self.port) {
            (Some(_), Some(_)) => Err(err("port", "give pid or port, not both")),
            (None, None) => {
                Err(err("", format!("{action} needs the process: pid=N or port=N (the process listening on it)")))
            }
            (Some(pid), None) => match pid.trim().parse::<u32>() {
                Ok(0 | 1) => Err(err("pid", format!("pid={pid}: pummel does not signal PID 0 or 1"))),
                Ok(p) if p == own => Err(err("pid", format!("pid={pid} is pummel itself"))),
                Ok(p) => Ok(ProcessTarget::Pid(p)),
                Err(_) => Err(err("pid", format!("pid={pid}: expected a process id, e.g. pid=1234"))),
            },
            (None, Some(port)) => match port.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(ProcessTarget::Port(p)),
                _ => Err(err("port", format!("port={port}: expected a TCP port from 1 to 65535"))),
            },
        }
    }
}

/// `db down`, `db latency`, `STOP port 8080`, `kill pid 1234`, `exec`.
fn default_name(action: &Action) -> String {
    match action {
        Action::Proxy { proxy, effect: ProxyEffect::Down } => format!("{proxy} down"),
        Action::Proxy { proxy, effect: ProxyEffect::Toxics(toxics) } => {
            format!("{proxy} {}", toxics.first().map_or("toxic", |t| t.kind.type_name()))
        }
        Action::Stop { target } => format!("STOP {target}"),
        Action::Kill { target, .. } => format!("kill {target}"),
        Action::Exec { .. } => "exec".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ok(text: &str) -> Fault {
        parse_fault(text, &[]).unwrap_or_else(|e| panic!("{text}: {e}")).0
    }

    fn bad(text: &str) -> String {
        match parse_fault(text, &[]) {
            Ok((fault, _)) => panic!("{text} parsed as {fault:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_issues_examples_parse() {
        let f = ok("at=30s for=10s signal=STOP pid=1234");
        assert_eq!((f.at, f.length), (Duration::from_secs(30), Some(Duration::from_secs(10))));
        assert!(matches!(f.action, Action::Stop { target: ProcessTarget::Pid(1234) }));
        assert_eq!(f.name, "STOP pid 1234");
        let f = ok("at=5s  for=2s kill port=8090 restart='pummel sink --listen 127.0.0.1:8090' name=sink");
        assert_eq!(f.name, "sink");
        match f.action {
            Action::Kill { target, restart } => {
                assert_eq!(target, ProcessTarget::Port(8090));
                assert_eq!(restart.as_deref(), Some("pummel sink --listen 127.0.0.1:8090"));
            }
            other => panic!("{other:?}"),
        }
        let f = ok(r#"at=1m exec="tc qdisc add dev lo root netem delay 100ms" undo="tc qdisc del dev lo root""#);
        assert_eq!((f.at, f.length), (Duration::from_secs(60), None), "no for: until the end");
        assert!(matches!(f.action, Action::Exec { undo: Some(_), .. }));
    }

    #[test]
    fn proxies_are_defined_on_the_command_line_and_referred_to_later() {
        let (f, def) = parse_fault("at=5s for=2s proxy=web listen=18080 upstream=8080 down", &[]).unwrap();
        let def = def.expect("a proxy is defined");
        assert_eq!((def.listen.as_str(), def.upstream.as_str()), ("127.0.0.1:18080", "127.0.0.1:8080"));
        assert_eq!(f.name, "web down");
        let (f, again) =
            parse_fault("at=9s proxy=web toxic=latency:latency=200,jitter=10", std::slice::from_ref(&def)).unwrap();
        assert!(again.is_none());
        match f.action {
            Action::Proxy { effect: ProxyEffect::Toxics(toxics), .. } => {
                assert_eq!(toxics[0].kind, pummel_proxy::ToxicKind::Latency { latency: 200, jitter: 10 });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.name, "web latency");
        let twice = parse_fault("at=1s proxy=web listen=1 upstream=2 down", &[def]).unwrap_err();
        assert!(twice.contains("defined twice"), "{twice}");
    }

    #[test]
    fn mistakes_say_what_is_expected() {
        let cases = [
            ("", "empty"),
            ("for=2s signal=STOP pid=5", "needs at=DURATION"),
            ("at=3x signal=STOP pid=5", "at: invalid duration \"3x\""),
            ("at=1s for=0s signal=STOP pid=5", "for must be longer than 0s"),
            ("at=1s", "needs one action"),
            ("at=1s signal=STOP kill pid=5", "one action; this one has signal and kill"),
            ("at=1s signal=TERM pid=5", "only STOP is supported"),
            ("at=1s signal=STOP", "needs the process: pid=N or port=N"),
            ("at=1s signal=STOP pid=5 port=6", "pid or port, not both"),
            ("at=1s signal=STOP pid=x", "expected a process id"),
            ("at=1s signal=STOP pid=1", "does not signal PID 0 or 1"),
            ("at=1s kill port=70000", "from 1 to 65535"),
            ("at=1s signal=STOP pid=5 restart=x", "restart does not go with signal=STOP"),
            ("at=1s exec=true pid=5", "pid goes with signal=STOP or kill"),
            ("at=1s kill pid=5 undo=x", "undo goes with exec=COMMAND"),
            ("at=1s proxy=db down", "proxy \"db\" is not defined"),
            ("at=1s proxy=db listen=1 upstream=2", "needs toxic=TYPE"),
            ("at=1s proxy=db listen=1 upstream=2 down toxic=latency:latency=1", "toxic or down, not both"),
            ("at=1s proxy=db listen=1 upstream=2 toxic=lag", "unknown toxic type"),
            ("at=1s proxy=db listen=1 upstream=2 toxic=latency", "latency needs latency=N"),
            ("at=1s proxy=db listen=1 down", "both listen=ADDRESS and upstream=ADDRESS"),
            ("at=1s listen=1 upstream=2 down", "add proxy=NAME"),
            ("at=1s colour=red", "unknown key \"colour\""),
            ("at=1s at=2s", "at is given twice"),
            ("at= signal=STOP pid=5", "at needs a value"),
            ("at=1s down=maybe", "expected down alone"),
            ("at=1s exec='echo", "quote ' is not closed"),
            ("at=1s exec='echo'x", "space is expected after the closing quote"),
            ("=1s", "starts with '='"),
        ];
        for (text, want) in cases {
            let got = bad(text);
            assert!(got.contains(want), "{text:?}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn errors_name_their_key_for_plan_files() {
        let fields = FaultFields { at: Some("1s".into()), signal: Some("HUP".into()), ..FaultFields::default() };
        assert_eq!(fields.build(&[]).unwrap_err().key, "signal");
        let fields =
            FaultFields { at: Some("1s".into()), kill: true, exec: Some("x".into()), ..FaultFields::default() };
        assert_eq!(fields.build(&[]).unwrap_err().key, "exec");
    }
}
