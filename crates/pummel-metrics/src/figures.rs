//! The cumulative figures an exposition shows: every second the engine closes is added here
//! (counters and histograms add up, gauges take the second's value). One run or many (the
//! steps of a find-limit search) add into the same figures, so counters never go back.

use std::collections::BTreeMap;

use pummel_engine::engine::live::{LiveSecond, NameCounts};
use pummel_results::error_kind::ErrorCounts;
use pummel_results::fault::FaultEvent;
use pummel_results::histogram::{LatencyHistogram, merge, new_histogram};
use pummel_results::summary::LimitSide;
use pummel_system::watch::WatchSample;

/// Everything the endpoint serves.
#[derive(Debug)]
pub struct Figures {
    /// Seconds added so far.
    pub seconds: u64,
    /// Requests written.
    pub sent: u64,
    /// Requests that ended with an accepted answer.
    pub ok: u64,
    /// Requests that ended with a failure.
    pub failed: u64,
    /// Requests due and never sent.
    pub dropped: u64,
    /// Failures by kind.
    pub errors: ErrorCounts,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Idle connections found closed and replaced.
    pub reconnects: u64,
    /// Redirects followed (each hop).
    pub redirects: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Established connections the target closed.
    pub closed_by_peer: u64,
    /// Response bytes received.
    pub bytes_in: u64,
    /// Request bytes written.
    pub bytes_out: u64,
    /// Latency of the successes, from when they were due.
    pub latency: LatencyHistogram,
    /// Service time of the successes, from their first byte out.
    pub service_time: LatencyHistogram,
    /// Latency of every request that ended, failures included.
    pub latency_all: LatencyHistogram,
    /// Time to connect.
    pub connect_time: LatencyHistogram,
    /// How late open-model requests were dispatched.
    pub schedule_lag: LatencyHistogram,
    /// Per statistics name: `(scenario, name)` and its counts.
    pub named: Vec<((String, String), NameCounts)>,
    /// The last second's gauges.
    pub gauges: Gauges,
    /// Per probe URL.
    pub probes: BTreeMap<String, ProbeFigures>,
    /// The watched target's last sample, if any.
    pub target: Option<WatchSample>,
    /// Seconds the watched target had no sample.
    pub watch_gaps: u64,
    /// Per fault name (`[[fault]]`, `--fault`): whether it is on, and how often it started.
    pub faults: BTreeMap<String, FaultFigures>,
    /// Under a coordinator, per agent name: its requests (warmup included, as the run's own
    /// counters), so a dashboard shows which agent sent what and which one failed.
    pub agents: BTreeMap<String, NameCounts>,
}

/// One fault's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultFigures {
    /// On now (started, not yet ended or undone).
    pub active: bool,
    /// Times it started.
    pub started: u64,
    /// Times it could not be started or undone.
    pub failed: u64,
}

/// Values at the end of the last second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// The second (1 = the first of the run; restarts with each step of a search).
    pub second: u64,
    /// True during the warmup.
    pub warmup: bool,
    /// The offered rate (open model).
    pub target_rate: Option<f64>,
    /// Requests due and not ended.
    pub in_flight: u64,
    /// Of those, not yet written.
    pub waiting: u64,
    /// Open connections.
    pub connections: u64,
    /// CPU of the pummel process, percent of a core.
    pub cpu_percent: f64,
    /// The busiest shard thread, percent of a core.
    pub busiest_thread_percent: Option<f64>,
    /// What limited the second, if something did.
    pub limit: Option<LimitSide>,
}

/// What one probe recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeFigures {
    /// Probes that were OK.
    pub ok: u64,
    /// Probes that were not.
    pub nok: u64,
    /// Whether the last one was OK.
    pub last_ok: bool,
    /// The last latency, seconds.
    pub last_latency: Option<f64>,
    /// The last number read (`--probe-json`, `--probe-metric`).
    pub last_value: Option<f64>,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            seconds: 0,
            sent: 0,
            ok: 0,
            failed: 0,
            dropped: 0,
            errors: ErrorCounts::default(),
            statuses: BTreeMap::new(),
            reconnects: 0,
            redirects: 0,
            connections_opened: 0,
            closed_by_peer: 0,
            bytes_in: 0,
            bytes_out: 0,
            latency: new_histogram(),
            service_time: new_histogram(),
            latency_all: new_histogram(),
            connect_time: new_histogram(),
            schedule_lag: new_histogram(),
            named: Vec::new(),
            gauges: Gauges::default(),
            probes: BTreeMap::new(),
            target: None,
            watch_gaps: 0,
            faults: BTreeMap::new(),
            agents: BTreeMap::new(),
        }
    }
}

