//! Which side limited a run: the generator (pummel itself), its connection pool, or the target.
//!
//! A load test is only worth its figures if it says who ran out first. Each second is judged
//! from what pummel saw in it ([`SecondJudge`]); the run's verdict ([`verdict`]) is the side
//! that limited most of the measured seconds, with the figures behind it:
//!
//! - **generator**: a generator thread was busy ≥ 90 % of a core while its work fell behind
//!   (open model: arrivals dispatched late, schedule lag p99 > 10 ms, or fewer sent than
//!   offered; closed model: the busy thread is the loop), or arrivals left late although the
//!   threads were not busy (another process took the machine). The results understate the
//!   target.
//! - **pool**: every connection of the open model's pool was busy while arrivals waited for
//!   one, the target answered them without failing and without queueing (service time at its
//!   floor): more connections would carry more (k6's "insufficient VUs").
//! - **target**: pummel kept up (threads not saturated, schedule lag low) and the target's
//!   successful answers stayed below 95 % of the offered rate, or the pool was full because
//!   the target held its requests (failures, or a service time far above its floor).
//!
//! A closed-model run offers no rate, so only the generator can be named there.

use pummel_results::error_kind::ErrorKind;
use pummel_results::summary::{LimitSide, LimitVerdict};
use pummel_results::timeline::TimelineEntry;

/// A thread this busy (percent of one core) is saturated.
pub const BUSY_PERCENT: f64 = 90.0;
/// Arrivals this late (schedule lag p99, ms) mean the generator fell behind.
pub const LAG_BEHIND_MS: f64 = 10.0;
/// Successful answers below this share of the offered rate: the offered load was not carried.
pub const KEPT_UP_SHARE: f64 = 0.95;
/// A service time p50 above `floor × QUEUEING_FACTOR + QUEUEING_MARGIN_MS` means requests
/// queue inside the target.
const QUEUEING_FACTOR: f64 = 2.0;
const QUEUEING_MARGIN_MS: f64 = 1.0;
/// A second whose target-side failures pass this share of its outcomes is the target's doing.
const TARGET_FAILURE_SHARE: f64 = 0.01;

/// What the judgement needs to know of the run's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadShape {
    /// Every scenario is open-model, so each second has an offered rate.
    pub open: bool,
    /// Connections the open-model pool may hold (all scenarios together), when every scenario
    /// is open.
    pub pool_connections: Option<u64>,
    /// Generator threads.
    pub threads: usize,
}

/// Judges seconds one after the other (it keeps the service time's floor so far).
#[derive(Debug, Clone)]
pub struct SecondJudge {
    shape: LoadShape,
    /// The lowest per-second service time p50 seen so far, ms.
    service_floor: Option<f64>,
}

/// Failures that came from the target, not from pummel's own machine or the plan's checks.
fn target_failures(entry: &TimelineEntry) -> u64 {
    entry
        .errors
        .iter()
        .filter(|(kind, _)| {
            ErrorKind::ALL.iter().find(|k| k.name() == kind.as_str()).is_some_and(|k| {
                !k.is_local() && !matches!(k, ErrorKind::CheckFailed | ErrorKind::ExtractFailed | ErrorKind::Other)
            })
        })
        .map(|(_, n)| n)
        .sum()
}

impl SecondJudge {
    /// A judge for a run of this shape.
    pub fn new(shape: LoadShape) -> Self {
        SecondJudge { shape, service_floor: None }
    }

    /// The side that limited this second, if one did.
    pub fn judge(&mut self, e: &TimelineEntry) -> Option<LimitSide> {
        let service_p50 = e.service_time_ms.map(|s| s.p50);
        let floor = match (self.service_floor, service_p50) {
            (Some(f), Some(s)) => Some(f.min(s)),
            (f, s) => f.or(s),
        };
        self.service_floor = floor;
        let busy = e.busiest_thread_percent.is_some_and(|p| p >= BUSY_PERCENT);
        let late = e.schedule_lag_ms.is_some_and(|lag| lag.p99 > LAG_BEHIND_MS);
        let offered = e.target_rate.filter(|_| self.shape.open);
        let Some(offered) = offered else {
            // Closed model: a saturated thread is the loop's limit.
            return busy.then_some(LimitSide::Generator);
        };
        let sent_short = (e.sent as f64) < KEPT_UP_SHARE * offered;
        if late || (busy && sent_short) {
            return Some(LimitSide::Generator);
        }
        let ended = e.ok + e.failed;
        let failing = ended > 0 && target_failures(e) as f64 > TARGET_FAILURE_SHARE * ended as f64;
        let queueing = match (service_p50, floor) {
            (Some(now), Some(floor)) => now > floor * QUEUEING_FACTOR + QUEUEING_MARGIN_MS,
            _ => false,
        };
        let pool_full = self.shape.pool_connections.is_some_and(|pool| e.connections >= pool);
        if pool_full && (e.waiting > 0 || e.dropped > 0) && !failing && !queueing {
            return Some(LimitSide::Pool);
        }
        let short = (e.ok as f64) < KEPT_UP_SHARE * offered;
        (short || (pool_full && (failing || queueing))).then_some(LimitSide::Target)
    }
}

