//! `pummel demo`: the built-in stepped test runs by itself and writes its document.

use std::time::Duration;

use crate::support::{self, count, num};

#[test]
fn demo_runs_three_steps() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "demo.json");
    let out = support::spawn(&["demo", "--step", "1s", "-o", &file, "--plain"], Some(dir.path()))
        .wait(Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    assert!(out.elapsed < Duration::from_secs(15), "demo with 1 s steps took {:?}", out.elapsed);
    let doc = support::read_json(&path);
    support::assert_valid_results(&doc);
    let stages = doc["summary"]["stages"].as_array().expect("stages");
    let rates: Vec<f64> = stages.iter().map(|s| num(s, "/target_rate")).collect();
    assert_eq!(rates, vec![200.0, 1000.0, 5000.0]);
    for stage in stages {
        let rate = num(stage, "/target_rate");
        let completed = count(stage, "/completed") as f64;
        assert!((completed - rate).abs() <= rate * 0.05, "a 1 s step at {rate} req/s completed {completed}: {stage}");
        assert_eq!(count(stage, "/failed"), 0, "{stage}");
    }
    assert_eq!(doc["summary"]["thresholds"][0]["pass"], true);
    assert!(!dir.path().join("pummel-demo.json").exists(), "-o must replace the default file name");
}
