//! Counters and histograms for a slice of a run: one second of one shard, one stage's totals,
//! or a sliding window. The same type serves all of them so that merging is always the same
//! operation and every figure is computed the same way everywhere.

use std::time::Duration;

use pummel_results::error_kind::{ErrorCounts, ErrorKind};
use pummel_results::expr::{Metric, MetricSource};
use pummel_results::histogram::{LatencyHistogram, histogram_stat_ms, merge, new_histogram, record};

/// Status codes are counted in a flat array indexed by code: cheaper than a map on the hot path.
const STATUS_SLOTS: usize = 1000;

/// Counters and histograms of requests.
///
/// `latency` and `service_time` are of the requests that succeeded: a fast error answer does
/// not make them look better. `latency_all` holds every request that ended, failures included,
/// each at the time it failed — a request pummel gave up on (timeout, unanswered) at the time
/// it was given up, which makes its value a lower bound (`given_up`, `given_up_min`). Every
/// request that was due ends in exactly one of `ok`, `failed` (unanswered included) or
/// `dropped` (see `measure::meter`).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests written to a connection (their first byte went out).
    pub sent: u64,
    /// Requests that ended with an outcome: `ok + failed`.
    pub completed: u64,
    /// Ended with an accepted answer.
    pub ok: u64,
    /// Ended with a failure of some kind, `unanswered` included.
    pub failed: u64,
    /// Requests that were due but never sent: over the in-flight bound, or they still waited
    /// for a connection when the run ended.
    pub dropped: u64,
    /// Of `failed`: requests sent and still unanswered when the drain time ran out.
    pub unanswered: u64,
    /// Successful answers that arrived inside the measured window (counted by the second they
    /// arrived, whenever the request was due): what the achieved rate is made of.
    pub window_ok: u64,
    /// Failures that happened inside the measured window.
    pub window_failed: u64,
    /// Idle connections the peer had closed, found so before a request used them and replaced
    /// (pummel's own doing: never counted as a failure).
    pub reconnects: u64,
    /// Redirects followed (each hop of a chain; the chain itself is one request).
    pub redirects: u64,
    /// Failures by kind.
    pub errors: ErrorCounts,
    /// Response bytes received (head and body).
    pub bytes_in: u64,
    /// Request bytes written.
    pub bytes_out: u64,
    /// Response body bytes after decoding their `Content-Encoding` (only bodies that were
    /// read, and sent compressed).
    pub bytes_decoded: u64,
    /// Connections opened successfully.
    pub connections_opened: u64,
    /// Established connections the target closed (EOF or reset) — `pummel hold` counts them.
    pub closed_by_peer: u64,
    /// Time from the intended start to the end of the response (coordinated-omission
    /// corrected), of the requests that succeeded.
    pub latency: LatencyHistogram,
    /// Time from the write of the request to the end of the response, of the requests that
    /// succeeded.
    pub service_time: LatencyHistogram,
    /// Time from the intended start to the end of every request that ended, failures included.
    pub latency_all: LatencyHistogram,
    /// Requests pummel gave up on (their `latency_all` value is when it gave up).
    pub given_up: u64,
    /// The shortest time at which a request was given up: `latency_all` figures at or above it
    /// are lower bounds.
    pub given_up_min: Option<Duration>,
    /// Time to establish each TCP connection.
    pub connect_time: LatencyHistogram,
    /// Time of each completed TLS handshake (`https://`), after the TCP connect.
    pub tls_handshake_time: LatencyHistogram,
    /// TLS handshakes that resumed a session (counted in `tls_handshake_time` too).
    pub tls_resumed: u64,
    /// How late open-model requests were dispatched compared with their schedule.
    pub schedule_lag: LatencyHistogram,
    status: Box<[u64; STATUS_SLOTS]>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sent: 0,
            completed: 0,
            ok: 0,
            failed: 0,
            dropped: 0,
            unanswered: 0,
            window_ok: 0,
            window_failed: 0,
            reconnects: 0,
            redirects: 0,
            errors: ErrorCounts::default(),
            bytes_in: 0,
            bytes_out: 0,
            bytes_decoded: 0,
            connections_opened: 0,
            closed_by_peer: 0,
            latency: new_histogram(),
            service_time: new_histogram(),
            latency_all: new_histogram(),
            given_up: 0,
            given_up_min: None,
            connect_time: new_histogram(),
            tls_handshake_time: new_histogram(),
            tls_resumed: 0,
            schedule_lag: new_histogram(),
            status: Box::new([0; STATUS_SLOTS]),
        }
    }
}

impl Stats {
    /// Records a request that received a complete response.
    pub fn record_response(&mut self, status: u16, ok: bool, latency: Duration, service_time: Duration) {
        let failure = (!ok).then(|| ErrorKind::from_status(status));
        self.record_judged_response(Some(status), failure, latency, service_time);
    }