impl Figures {
    /// Adds one closed second.
    pub fn add(&mut self, second: &LiveSecond<'_>) {
        let (s, e) = (second.stats, second.entry);
        self.seconds += 1;
        self.sent += s.sent;
        self.ok += s.ok;
        self.failed += s.failed;
        self.dropped += s.dropped;
        self.errors.merge(&s.errors);
        for (code, n) in s.status_counts() {
            *self.statuses.entry(code).or_default() += n;
        }
        self.reconnects += s.reconnects;
        self.redirects += s.redirects;
        self.connections_opened += s.connections_opened;
        self.closed_by_peer += s.closed_by_peer;
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
        merge(&mut self.latency, &s.latency);
        merge(&mut self.service_time, &s.service_time);
        merge(&mut self.latency_all, &s.latency_all);
        merge(&mut self.connect_time, &s.connect_time);
        merge(&mut self.schedule_lag, &s.schedule_lag);
        for (index, counts) in second.named.iter().enumerate() {
            let Some(named) = second.scenarios.names.get(index) else { continue };
            let scenario = second.scenarios.list.get(named.scenario).map_or("", |s| s.name.as_str());
            let key = (scenario.to_string(), named.name.clone());
            match self.named.iter_mut().find(|(k, _)| *k == key) {
                Some((_, total)) => total.add(counts),
                None => self.named.push((key, *counts)),
            }
        }
        for (agent, counts) in second.agents {
            self.agents.entry(agent.clone()).or_default().add(counts);
        }
        self.gauges = Gauges {
            second: e.second,
            warmup: e.warmup,
            target_rate: e.target_rate,
            in_flight: e.in_flight,
            waiting: e.waiting,
            connections: e.connections,
            cpu_percent: e.cpu_percent,
            busiest_thread_percent: e.busiest_thread_percent,
            limit: e.limit,
        };
        for sample in &e.probes {
            let probe = self.probes.entry(sample.url.clone()).or_default();
            if sample.ok {
                probe.ok += 1;
            } else {
                probe.nok += 1;
            }
            probe.last_ok = sample.ok;
            probe.last_latency = sample.latency_ms.map(|ms| ms / 1000.0);
            if sample.value.is_some() {
                probe.last_value = sample.value;
            }
        }
        if let Some(target) = &e.target {
            self.target = Some(target.clone());
        }
        self.watch_gaps += u64::from(e.watch_gap.is_some());
        for mark in &e.faults {
            let fault = self.faults.entry(mark.name.clone()).or_default();
            match mark.event {
                FaultEvent::Started => {
                    fault.active = true;
                    fault.started += 1;
                }
                FaultEvent::Ended | FaultEvent::Undone => fault.active = false,
                FaultEvent::Failed => fault.failed += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pummel_engine::engine::live::LiveFeed;
    use pummel_engine::flow::Scenarios;
    use pummel_engine::measure::stats::Stats;
    use pummel_results::fault::FaultMark;
    use pummel_results::timeline::TimelineEntry;

    use super::*;
    use crate::Shared;

    fn second(shared: &Shared, n: u64, marks: &[(&str, FaultEvent)]) {
        let faults = marks
            .iter()
            .map(|(name, event)| FaultMark {
                name: name.to_string(),
                event: *event,
                at_s: n as f64,
                detail: String::new(),
            })
            .collect();
        let entry = TimelineEntry { second: n, faults, ..TimelineEntry::default() };
        let (stats, scenarios) = (Stats::default(), Scenarios::default());
        shared.second(&LiveSecond { entry: &entry, stats: &stats, named: &[], scenarios: &scenarios, agents: &[] });
    }

    /// A fault is on from its start to its end, in the exposition too; its starts count up.
    #[test]
    fn faults_are_on_between_their_marks() {
        let shared = std::sync::Arc::new(Shared::default());
        second(&shared, 1, &[("db down", FaultEvent::Started)]);
        let registry = crate::encode::registry(shared.clone());
        let text = crate::encode::text(&registry).expect("encodes");
        assert!(text.contains("pummel_fault_active{fault=\"db down\"} 1"), "{text}");
        second(&shared, 2, &[("db down", FaultEvent::Ended)]);
        let text = crate::encode::text(&registry).expect("encodes");
        assert!(text.contains("pummel_fault_active{fault=\"db down\"} 0"), "{text}");
        assert!(text.contains("pummel_fault_started_total{fault=\"db down\"} 1"), "{text}");
        shared.with_figures(|f| assert_eq!(f.faults["db down"], FaultFigures { active: false, started: 1, failed: 0 }));
    }

    /// A coordinator's agents each have their own series, added up second by second by name;
    /// a run on one process has none.
    #[test]
    fn agents_count_up_by_name() {
        let shared = std::sync::Arc::new(Shared::default());
        let registry = crate::encode::registry(shared.clone());
        second(&shared, 1, &[]);
        assert!(!crate::encode::text(&registry).expect("encodes").contains("pummel_agent_"));
        let (stats, scenarios) = (Stats::default(), Scenarios::default());
        let counts = |sent, ok, failed| NameCounts { sent, ok, failed, ..NameCounts::default() };
        for n in 2..4 {
            let entry = TimelineEntry { second: n, ..TimelineEntry::default() };
            let agents = [("a".to_string(), counts(10, 9, 1)), ("b".to_string(), counts(5, 5, 0))];
            shared.second(&LiveSecond {
                entry: &entry,
                stats: &stats,
                named: &[],
                scenarios: &scenarios,
                agents: &agents,
            });
        }
        shared.with_figures(|f| {
            assert_eq!(f.agents["a"], counts(20, 18, 2));
            assert_eq!(f.agents["b"], counts(10, 10, 0));
        });
        let text = crate::encode::text(&registry).expect("encodes");
        assert!(text.contains("pummel_agent_requests_sent_total{agent=\"a\"} 20"), "{text}");
        assert!(text.contains("pummel_agent_requests_total{agent=\"b\",outcome=\"ok\"} 10"), "{text}");
    }
}
