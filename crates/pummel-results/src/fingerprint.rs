//! The identity of a plan: one short hash that every segment of one plan shares.
//!
//! `pummel merge` must refuse to join documents of different plans, and a results document
//! holds the plan as pummel understood it (every template compiled, every variable set, every
//! flag applied). Its fingerprint is a SHA-256 of that plan with the parts that legitimately
//! differ between the processes that run one plan's segments taken out: which segment it is,
//! its threads, its seed (drawn afresh per process unless `--seed` is given), its observers
//! (probes and target watch run beside the load, often on one machine only), its source
//! addresses and request log (per machine), and the addresses and DNS time its target names
//! resolved to. Everything else — scenarios, flows, rates, users, durations, thresholds,
//! timeouts, statuses, faults — is the plan, and changing any of it changes the fingerprint.
//! (Flags that do not shape the plan, such as `-o`, `--json` or `--start-at`, never reach it.)

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keys of the plan that may differ between the processes that run one plan's segments.
pub const PER_PROCESS_KEYS: [&str; 6] = ["segment", "threads", "seed", "observers", "source_addrs", "request_log"];

/// Keys of a target that are what its name resolved to, not what the plan says.
const RESOLVED_KEYS: [&str; 2] = ["addrs", "dns_time"];

/// Hex digits of the SHA-256 kept: 64 bits tell plans apart well enough, and stay readable.
const DIGITS: usize = 16;

/// The fingerprint of `plan` (the `plan` of a results document): `sha256:` and 16 hex digits
/// of its [`plan_identity`].
pub fn plan_fingerprint(plan: &Value) -> String {
    // serde_json writes a `Value` the same way every time: the same plan, the same bytes.
    let digest = Sha256::digest(plan_identity(plan).to_string().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}", &hex[..DIGITS])
}

/// `plan` without what may differ between the processes that run its segments: what its
/// fingerprint is made of, and what a refusal compares to say where two plans differ.
pub fn plan_identity(plan: &Value) -> Value {
    let mut plan = plan.clone();
    if let Value::Object(map) = &mut plan {
        for key in PER_PROCESS_KEYS {
            map.remove(key);
        }
        strip_resolved(map.get_mut("target"));
        if let Some(Value::Array(others)) = map.get_mut("other_targets") {
            for other in others {
                strip_resolved(other.get_mut("target"));
            }
        }
    }
    plan
}

fn strip_resolved(target: Option<&mut Value>) {
    if let Some(Value::Object(target)) = target {
        for key in RESOLVED_KEYS {
            target.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(rate: f64, segment: &str, threads: u64, port: u16) -> Value {
        json!({
            "target": { "url": "http://localhost:8090/", "addrs": [format!("127.0.0.1:{port}")], "dns_time": 0.001 },
            "scenarios": { "list": [ { "name": "default", "load": { "open": { "rate": rate } } } ] },
            "thresholds": ["p99<250ms"],
            "segment": segment,
            "threads": threads,
            "seed": threads * 7,
        })
    }

    #[test]
    fn segments_of_one_plan_share_it() {
        let a = plan_fingerprint(&plan(100.0, "1/3", 2, 8090));
        assert_eq!(a, plan_fingerprint(&plan(100.0, "2/3", 8, 8090)), "segment, threads and seed are per process");
        assert_eq!(a, plan_fingerprint(&plan(100.0, "1/3", 2, 9999)), "resolved addresses are not the plan");
        assert!(a.starts_with("sha256:") && a.len() == 7 + DIGITS, "{a}");
    }

    #[test]
    fn a_change_of_the_plan_changes_it() {
        let a = plan_fingerprint(&plan(100.0, "1/3", 2, 8090));
        assert_ne!(a, plan_fingerprint(&plan(101.0, "1/3", 2, 8090)));
        let mut other = plan(100.0, "1/3", 2, 8090);
        other["thresholds"] = json!(["p99<200ms"]);
        assert_ne!(a, plan_fingerprint(&other), "thresholds are part of the plan");
    }
}