    /// Records a complete answer whose verdict was reached elsewhere: `failure` is why it
    /// counts as failed (a status not accepted, a failed check), `None` when it succeeded.
    /// `status` is `None` for answers without one (WebSocket messages).
    pub fn record_judged_response(
        &mut self,
        status: Option<u16>,
        failure: Option<ErrorKind>,
        latency: Duration,
        service_time: Duration,
    ) {
        self.completed += 1;
        if let Some(slot) = status.and_then(|s| self.status.get_mut(usize::from(s))) {
            *slot += 1;
        }
        match failure {
            None => {
                self.ok += 1;
                record(&mut self.latency, latency);
                record(&mut self.service_time, service_time);
            }
            Some(kind) => {
                self.failed += 1;
                self.errors.add(kind);
            }
        }
        record(&mut self.latency_all, latency);
    }

    /// Records a request that failed without a usable response, `latency` after it was due
    /// (for a request pummel gave up on, the time it gave up).
    pub fn record_failure(&mut self, kind: ErrorKind, latency: Duration) {
        self.completed += 1;
        self.failed += 1;
        self.errors.add(kind);
        if kind == ErrorKind::Unanswered {
            self.unanswered += 1;
        }
        record(&mut self.latency_all, latency);
        if kind.is_given_up() {
            self.given_up += 1;
            self.given_up_min = Some(self.given_up_min.map_or(latency, |min| min.min(latency)));
        }
    }

    /// Adds every counter and histogram of `other` into this one.
    pub fn merge(&mut self, other: &Stats) {
        self.sent += other.sent;
        self.completed += other.completed;
        self.ok += other.ok;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.unanswered += other.unanswered;
        self.window_ok += other.window_ok;
        self.window_failed += other.window_failed;
        self.reconnects += other.reconnects;
        self.redirects += other.redirects;
        self.errors.merge(&other.errors);
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.bytes_decoded += other.bytes_decoded;
        self.connections_opened += other.connections_opened;
        self.closed_by_peer += other.closed_by_peer;
        merge(&mut self.latency, &other.latency);
        merge(&mut self.service_time, &other.service_time);
        merge(&mut self.latency_all, &other.latency_all);
        self.given_up += other.given_up;
        self.given_up_min = match (self.given_up_min, other.given_up_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        merge(&mut self.connect_time, &other.connect_time);
        merge(&mut self.tls_handshake_time, &other.tls_handshake_time);
        self.tls_resumed += other.tls_resumed;
        merge(&mut self.schedule_lag, &other.schedule_lag);
        for (a, b) in self.status.iter_mut().zip(other.status.iter()) {
            *a += b;
        }
    }

    /// Counts `n` more responses of `status` (a report from another process, `engine::remote`).
    pub(crate) fn add_status(&mut self, status: u16, n: u64) {
        if let Some(slot) = self.status.get_mut(usize::from(status)) {
            *slot += n;
        }
    }

    /// Responses counted per status code, lowest code first.
    pub fn status_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.status.iter().enumerate().filter(|(_, n)| **n > 0).map(|(code, n)| (code as u16, *n))
    }

    /// Failed share of the requests that ended (0 when none did).
    pub fn error_rate(&self) -> f64 {
        if self.completed == 0 { 0.0 } else { self.failed as f64 / self.completed as f64 }
    }

    /// Pairs these stats with the time they cover, so rates and thresholds can be computed.
    pub fn over(&self, elapsed: Duration) -> StatsOver<'_> {
        StatsOver { stats: self, elapsed }
    }
}

/// Stats together with the time span they cover: what thresholds and abort rules evaluate.
#[derive(Debug, Clone, Copy)]
pub struct StatsOver<'a> {
    /// The stats.
    pub stats: &'a Stats,
    /// The time they cover.
    pub elapsed: Duration,
}

impl StatsOver<'_> {
    /// Successful answers per second that arrived inside the measured window.
    pub fn achieved_rate(&self) -> f64 {
        self.per_second(self.stats.window_ok)
    }

    /// Failures per second inside the measured window.
    pub fn failed_rate(&self) -> f64 {
        self.per_second(self.stats.window_failed)
    }

    /// `count` over the time these stats cover.
    pub fn per_second(&self, count: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { count as f64 / secs } else { 0.0 }
    }
}

