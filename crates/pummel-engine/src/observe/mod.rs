//! Observers: what runs beside the load to show the target's side of the story.
//!
//! - **Probes** ([`probe`]): one request every interval on a fresh connection, OK/NOK, latency,
//!   and optionally a number from a JSON body.
//! - **Target watch**: the target process through `/proc` (fds against its limit, CPU, memory,
//!   TCP sockets by state), from `pummel_system::watch`.
//!
//! Each observer runs on its own thread so a slow target or a large socket table never delays
//! the shards; the collector takes what they recorded once a second and puts it into the
//! timeline entry of that second.

pub mod probe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pummel_system::watch::{TargetWatch, WatchError, WatchSample};
use serde::Serialize;

use pummel_results::observed::{ProbeSample, TargetTotals};

use self::probe::{ProbeSpec, probe_once};
use pummel_results::histogram::{LatencyHistogram, new_histogram, record};

/// Which process to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchTarget {
    /// This PID.
    Pid(u32),
    /// The process listening on this TCP port.
    Port(u16),
}

/// The observers of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observers {
    /// Probes, each its own thread.
    pub probes: Vec<ProbeSpec>,
    /// Interval between two requests of a probe.
    #[serde(with = "crate::seconds")]
    pub probe_every: Duration,
    /// The process to watch, if any.
    pub watch: Option<WatchTarget>,
}

impl Observers {
    /// True when nothing is to be observed.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty() && self.watch.is_none()
    }

    /// Checks that the target to watch exists now, so that a typo is a clear error at the start
    /// rather than an empty column.
    pub fn open_watch(&self) -> Result<Option<TargetWatch>, WatchError> {
        match self.watch {
            None => Ok(None),
            Some(WatchTarget::Pid(pid)) => TargetWatch::for_pid(pid).map(Some),
            Some(WatchTarget::Port(port)) => TargetWatch::for_listening_port(port).map(Some),
        }
    }
}

/// What observers recorded and the collector has not taken yet.
#[derive(Debug, Default)]
struct Inbox {
    probes: Vec<ProbeSample>,
    target: Option<WatchSample>,
    target_gone: Option<String>,
}

/// Observers running beside a run.
pub(crate) struct Running {
    inbox: Arc<Mutex<Inbox>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    totals: Vec<ProbeTotals>,
    target: Option<TargetTotals>,
}

impl Running {
    /// Starts a thread per probe and one for the watch (already opened by the caller).
    pub(crate) fn start(observers: &Observers, watch: Option<TargetWatch>) -> Running {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let every = observers.probe_every.max(Duration::from_millis(100));
        for spec in observers.probes.clone() {
            let (inbox, stop) = (inbox.clone(), stop.clone());
            let spawned = std::thread::Builder::new().name("pummel-probe".into()).spawn(move || {
                let start = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let sample = probe_once(&spec);
                    if let Ok(mut inbox) = inbox.lock() {
                        inbox.probes.push(sample);
                    }
                    n += 1;
                    sleep_until(start + every * n, &stop);
                }
            });
            threads.extend(spawned.ok());
        }
        let target = watch.as_ref().map(|w| TargetTotals::new(w.pid(), w.name()));
        if let Some(mut watch) = watch {
            let (inbox, stop) = (inbox.clone(), stop.clone());
            let spawned = std::thread::Builder::new().name("pummel-watch".into()).spawn(move || {
                let start = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    sleep_until(start + Duration::from_secs(1) * n, &stop);
                    let sampled = watch.sample();
                    let Ok(mut inbox) = inbox.lock() else { return };
                    match sampled {
                        Ok(sample) => inbox.target = Some(sample),
                        Err(e) => {
                            inbox.target_gone = Some(e.to_string());
                            if e.is_gone() {
                                return;
                            }
                        }
                    }
                }
            });
            threads.extend(spawned.ok());
        }
        let totals = observers.probes.iter().map(|p| ProbeTotals::new(&p.url)).collect();
        Running { inbox, stop, threads, totals, target }
    }

    /// Takes what was recorded since the last call, and keeps the run's totals up to date.
    pub(crate) fn take(&mut self) -> (Vec<ProbeSample>, Option<WatchSample>) {
        let (probes, target, gone) = match self.inbox.lock() {
            Ok(mut inbox) => (std::mem::take(&mut inbox.probes), inbox.target.take(), inbox.target_gone.take()),
            Err(_) => (Vec::new(), None, None),
        };
        for sample in &probes {
            if let Some(totals) = self.totals.iter_mut().find(|t| t.url == sample.url) {
                totals.add(sample);
            }
        }
        if let (Some(totals), Some(sample)) = (self.target.as_mut(), target.as_ref()) {
            totals.add(sample);
        }
        if let (Some(totals), Some(why)) = (self.target.as_mut(), gone) {
            totals.note_gone(why);
        }
        (probes, target)
    }

    /// Stops the observers and returns their totals.
    pub(crate) fn finish(mut self) -> (Vec<ProbeTotals>, Option<TargetTotals>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
        let _ = self.take();
        (self.totals, self.target)
    }
}

/// Sleeps until `deadline` in short slices, so a stop is noticed within 50 ms.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// A probe's figures over the whole run.
#[derive(Debug, Clone)]
pub struct ProbeTotals {
    /// The probe's URL.
    pub url: String,
    /// Probe requests sent.
    pub sent: u64,
    /// Those that were OK.
    pub ok: u64,
    /// Latency of every answered probe.
    pub latency: LatencyHistogram,
    /// The last number read from the body, if any.
    pub last_value: Option<f64>,
    /// The highest number read from the body, if any.
    pub max_value: Option<f64>,
}

impl ProbeTotals {
    fn new(url: &str) -> Self {
        ProbeTotals {
            url: url.to_string(),
            sent: 0,
            ok: 0,
            latency: new_histogram(),
            last_value: None,
            max_value: None,
        }
    }

    fn add(&mut self, sample: &ProbeSample) {
        self.sent += 1;
        self.ok += u64::from(sample.ok);
        if let Some(ms) = sample.latency_ms {
            record(&mut self.latency, Duration::from_secs_f64(ms / 1000.0));
        }
        if let Some(v) = sample.value {
            self.last_value = Some(v);
            self.max_value = Some(self.max_value.map_or(v, |m: f64| m.max(v)));
        }
    }

    /// Share of probes that were OK (`None` before the first).
    pub fn ok_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.ok as f64 / self.sent as f64)
    }
}