/// Figures of the whole run that the verdict's text quotes.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// Generator threads.
    pub threads: usize,
    /// The mean offered rate (open model).
    pub offered: Option<f64>,
    /// Requests written per second over the measured window.
    pub sent_rate: f64,
    /// Successful answers per second over the measured window.
    pub achieved: f64,
    /// Schedule lag p99 over the run, ms.
    pub lag_p99_ms: Option<f64>,
    /// Service time p99 of the successes, ms.
    pub service_p99_ms: Option<f64>,
    /// The busiest thread's median busy share over the measured seconds, percent.
    pub busiest_thread_percent: Option<f64>,
    /// Requests dropped over the in-flight bound or never sent.
    pub dropped: u64,
    /// The run's failures by kind, the drain after the window included.
    pub failures: Vec<(ErrorKind, u64)>,
}

/// The run's verdict from its judged seconds (`(entry, side)` of each measured second): the
/// side that limited at least half of them (the generator first, then the pool, then the
/// target when several did), with its evidence.
pub fn verdict(seconds: &[(&TimelineEntry, Option<LimitSide>)], run: &RunFigures) -> Option<LimitVerdict> {
    let judged = seconds.len() as u64;
    let count = |side| seconds.iter().filter(|(_, s)| *s == Some(side)).count() as u64;
    let (by, held) = [LimitSide::Generator, LimitSide::Pool, LimitSide::Target]
        .into_iter()
        .map(|side| (side, count(side)))
        .find(|(_, n)| *n > 0 && n * 2 >= judged)?;
    let of_side: Vec<&TimelineEntry> = seconds.iter().filter(|(_, s)| *s == Some(by)).map(|(e, _)| *e).collect();
    let (text, evidence) = match by {
        LimitSide::Generator => generator_text(run),
        LimitSide::Pool => pool_text(&of_side, run),
        LimitSide::Target => target_text(&of_side, run),
    };
    Some(LimitVerdict { by, text, evidence, seconds: held, of_seconds: judged })
}

fn generator_text(run: &RunFigures) -> (String, Vec<String>) {
    let mut evidence = Vec::new();
    if let Some(busy) = run.busiest_thread_percent {
        evidence.push(format!("busiest generator thread {busy:.0} % of a core ({} thread(s))", run.threads));
    }
    if let Some(lag) = run.lag_p99_ms {
        evidence.push(format!("schedule lag p99 {lag:.1} ms"));
    }
    let advice = match run.offered {
        Some(offered) if run.sent_rate > 0.0 => {
            evidence.push(format!("sent {:.0} of {offered:.0} req/s offered", run.sent_rate));
            let needed = (run.threads.max(1) as f64 * offered / run.sent_rate * 1.2).ceil() as u64;
            format!("about {needed} generator threads (-t {needed}) or more machines would be needed")
        }
        _ => "add generator threads (-t) or machines".to_string(),
    };
    let what = if run.offered.is_some() {
        "pummel could not send what was asked"
    } else {
        "its busiest thread was saturated, so the users could not loop any faster"
    };
    (format!("the generator is the limit: {what}, so the results understate the target; {advice}"), evidence)
}

