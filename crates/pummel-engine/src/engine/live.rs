//! The live feed: what a reader outside the engine (the Prometheus exporter of
//! `--metrics-listen`) is handed once a second while a run goes on.
//!
//! The shards already merge their figures every second for the timeline; the feed is given
//! that merged second — histograms included, which the timeline entry only holds as
//! percentiles — and the per-name counts of the same second. A reader is therefore fed from the
//! collector's thread once a second, never from a shard's hot path, and needs no lock the
//! shards could wait on. Attach one with [`RunControl::with_feed`](super::RunControl::with_feed).

use pummel_results::error_kind::ErrorCounts;
use pummel_results::timeline::TimelineEntry;

use crate::flow::Scenarios;
use crate::measure::stats::Stats;

/// Receives every second of a run as soon as the collector has closed it.
///
/// Called on the collector's thread: it should return quickly (a few milliseconds), or it delays
/// the live view and abort rules.
pub trait LiveFeed: Send + Sync + std::fmt::Debug {
    /// One closed second. Every second is given, the empty tail after the last whole one
    /// included, so that counters summed over seconds end at the run's totals.
    fn second(&self, second: &LiveSecond<'_>);
}

/// One second of the run, as the feed sees it.
#[derive(Debug, Clone, Copy)]
pub struct LiveSecond<'a> {
    /// The timeline entry (gauges, probes, the target's sample, what limited the second).
    pub entry: &'a TimelineEntry,
    /// The second's merged statistics with their histograms.
    pub stats: &'a Stats,
    /// Counts of the second per statistics name, indexed as [`Scenarios::names`]; only
    /// requests due after the warmup are counted here, as in the summary's per-name table.
    pub named: &'a [NameCounts],
    /// The plan's scenarios: the names and their scenario, for labels.
    pub scenarios: &'a Scenarios,
    /// Under a coordinator, each agent's counts of the second, by its name (in segment
    /// order); empty for a run on this process's own shards.
    pub agents: &'a [(String, NameCounts)],
}

/// Request counts of one statistics name (a plan file's request name or WebSocket exchange).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameCounts {
    /// Requests written.
    pub sent: u64,
    /// Ended with an accepted answer.
    pub ok: u64,
    /// Ended with a failure (any kind).
    pub failed: u64,
    /// Failures by kind.
    pub errors: ErrorCounts,
}

impl NameCounts {
    /// The counts of `stats`.
    pub fn of(stats: &Stats) -> NameCounts {
        NameCounts { sent: stats.sent, ok: stats.ok, failed: stats.failed, errors: stats.errors }
    }

    /// Adds `other` into these counts.
    pub fn add(&mut self, other: &NameCounts) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed += other.failed;
        self.errors.merge(&other.errors);
    }

    /// What these (later, cumulative) counts hold beyond `earlier`.
    pub fn since(&self, earlier: &NameCounts) -> NameCounts {
        let mut errors = self.errors;
        for (a, b) in errors.0.iter_mut().zip(earlier.errors.0.iter()) {
            *a = a.saturating_sub(*b);
        }
        NameCounts {
            sent: self.sent.saturating_sub(earlier.sent),
            ok: self.ok.saturating_sub(earlier.ok),
            failed: self.failed.saturating_sub(earlier.failed),
            errors,
        }
    }
}

/// Adds `from` into `into`, growing it as needed.
pub(crate) fn add_all(into: &mut Vec<NameCounts>, from: &[NameCounts]) {
    if into.len() < from.len() {
        into.resize(from.len(), NameCounts::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.add(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_results::error_kind::ErrorKind;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    /// Remembers `(second, completed, latency count)` of each second it is handed.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<(u64, u64, u64)>>);

    impl LiveFeed for Recorder {
        fn second(&self, second: &LiveSecond<'_>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((second.entry.second, second.stats.completed, second.stats.latency.len()));
            }
        }
    }

    /// A keep-alive server answering `200 ok` to every request, on a thread per connection.
    fn ok_server() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn a_feed_is_handed_every_second_and_they_add_up_to_the_run() {
        let addr = ok_server();
        let mut plan = crate::plan::test_plan(
            &format!("http://{addr}/"),
            crate::plan::Load::Closed(crate::plan::ClosedLoad { connections: 2 }),
        );
        plan.threads = 2;
        plan.stop.requests = Some(300);
        let recorder = Arc::new(Recorder::default());
        let control = super::super::RunControl::new().with_feed(recorder.clone());
        let outcome = super::super::run(&plan, &control, |_| {}).expect("the run");
        let seen = recorder.0.lock().expect("the record").clone();
        assert!(!seen.is_empty());
        assert!(seen.windows(2).all(|w| w[1].0 > w[0].0), "seconds in order: {seen:?}");
        assert_eq!(seen.iter().map(|s| s.1).sum::<u64>(), outcome.total.completed, "{seen:?}");
        assert_eq!(seen.iter().map(|s| s.2).sum::<u64>(), outcome.total.latency.len(), "the histograms too");
        assert_eq!(outcome.total.completed, 300);
    }

    #[test]
    fn deltas_of_cumulative_counts_add_back_up() {
        let mut first = Stats::default();
        first.sent = 3;
        first.record_response(200, true, std::time::Duration::ZERO, std::time::Duration::ZERO);
        first.record_failure(ErrorKind::Timeout, std::time::Duration::ZERO);
        let a = NameCounts::of(&first);
        first.record_failure(ErrorKind::Timeout, std::time::Duration::ZERO);
        first.sent = 4;
        let b = NameCounts::of(&first);
        let delta = b.since(&a);
        assert_eq!((delta.sent, delta.ok, delta.failed, delta.errors.get(ErrorKind::Timeout)), (1, 0, 1, 1));
        let mut sum = vec![a];
        add_all(&mut sum, &[delta]);
        assert_eq!(sum[0], b);
    }
}
