//! How load is offered over time: the closed model (users looping), the open model (arrivals
//! on a schedule, in stages), and the hold model (connections opened at a paced rate and held).
//! These are the plan's words; `crate::load` is where they run.

use std::time::Duration;

use serde::Serialize;

use super::PlanError;

/// How load is offered.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Load {
    /// N loops, each sending the next request when the previous response arrived.
    Closed(ClosedLoad),
    /// Requests started on a schedule, whether or not earlier ones came back.
    Open(OpenLoad),
    /// Many connections opened at a paced rate and held open until the end (`pummel hold`).
    Hold(HoldLoad),
}

/// The hold model: open `connections` at `open_rate` and keep them, each in `mode`.
#[derive(Debug, Clone, Serialize)]
pub struct HoldLoad {
    /// Connections wanted (the sum over all shards).
    pub connections: usize,
    /// Connections opened per second at most (initial opens and re-opens alike), so the
    /// target's accept backlog is not flooded.
    pub open_rate: f64,
    /// What each connection does while held.
    pub mode: HoldMode,
    /// Interval between the bytes of a slow request, or between WebSocket pings.
    #[serde(with = "crate::seconds")]
    pub drip: Duration,
    /// Re-open a connection the target closed (or that failed to open), counting it again.
    pub reopen: bool,
}

impl HoldLoad {
    pub(crate) fn validate(&self) -> Result<(), PlanError> {
        if self.connections == 0 {
            return Err(PlanError::Invalid("connections must be at least 1".into()));
        }
        if !(self.open_rate.is_finite() && self.open_rate > 0.0) {
            return Err(PlanError::Invalid(format!(
                "the open rate must be a positive number of connections per second, not {}",
                self.open_rate
            )));
        }
        if self.drip.is_zero() {
            return Err(PlanError::Invalid("--drip must be longer than 0s".into()));
        }
        Ok(())
    }
}

/// What a held connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldMode {
    /// One request and its response, then an idle keep-alive connection.
    Idle,
    /// The request head sent a few bytes every `drip` and never finished (slow-client attack).
    SlowRequest,
    /// One request whose response the target holds; waited for until the run ends.
    Pending,
    /// A WebSocket upgrade, then a ping every `drip`.
    #[serde(rename = "ws")]
    WebSocket,
}

impl HoldMode {
    /// The name used on the command line and in results (`idle`, `slow-request`, `pending`, `ws`).
    pub fn name(self) -> &'static str {
        match self {
            HoldMode::Idle => "idle",
            HoldMode::SlowRequest => "slow-request",
            HoldMode::Pending => "pending",
            HoldMode::WebSocket => "ws",
        }
    }
}

/// HTTP/2 settings (`--http2`, `http_version = "2"`). Users share connections of `streams`
/// stream slots: a closed-model scenario of U users opens `ceil(U / streams)` of them (a quick
/// run's `-c C --streams S` is C connections of S users each); the open model's pool opens
/// another only when every slot of every open one is busy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Http2Settings {
    /// Concurrent streams per connection (`--streams`, 1 to [`MAX_STREAMS`]). The server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` may hold a connection to fewer; the rest then wait.
    pub streams: usize,
}

/// Most streams per HTTP/2 connection `--streams` accepts (servers usually allow 100 to 256).
pub const MAX_STREAMS: usize = 1000;

impl Http2Settings {
    /// Checks the stream count, and that connections are kept open (streams share them); for
    /// a quick run and for each plan-file scenario that speaks HTTP/2.
    pub(crate) fn validate_streams(&self, keepalive: bool) -> Result<(), PlanError> {
        if !(1..=MAX_STREAMS).contains(&self.streams) {
            return Err(PlanError::Invalid(format!(
                "--streams must be between 1 and {MAX_STREAMS}, not {}",
                self.streams
            )));
        }
        if !keepalive {
            return Err(PlanError::Invalid(
                "HTTP/2 keeps its connections open and multiplexes streams on them; drop --no-keepalive".into(),
            ));
        }
        Ok(())
    }
}

/// The closed model.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedLoad {
    /// Number of virtual users, each looping over its flow (over HTTP/1.1: each with its own
    /// connection).
    pub connections: usize,
}

/// The open model.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoad {
    /// Rate stages, run one after the other.
    pub stages: Vec<RateStage>,
    /// How arrivals are spaced.
    pub arrival: Arrival,
    /// Upper bound of the connection pool; connections are opened on demand.
    pub max_connections: usize,
    /// Bound on requests waiting or in flight; beyond it a request is counted as dropped.
    /// `None`: the default bound, [`OpenLoad::inflight_bound`].
    pub max_inflight: Option<usize>,
}

/// The most requests the default in-flight bound allows, whatever the rate and timeout: about
/// 64 MiB of waiting arrivals.
pub const MAX_DEFAULT_INFLIGHT: usize = 1_000_000;

/// The smallest default pool of a quick open-model run.
pub const MIN_DEFAULT_POOL: usize = 1000;
/// The largest default pool: well inside one address pair's ~28k ephemeral ports.
pub const MAX_DEFAULT_POOL: usize = 16_384;
/// File descriptors kept free of the default pool (probes, the watch, the process's own).
const FD_RESERVE: u64 = 256;