impl MetricSource for StatsOver<'_> {
    fn metric_value(&self, metric: &Metric) -> Option<f64> {
        let s = self.stats;
        match metric {
            Metric::Latency(stat) => histogram_stat_ms(&s.latency, stat),
            Metric::ServiceTime(stat) => histogram_stat_ms(&s.service_time, stat),
            Metric::LatencyAll(stat) => histogram_stat_ms(&s.latency_all, stat),
            Metric::ErrorRate => (s.completed > 0).then(|| s.error_rate()),
            // Probes and faults are not request stats; `summary::RunMetrics` answers them.
            Metric::ProbeOk
            | Metric::RecoveryTime
            | Metric::FaultErrors
            | Metric::Lost
            | Metric::Recovered
            | Metric::Unexpected
            | Metric::Unread => None,
            Metric::Rate => Some(self.achieved_rate()),
            Metric::Dropped => Some(s.dropped as f64),
            Metric::Failed => Some(s.failed as f64),
            Metric::Completed => Some(s.completed as f64),
            Metric::Sent => Some(s.sent as f64),
            Metric::Unanswered => Some(s.unanswered as f64),
            Metric::ErrorCount(name) => {
                ErrorKind::ALL.iter().find(|k| k.name() == name).map(|k| s.errors.get(*k) as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_results::expr::Expr;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn records_and_merges() {
        let mut a = Stats::default();
        a.record_response(200, true, ms(10), ms(5));
        a.record_response(503, false, ms(30), ms(20));
        let mut b = Stats::default();
        b.record_failure(ErrorKind::Reset, ms(3));
        b.merge(&a);
        assert_eq!(b.completed, 3);
        assert_eq!(b.ok, 1);
        assert_eq!(b.failed, 2);
        assert_eq!(b.errors.get(ErrorKind::Status5xx), 1);
        assert_eq!(b.errors.get(ErrorKind::Reset), 1);
        assert_eq!(b.status_counts().collect::<Vec<_>>(), vec![(200, 1), (503, 1)]);
        assert_eq!(b.latency.len(), 1, "only the success is in latency");
        assert_eq!(b.service_time.len(), 1, "only the success is in service time");
        assert_eq!(b.latency_all.len(), 3, "every request that ended is in latency_all");
        assert!((b.error_rate() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!((b.given_up, b.given_up_min), (0, None), "no request was given up");
    }

    #[test]
    fn fast_errors_do_not_make_latency_better() {
        let mut s = Stats::default();
        for _ in 0..9 {
            s.record_response(503, false, ms(1), ms(1));
        }
        s.record_response(200, true, ms(100), ms(100));
        let view = s.over(Duration::from_secs(1));
        let p50 = view.metric_value(&Metric::Latency(pummel_results::expr::Stat::Percentile(50.0)));
        let all_p50 = view.metric_value(&Metric::LatencyAll(pummel_results::expr::Stat::Percentile(50.0)));
        assert!(p50.is_some_and(|v| v >= 99.0), "latency p50 {p50:?} is of the success");
        assert!(all_p50.is_some_and(|v| v < 2.0), "latency_all p50 {all_p50:?} is of everything");
    }

    #[test]
    fn given_up_requests_are_failures_with_a_lower_bound() {
        let mut a = Stats::default();
        a.record_failure(ErrorKind::Timeout, ms(500));
        let mut b = Stats::default();
        b.record_failure(ErrorKind::Unanswered, ms(300));
        b.record_failure(ErrorKind::ConnectRefused, ms(1));
        a.merge(&b);
        assert_eq!((a.failed, a.unanswered, a.given_up), (3, 1, 2));
        assert_eq!(a.given_up_min, Some(ms(300)));
        assert_eq!(a.latency_all.len(), 3);
        assert!(a.latency.is_empty());
        let view = a.over(Duration::from_secs(1));
        assert!(Expr::parse("unanswered==1").unwrap().evaluate(&view).pass);
        assert!(!Expr::parse("unanswered==0").unwrap().evaluate(&view).pass);
        assert!(!Expr::parse("error_rate<1%").unwrap().evaluate(&view).pass);
    }

    #[test]
    fn tls_handshakes_merge_like_connects() {
        let mut a = Stats::default();
        record(&mut a.tls_handshake_time, Duration::from_micros(900));
        a.tls_resumed += 1;
        let mut b = Stats::default();
        record(&mut b.tls_handshake_time, Duration::from_micros(1500));
        b.merge(&a);
        assert_eq!((b.tls_handshake_time.len(), b.tls_resumed), (2, 1));
        assert!(b.connect_time.is_empty());
    }

    #[test]
    fn thresholds_read_stats() {
        let mut s = Stats::default();
        for _ in 0..99 {
            s.record_response(200, true, ms(10), ms(1));
        }
        s.record_response(500, false, ms(900), ms(1));
        s.window_ok = 99;
        let view = s.over(Duration::from_secs(10));
        let eval = |text: &str| Expr::parse(text).unwrap().evaluate(&view);
        assert!(eval("p50<20ms").pass);
        assert!(eval("p99.9<500ms").pass, "the failure is not in latency");
        assert!(!eval("latency_all.p99.9<500ms").pass, "but it is in latency_all");
        assert!(eval("error_rate<2%").pass);
        assert!(!eval("error_rate<1%").pass);
        assert!(eval("rate>=9.9").pass);
        assert!(!eval("rate>=10").pass, "the achieved rate counts successes only");
        assert!(eval("errors.status_5xx==1").pass);
        assert!(!Expr::parse("p99<1s").unwrap().evaluate(&Stats::default().over(Duration::ZERO)).pass);
    }
}
