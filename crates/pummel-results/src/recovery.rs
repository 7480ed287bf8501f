//! Recovery, measured: how long the target took to notice each fault and to come back.
//!
//! A pure function of the timeline and the faults' windows ([`judge`]). Each second is judged
//! in or out of *steady state* ([`SteadyState`]): by default its error rate is at most 1 %, its
//! p99 at most twice the baseline's (or the baseline's plus 20 ms, whichever is more, so
//! that a scheduler hiccup on a busy machine over a sub-millisecond loopback baseline is not
//! an outage), and it carried at least half the
//! baseline's successful answers (a stalled target fails nothing and has no latency until it
//! answers). The baseline is the seconds before the first fault (warmup excluded).
//!
//! Per fault, with second `s` covering `(s-1, s]` of the run:
//! - *time to detect*: from its start to the start of the first bad second that ends after it
//!   began and starts before it ended (0 when the second it began in is already bad);
//! - *time to recover*: from its end to the start of the first of three consecutive good
//!   seconds that end after it (0 when the second it ended in starts a good run); none when
//!   the run ended first ("did not recover");
//! - *cost*: the failed requests and the successful answers short of the baseline rate over
//!   the seconds from its start up to that recovery (or the run's end).

use crate::fault::{FaultWindow, Recovery, SteadyState};
use crate::timeline::TimelineEntry;

/// Consecutive good seconds that make a recovery.
pub const GOOD_RUN: usize = 3;

/// Judges every fault of `windows` (one result each, in order; `None` for a fault that never
/// began) over `timeline`, against `steady` with its baseline measured here.
pub fn judge(
    timeline: &[TimelineEntry],
    windows: &[FaultWindow],
    steady: SteadyState,
) -> (SteadyState, Vec<Option<Recovery>>) {
    let first_start = windows.iter().filter_map(|w| w.started_s).reduce(f64::min);
    let steady = with_baseline(steady, timeline, first_start);
    let recoveries = windows
        .iter()
        .map(|w| {
            let start = w.started_s?;
            let end = if w.undone_at_exit { None } else { w.ended_s };
            Some(one(timeline, &steady, start, end, w.ended_s))
        })
        .collect();
    (steady, recoveries)
}

/// `steady` with its baseline: the seconds wholly before `first_start` (all of them when no
/// fault began), warmup excluded.
fn with_baseline(mut steady: SteadyState, timeline: &[TimelineEntry], first_start: Option<f64>) -> SteadyState {
    let before: Vec<&TimelineEntry> = timeline
        .iter()
        .filter(|e| !e.warmup && first_start.is_none_or(|start| e.second as f64 <= start + 1e-9))
        .collect();
    steady.baseline_seconds = before.len() as u64;
    if before.is_empty() {
        return steady;
    }
    steady.baseline_rate = Some(before.iter().map(|e| e.ok as f64).sum::<f64>() / before.len() as f64);
    let mut p99s: Vec<f64> = before.iter().filter_map(|e| e.latency_ms.map(|l| l.p99)).collect();
    p99s.sort_by(f64::total_cmp);
    steady.baseline_p99_ms = p99s.get(p99s.len() / 2).copied();
    steady
}

/// True when `entry` is in steady state.
pub fn is_good(entry: &TimelineEntry, steady: &SteadyState) -> bool {
    if entry.completed > 0 && entry.failed as f64 / entry.completed as f64 > steady.max_error_rate {
        return false;
    }
    if let (Some(latency), Some(base)) = (entry.latency_ms, steady.baseline_p99_ms) {
        if latency.p99 > (base * steady.p99_factor).max(base + steady.p99_slack_ms) {
            return false;
        }
    }
    match steady.baseline_rate {
        Some(rate) if rate > 0.0 => entry.ok as f64 >= rate * steady.min_ok_share,
        _ => true,
    }
}