/// The open model's pool bound when none is given: as many connections as requests may be in
/// flight (peak rate × timeout), so that by default an arrival waits on the target, not on a
/// pool pummel sized — a target that holds its requests shows as connect timeouts and
/// unanswered requests, not as pummel's queue; at least [`MIN_DEFAULT_POOL`], at most
/// [`MAX_DEFAULT_POOL`] and what `open_files` (the open-file limit pummel raises itself to)
/// leaves. Connections still open only on demand: a target that keeps up uses few.
pub fn default_pool(peak_rate: f64, timeout: Duration, open_files: u64) -> usize {
    let by_rate = (peak_rate * timeout.as_secs_f64()).ceil();
    let by_rate = if by_rate.is_finite() { by_rate.min(MAX_DEFAULT_POOL as f64) as usize } else { MAX_DEFAULT_POOL };
    let by_files = usize::try_from(open_files.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    by_rate.clamp(MIN_DEFAULT_POOL, MAX_DEFAULT_POOL).min(by_files).max(1)
}

impl OpenLoad {
    /// The highest rate any stage offers.
    pub fn peak_rate(&self) -> f64 {
        self.stages.iter().map(|s| s.rate.max(s.ramp_from.unwrap_or(0.0))).fold(0.0, f64::max)
    }

    /// The most requests that may be waiting or in flight at once: `max_inflight` when given,
    /// otherwise peak rate × request timeout (by Little's law, more than that in flight means
    /// requests wait longer than the timeout before they are even answered), at least the pool
    /// of `users` (connections × streams) and at most [`MAX_DEFAULT_INFLIGHT`]. An arrival over
    /// the bound is `dropped`, so a stalled target cannot grow an unbounded queue in pummel.
    pub fn inflight_bound(&self, timeout: Duration, users: usize) -> usize {
        self.max_inflight.unwrap_or_else(|| {
            let by_rate = (self.peak_rate() * timeout.as_secs_f64()).ceil();
            let by_rate = if by_rate.is_finite() { by_rate.min(MAX_DEFAULT_INFLIGHT as f64) as usize } else { 0 };
            by_rate.max(users).clamp(1, MAX_DEFAULT_INFLIGHT)
        })
    }
}

/// One step of an open-model run: a constant rate for a while, or a linear ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RateStage {
    /// Requests per second (at the end of a ramp).
    pub rate: f64,
    /// How long the stage lasts.
    #[serde(with = "crate::seconds")]
    pub duration: Duration,
    /// For a linear ramp: the rate at the stage's start, rising or falling evenly to `rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_from: Option<f64>,
}

impl RateStage {
    /// A constant rate for `duration`.
    pub fn level(rate: f64, duration: Duration) -> RateStage {
        RateStage { rate, duration, ramp_from: None }
    }

    /// The rate `offset` into the stage.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        match self.ramp_from {
            None => self.rate,
            Some(from) => {
                let t = (offset.as_secs_f64() / self.duration.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
                from + (self.rate - from) * t
            }
        }
    }

    /// Requests the stage plans: rate × duration, averaged over a ramp.
    pub fn planned_requests(&self) -> f64 {
        (self.rate + self.ramp_from.unwrap_or(self.rate)) / 2.0 * self.duration.as_secs_f64()
    }
}

/// How open-model arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced, 1/rate apart.
    Uniform,
    /// Exponentially distributed gaps with mean 1/rate (a Poisson process).
    Poisson,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64, max_inflight: Option<usize>) -> OpenLoad {
        OpenLoad {
            stages: vec![RateStage::level(rate, Duration::from_secs(10))],
            arrival: Arrival::Uniform,
            max_connections: 100,
            max_inflight,
        }
    }

    #[test]
    fn the_default_pool_covers_what_may_be_in_flight() {
        let timeout = Duration::from_secs(30);
        assert_eq!(default_pool(400.0, timeout, 1 << 20), 12_000);
        assert_eq!(default_pool(10.0, timeout, 1 << 20), MIN_DEFAULT_POOL);
        assert_eq!(default_pool(1e6, timeout, 1 << 20), MAX_DEFAULT_POOL);
        assert_eq!(default_pool(400.0, timeout, 4096), 4096 - 256, "what the open files allow");
        assert_eq!(default_pool(400.0, timeout, 10), 1, "never 0");
    }

    #[test]
    fn the_default_inflight_bound_is_rate_times_timeout() {
        let timeout = Duration::from_secs(30);
        assert_eq!(open(5_000.0, None).inflight_bound(timeout, 100), 150_000);
        assert_eq!(open(1.0, None).inflight_bound(timeout, 100), 100, "never below the pool");
        assert_eq!(open(1e9, None).inflight_bound(timeout, 100), MAX_DEFAULT_INFLIGHT, "capped");
        assert_eq!(open(5_000.0, Some(7)).inflight_bound(timeout, 100), 7, "--max-inflight wins");
        let mut ramp = open(10.0, None);
        ramp.stages.push(RateStage { rate: 0.0, duration: Duration::from_secs(5), ramp_from: Some(400.0) });
        assert_eq!(ramp.inflight_bound(Duration::from_secs(2), 1), 800, "the peak of a ramp counts");
    }
}