fn pool_text(seconds: &[&TimelineEntry], run: &RunFigures) -> (String, Vec<String>) {
    let connections = seconds.iter().map(|e| e.connections).max().unwrap_or(0);
    let waiting = seconds.iter().map(|e| e.waiting).max().unwrap_or(0);
    let mut evidence =
        vec![format!("all {connections} connections busy"), format!("up to {waiting} arrivals waiting for one")];
    if run.dropped > 0 {
        evidence.push(format!("{} arrivals dropped (never sent)", run.dropped));
    }
    let advice = match (run.offered, run.service_p99_ms) {
        (Some(rate), Some(p99)) => {
            evidence.push(format!("service time p99 {p99:.1} ms"));
            let needed = (rate * p99 / 1000.0).ceil().max(connections as f64 + 1.0) as u64;
            format!("raise -c to about {needed} (rate {rate:.0}/s × service p99 {p99:.1} ms)")
        }
        _ => "raise -c".to_string(),
    };
    (
        format!(
            "the pool is the limit: every connection was busy while arrivals waited, and the target answered them promptly; {advice}"
        ),
        evidence,
    )
}

fn target_text(seconds: &[&TimelineEntry], run: &RunFigures) -> (String, Vec<String>) {
    let mut evidence = Vec::new();
    let offered = run.offered.map(|o| format!(" of {o:.0} req/s offered")).unwrap_or_default();
    evidence.push(format!("{:.0} successful answers/s{offered}", run.achieved));
    let mut kinds: Vec<(ErrorKind, u64)> = run.failures.iter().copied().filter(|(kind, _)| !kind.is_local()).collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    for (kind, n) in kinds.into_iter().take(3) {
        evidence.push(format!("{kind}: {n}"));
    }
    let service: Vec<f64> = seconds.iter().filter_map(|e| e.service_time_ms.map(|s| s.p50)).collect();
    if let (Some(first), Some(peak)) = (service.first(), service.iter().copied().reduce(f64::max)) {
        if peak > first * QUEUEING_FACTOR + QUEUEING_MARGIN_MS {
            evidence
                .push(format!("service time p50 rose from {first:.1} to {peak:.1} ms (requests queue in the target)"));
        }
    }
    let accept_queue = seconds.iter().filter_map(|e| e.target.as_ref().map(|t| t.accept_queue)).max();
    if let Some(queue) = accept_queue.filter(|q| *q > 0) {
        evidence.push(format!("target accept queue up to {queue}"));
    }
    let overflows: f64 = seconds
        .iter()
        .filter_map(|e| e.target.as_ref().and_then(|t| t.system_listen.as_ref()).map(|l| l.listen_overflows_per_s))
        .sum();
    if overflows > 0.0 {
        evidence.push(format!("listen queue overflows {:.0}/s", overflows / seconds.len().max(1) as f64));
    }
    let mut kept_up = Vec::new();
    if let Some(busy) = run.busiest_thread_percent {
        kept_up.push(format!("busiest thread {busy:.0} %"));
    }
    if let Some(lag) = run.lag_p99_ms {
        kept_up.push(format!("schedule lag p99 {lag:.1} ms"));
    }
    let pummel = if kept_up.is_empty() { String::new() } else { format!(" ({})", kept_up.join(", ")) };
    (
        format!(
            "the target is the limit: pummel kept up{pummel}, and the target's successful answers stayed below the offered rate"
        ),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_results::timeline::{LagFigures, TimelineLatency};

    fn shape(open: bool) -> LoadShape {
        LoadShape { open, pool_connections: open.then_some(10), threads: 1 }
    }

    /// A healthy second at 1,000 req/s: everything offered was carried.
    fn second(target: Option<f64>) -> TimelineEntry {
        TimelineEntry {
            second: 1,
            target_rate: target,
            sent: 1000,
            completed: 1000,
            ok: 1000,
            in_flight: 3,
            connections: 4,
            service_time_ms: Some(TimelineLatency { p50: 2.0, p90: 2.5, p99: 3.0, max: 4.0 }),
            schedule_lag_ms: Some(LagFigures { p99: 0.2, max: 0.5 }),
            cpu_percent: 30.0,
            busiest_thread_percent: Some(30.0),
            ..TimelineEntry::default()
        }
    }

    #[test]
    fn a_carried_load_names_nothing() {
        let mut judge = SecondJudge::new(shape(true));
        assert_eq!(judge.judge(&second(Some(1000.0))), None);
        let mut closed = SecondJudge::new(shape(false));
        assert_eq!(closed.judge(&second(None)), None);
    }

    #[test]
    fn a_saturated_thread_that_falls_behind_is_the_generator() {
        let mut e = second(Some(100_000.0));
        e.busiest_thread_percent = Some(99.0);
        e.schedule_lag_ms = Some(LagFigures { p99: 300.0, max: 900.0 });
        e.sent = 60_000;
        e.ok = 60_000;
        assert_eq!(SecondJudge::new(shape(true)).judge(&e), Some(LimitSide::Generator));
        // One busy thread among idle ones still limits: the process average would be 50 %.
        let mut closed = second(None);
        closed.busiest_thread_percent = Some(97.0);
        closed.cpu_percent = 97.0;
        assert_eq!(
            SecondJudge::new(LoadShape { threads: 2, ..shape(false) }).judge(&closed),
            Some(LimitSide::Generator)
        );
        // Busy but on time and sending everything: not a limit.
        let mut busy = second(Some(1000.0));
        busy.busiest_thread_percent = Some(95.0);
        assert_eq!(SecondJudge::new(shape(true)).judge(&busy), None);
    }

    #[test]
    fn a_full_pool_with_waiting_arrivals_is_the_pool() {
        let mut e = second(Some(5000.0));
        e.connections = 10;
        e.waiting = 4000;
        e.ok = 1000;
        e.sent = 1000;
        let mut judge = SecondJudge::new(shape(true));
        assert_eq!(judge.judge(&e), Some(LimitSide::Pool));
        // The same with the target failing is the target's doing.
        e.failed = 100;
        e.errors.insert("connect_timeout".into(), 100);
        assert_eq!(judge.judge(&e), Some(LimitSide::Target));
        // And with the service time far above its floor: requests queue inside the target.
        let mut queued = second(Some(5000.0));
        queued.connections = 10;
        queued.waiting = 4000;
        queued.ok = 1000;
        queued.service_time_ms = Some(TimelineLatency { p50: 40.0, p90: 45.0, p99: 50.0, max: 60.0 });
        assert_eq!(judge.judge(&queued), Some(LimitSide::Target));
        // A pool that is not full is not the limit, however many wait (connections opening).
        let mut opening = second(Some(1000.0));
        opening.waiting = 50;
        assert_eq!(SecondJudge::new(shape(true)).judge(&opening), None);
    }

    #[test]
    fn answers_below_the_offered_rate_are_the_target() {
        let mut e = second(Some(400.0));
        e.sent = 400;
        e.ok = 190;
        assert_eq!(SecondJudge::new(shape(true)).judge(&e), Some(LimitSide::Target));
        e.ok = 390;
        assert_eq!(SecondJudge::new(shape(true)).judge(&e), None, "97.5 % carried");
    }

    #[test]
    fn the_run_is_named_by_most_seconds_with_evidence() {
        let healthy = second(Some(400.0));
        let mut short = second(Some(400.0));
        short.ok = 190;
        short.errors.insert("timeout".into(), 12);
        let run = RunFigures {
            threads: 1,
            offered: Some(400.0),
            achieved: 190.0,
            failures: vec![(ErrorKind::Timeout, 24), (ErrorKind::TooManyOpenFiles, 3)],
            ..RunFigures::default()
        };
        let few = [(&healthy, None), (&healthy, None), (&short, Some(LimitSide::Target))];
        assert_eq!(verdict(&few, &run), None, "one second in three is not the run");
        let most = [(&healthy, None), (&short, Some(LimitSide::Target)), (&short, Some(LimitSide::Target))];
        let v = verdict(&most, &run).expect("a verdict");
        assert_eq!((v.by, v.seconds, v.of_seconds), (LimitSide::Target, 2, 3));
        assert!(v.evidence.iter().any(|e| e == "timeout: 24"), "{:?}", v.evidence);
        assert!(!v.evidence.iter().any(|e| e.contains("too_many_open_files")), "local: {:?}", v.evidence);
        assert!(v.evidence.iter().any(|e| e.contains("190 successful answers/s of 400")), "{:?}", v.evidence);
    }

    #[test]
    fn the_generator_verdict_says_how_many_threads() {
        let e = second(Some(1_000_000.0));
        let run = RunFigures {
            threads: 1,
            offered: Some(1_000_000.0),
            sent_rate: 125_000.0,
            busiest_thread_percent: Some(100.0),
            ..RunFigures::default()
        };
        let v = verdict(&[(&e, Some(LimitSide::Generator))], &run).expect("a verdict");
        // 1 thread × 1,000,000 / 125,000 × 1.2 margin.
        assert!(v.text.contains("-t 10"), "{}", v.text);
    }
}