/// One fault that began at `start` and was undone at `end` by its own `for` (`None`: the run
/// ended while it was on, so it cannot have recovered); `until` bounds its detection.
fn one(timeline: &[TimelineEntry], steady: &SteadyState, start: f64, end: Option<f64>, until: Option<f64>) -> Recovery {
    let opens = |e: &TimelineEntry| (e.second - 1) as f64;
    let detect_s = timeline
        .iter()
        .filter(|e| e.second as f64 > start && until.is_none_or(|u| opens(e) < u))
        .find(|e| !is_good(e, steady))
        .map(|e| (opens(e) - start).max(0.0));
    let recovered_at = end.and_then(|end| {
        let after: Vec<&TimelineEntry> = timeline.iter().filter(|e| e.second as f64 > end).collect();
        after
            .windows(GOOD_RUN)
            .find(|run| {
                run.iter().all(|e| is_good(e, steady)) && run.windows(2).all(|p| p[1].second == p[0].second + 1)
            })
            .map(|run| run[0].second)
    });
    let recover_s = match (end, recovered_at) {
        (Some(end), Some(second)) => Some(((second - 1) as f64 - end).max(0.0)),
        _ => None,
    };
    let cost: Vec<&TimelineEntry> =
        timeline.iter().filter(|e| e.second as f64 > start && recovered_at.is_none_or(|r| e.second < r)).collect();
    let ok: u64 = cost.iter().map(|e| e.ok).sum();
    let expected = steady.baseline_rate.unwrap_or(0.0) * cost.len() as f64;
    Recovery {
        detect_s,
        recover_s,
        failed: cost.iter().map(|e| e.failed).sum(),
        deficit: (expected - ok as f64).max(0.0).round() as u64,
        bad_seconds: cost.iter().filter(|e| !is_good(e, steady)).count() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::TimelineLatency;

    /// A second with `ok` answers, `failed` failures and a p99 of `p99` ms.
    fn second(second: u64, ok: u64, failed: u64, p99: f64) -> TimelineEntry {
        TimelineEntry {
            second,
            ok,
            failed,
            completed: ok + failed,
            latency_ms: (ok > 0).then_some(TimelineLatency { p50: p99 / 2.0, p90: p99, p99, max: p99 }),
            ..TimelineEntry::default()
        }
    }

    fn window(start: f64, end: f64) -> FaultWindow {
        FaultWindow {
            name: "db".into(),
            action: "proxy db down".into(),
            started_s: Some(start),
            ended_s: Some(end),
            undone_at_exit: false,
            error: None,
        }
    }

    /// 100 ok/s at p99 20 ms, except the seconds in `bad` (all failures).
    fn timeline(seconds: u64, bad: &[u64]) -> Vec<TimelineEntry> {
        (1..=seconds).map(|s| if bad.contains(&s) { second(s, 0, 100, 0.0) } else { second(s, 100, 0, 20.0) }).collect()
    }

    #[test]
    fn an_outage_is_detected_and_its_recovery_timed() {
        // Fault from 5.0 to 7.0: seconds 6 and 7 ((5,6] and (6,7]) fail; 8, 9, 10 are good.
        let (steady, got) = judge(&timeline(12, &[6, 7]), &[window(5.0, 7.0)], SteadyState::default());
        assert_eq!(steady.baseline_seconds, 5);
        assert_eq!(steady.baseline_rate, Some(100.0));
        assert_eq!(steady.baseline_p99_ms, Some(20.0));
        let r = got[0].expect("judged");
        assert_eq!(r.detect_s, Some(0.0));
        assert_eq!(r.recover_s, Some(0.0));
        assert_eq!((r.failed, r.deficit, r.bad_seconds), (200, 200, 2));
    }

    #[test]
    fn a_slow_recovery_counts_from_the_faults_end() {
        // Bad until second 10: the first good run starts at second 11, i.e. at 10.0, 3 s after 7.0.
        let (_, got) = judge(&timeline(15, &[6, 7, 8, 9, 10]), &[window(5.0, 7.0)], SteadyState::default());
        let r = got[0].expect("judged");
        assert_eq!(r.recover_s, Some(3.0));
        assert_eq!(r.failed, 500);
        // One good second between bad ones does not make a recovery.
        let (_, got) = judge(&timeline(15, &[6, 7, 9, 12]), &[window(5.0, 7.0)], SteadyState::default());
        assert_eq!(got[0].expect("judged").recover_s, Some(5.0), "the run of 13, 14, 15");
    }

    #[test]
    fn no_recovery_before_the_end_is_none_and_costs_to_the_end() {
        let (_, got) = judge(&timeline(10, &[6, 7, 8, 9]), &[window(5.0, 7.0)], SteadyState::default());
        let r = got[0].expect("judged");
        assert!(!r.recovered());
        assert_eq!(r.failed, 400);
        assert_eq!(r.deficit, 5 * 100 - 100, "seconds 6 to 10, of which 10 was good");
        // Fewer than three seconds left after the end is not a recovery either.
        let (_, got) = judge(&timeline(9, &[6, 7]), &[window(5.0, 7.0)], SteadyState::default());
        assert!(!got[0].expect("judged").recovered());
        // A fault undone because the run ended never recovered within the run.
        let mut cut = window(5.0, 8.0);
        cut.undone_at_exit = true;
        let (_, got) = judge(&timeline(8, &[6, 7, 8]), &[cut], SteadyState::default());
        assert!(!got[0].expect("judged").recovered());
    }

    #[test]
    fn detection_is_timed_from_the_start_and_an_unnoticed_fault_is_none() {
        // Starts at 4.3; second 5 is (4,5] and still good; second 6 opens at 5.0: 0.7 s later.
        let (_, got) = judge(&timeline(12, &[6]), &[window(4.3, 6.3)], SteadyState::default());
        let detect = got[0].expect("judged").detect_s.expect("detected");
        assert!((detect - 0.7).abs() < 1e-9, "{detect}");
        let (_, got) = judge(&timeline(12, &[]), &[window(4.0, 6.0)], SteadyState::default());
        let r = got[0].expect("judged");
        assert_eq!((r.detect_s, r.recover_s, r.failed, r.deficit), (None, Some(0.0), 0, 0));
        // A bad second long after the fault ended is not its detection.
        let (_, got) = judge(&timeline(14, &[11]), &[window(4.0, 6.0)], SteadyState::default());
        assert_eq!(got[0].expect("judged").detect_s, None);
    }

    #[test]
    fn latency_and_stalls_count_as_out_of_steady_state() {
        let steady = SteadyState { baseline_p99_ms: Some(20.0), baseline_rate: Some(100.0), ..SteadyState::default() };
        assert!(is_good(&second(1, 100, 1, 40.0), &steady), "1 % errors and 2x p99 are still good");
        assert!(!is_good(&second(1, 100, 2, 20.0), &steady), "2 % errors");
        assert!(!is_good(&second(1, 100, 0, 40.1), &steady), "p99 over 2x");
        assert!(!is_good(&second(1, 49, 0, 20.0), &steady), "a stall: less than half the answers");
        assert!(!is_good(&second(1, 0, 0, 0.0), &steady), "nothing answered");
        // A sub-millisecond baseline gets 20 ms of slack.
        let fast = SteadyState { baseline_p99_ms: Some(0.3), ..steady };
        assert!(is_good(&second(1, 100, 0, 20.0), &fast));
        assert!(!is_good(&second(1, 100, 0, 20.5), &fast));
    }

    #[test]
    fn the_baseline_is_the_seconds_before_the_first_fault_without_warmup() {
        let mut seconds = timeline(12, &[]);
        seconds[0].warmup = true;
        seconds[0].ok = 1000;
        seconds[2].latency_ms = Some(TimelineLatency { p50: 1.0, p90: 1.0, p99: 500.0, max: 500.0 });
        let windows = [window(6.0, 7.0), window(4.0, 5.0)];
        let (steady, got) = judge(&seconds, &windows, SteadyState::default());
        assert_eq!(steady.baseline_seconds, 3, "seconds 2, 3, 4");
        assert_eq!(steady.baseline_p99_ms, Some(20.0), "the median, not the outlier");
        assert_eq!(steady.baseline_rate, Some(100.0));
        assert_eq!(got.len(), 2);
        let never = FaultWindow { started_s: None, ended_s: None, ..window(0.0, 0.0) };
        let (steady, got) = judge(&seconds, &[never], SteadyState::default());
        assert_eq!(got, vec![None]);
        assert_eq!(steady.baseline_seconds, 11, "no fault began: every second");
    }
}
