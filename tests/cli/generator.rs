//! The generator's self-check (`summary.generator`): it must not blame pummel when pummel was
//! idle, or users stop trusting it when it is right.

use std::time::Duration;

use crate::support::{self, Sink, count, num};

/// Three requests against an idle sink cannot have been limited by pummel's CPU, so no
/// bottleneck may be reported, and the CPU share behind that verdict cannot exceed 100 %.
#[test]
fn short_run_reports_no_generator_bottleneck() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(&["run", &sink.url("/"), "-n", "3", "-c", "1", "--json"], Duration::from_secs(20));
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 3);
    let generator = &summary["generator"];
    assert_eq!(
        generator["bottleneck"],
        serde_json::Value::Null,
        "a 3-request run was reported as limited by the generator ({} CPU s over {} s measured on {} thread(s))",
        num(generator, "/cpu_seconds"),
        num(&summary, "/duration_s"),
        count(generator, "/threads"),
    );
}
