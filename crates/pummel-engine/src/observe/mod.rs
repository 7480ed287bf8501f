//! Observers: what runs beside the load to show the target's side of the story.
//!
//! - **Probes** ([`probe`]): one request every interval on a fresh connection, OK/NOK, latency,
//!   and optionally a number from a JSON body or a Prometheus exposition ([`exposition`]).
//! - **Target watch**: the target process through `/proc` (fds against its limit, CPU, memory,
//!   TCP sockets by state), from `pummel_system::watch`.
//!
//! Each observer runs on its own thread so a slow target or a large socket table never delays
//! the shards; the collector takes what they recorded once a second and puts it into the
//! timeline entry of that second.
//!
//! The watch samples when the collector asks, not on a clock of its own: when the collector
//! closes a second it asks for that second's sample and waits for it (at most
//! [`WATCH_WAIT`]). Two clocks a few milliseconds apart — the watch's and the shards' — used to
//! race at every second's end: a sample that landed just after the collector's take left that
//! second empty, and the next sample overwrote it. Now each second gets its own sample, or its
//! `watch_gap` says why not (the target went away, could not be read, or the sample took
//! longer than [`WATCH_WAIT`]; a late sample is dropped, its warnings carried to the next).
//! The run's target totals are then made from the timeline's samples only
//! ([`TargetTotals::from_timeline`]), so every peak of the summary is some second's figure.

pub mod exposition;
pub mod probe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pummel_system::watch::{TargetWatch, WatchError, WatchSample};
use serde::Serialize;

use pummel_results::observed::{ProbeSample, TargetTotals};
use pummel_results::timeline::TimelineEntry;
use pummel_system::watch::Warning;

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

/// How long the collector waits for a second's sample of the target before it marks the
/// second as a gap. A sample costs a few milliseconds, ~40 ms at 10,000 sockets in a release
/// build; this leaves room for a busy machine and still keeps the live view on time.
pub(crate) const WATCH_WAIT: Duration = Duration::from_millis(800);

/// What the probes recorded and the collector has not taken yet.
#[derive(Debug, Default)]
struct Inbox {
    probes: Vec<ProbeSample>,
}

/// The watch thread's answer for one second.
type Answer = (u64, Result<WatchSample, String>);

/// Why a second has no sample of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Missing {
    /// The sample was not ready within the wait.
    Late(Duration),
    /// The watch failed: the target went away or could not be read.
    Failed(String),
}

impl Missing {
    /// The `watch_gap` of the second.
    fn reason(&self) -> String {
        match self {
            Missing::Late(wait) => format!("no sample within {} ms", wait.as_millis()),
            Missing::Failed(why) => why.clone(),
        }
    }
}

/// Requests and answers between the collector and the watch thread.
#[derive(Debug, Default)]
struct WatchDesk {
    /// The second the collector wants a sample for (a newer request replaces an older one).
    wanted: Option<u64>,
    /// The latest sample taken, with the second it was asked for.
    answer: Option<Answer>,
    /// Set when the watch thread ended because the target went away.
    ended: Option<String>,
    stop: bool,
}

/// The desk and the condition variable both sides wait on.
#[derive(Debug, Default)]
struct WatchLink {
    desk: Mutex<WatchDesk>,
    changed: Condvar,
}

/// Samples the watched target when asked: the local `/proc` watch ([`TargetWatch`]), or an
/// agent on the target's machine (`pummel agent --watch-only`) that a coordinator asks.
pub trait Sampler: Send + 'static {
    /// The target's state now.
    fn sample(&mut self) -> Result<WatchSample, SampleFailure>;
    /// The watched process.
    fn pid(&self) -> u32;
    /// Its name.
    fn name(&self) -> &str;
}

/// Why a sample could not be taken.
#[derive(Debug, Clone)]
pub struct SampleFailure {
    /// What happened, for the `watch_gap` of the second.
    pub text: String,
    /// The target (or the agent watching it) is gone for good: no more samples will come.
    pub gone: bool,
}

impl Sampler for TargetWatch {
    fn sample(&mut self) -> Result<WatchSample, SampleFailure> {
        TargetWatch::sample(self).map_err(|e| SampleFailure { text: e.to_string(), gone: e.is_gone() })
    }

    fn pid(&self) -> u32 {
        TargetWatch::pid(self)
    }

    fn name(&self) -> &str {
        TargetWatch::name(self)
    }
}

impl WatchLink {
    /// The watch thread: one sample per request until stopped or the target is gone.
    fn serve(&self, mut watch: Box<dyn Sampler>) {
        loop {
            let second = {
                let Ok(mut desk) = self.desk.lock() else { return };
                loop {
                    if desk.stop {
                        return;
                    }
                    if let Some(second) = desk.wanted.take() {
                        break second;
                    }
                    desk = match self.changed.wait(desk) {
                        Ok(desk) => desk,
                        Err(_) => return,
                    };
                }
            };
            let sampled = watch.sample();
            let Ok(mut desk) = self.desk.lock() else { return };
            let gone = matches!(&sampled, Err(e) if e.gone);
            let sampled = sampled.map_err(|e| e.text);
            if gone {
                desk.ended = sampled.as_ref().err().cloned();
            }
            desk.answer = Some((second, sampled));
            self.changed.notify_all();
            if gone {
                return;
            }
        }
    }

    /// Asks for the sample of `second` and waits for it at most `wait`: the sample, or why the
    /// second has none. Answers to earlier seconds that come in late are handed to `late`.
    fn ask(&self, second: u64, wait: Duration, mut late: impl FnMut(WatchSample)) -> Result<WatchSample, Missing> {
        let stopped = || Missing::Failed("the watch stopped".into());
        let deadline = Instant::now() + wait;
        let Ok(mut desk) = self.desk.lock() else { return Err(stopped()) };
        if desk.ended.is_none() {
            desk.wanted = Some(second);
            self.changed.notify_all();
        }
        loop {
            match desk.answer.take() {
                Some((asked, result)) if asked == second => return result.map_err(Missing::Failed),
                Some((_, Ok(sample))) => late(sample),
                Some((_, Err(_))) | None => {}
            }
            if let Some(why) = &desk.ended {
                return Err(Missing::Failed(why.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Missing::Late(wait));
            }
            desk = match self.changed.wait_timeout(desk, left) {
                Ok((desk, _)) => desk,
                Err(_) => return Err(stopped()),
            };
        }
    }

    fn stop(&self) {
        if let Ok(mut desk) = self.desk.lock() {
            desk.stop = true;
        }
        self.changed.notify_all();
    }
}

/// The watched target's side of [`Running`].
struct Watched {
    link: Arc<WatchLink>,
    pid: u32,
    name: String,
    /// Warnings of late samples, given with the next sample that makes it into the timeline.
    carried: Vec<Warning>,
    /// The first reason a second had no sample because the watch failed.
    gone: Option<String>,
}

/// Observers running beside a run.
pub(crate) struct Running {
    inbox: Arc<Mutex<Inbox>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    totals: Vec<ProbeTotals>,
    watched: Option<Watched>,
}

impl Running {
    /// Starts a thread per probe and one for the watch (already opened by the caller).
    pub(crate) fn start(observers: &Observers, watch: Option<Box<dyn Sampler>>) -> Running {
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
        let mut watched = None;
        if let Some(watch) = watch {
            let link = Arc::new(WatchLink::default());
            let (pid, name) = (watch.pid(), watch.name().to_string());
            let serving = link.clone();
            let spawned = std::thread::Builder::new().name("pummel-watch".into()).spawn(move || serving.serve(watch));
            let gone = spawned.as_ref().err().map(|e| format!("the watch thread could not start: {e}"));
            threads.extend(spawned.ok());
            watched = Some(Watched { link, pid, name, carried: Vec::new(), gone });
        }
        let totals = observers.probes.iter().map(|p| ProbeTotals::new(&p.url)).collect();
        Running { inbox, stop, threads, totals, watched }
    }

    /// Fills the observers' part of the timeline entry being closed: the probes that completed
    /// since the last call, and the target's sample of this second (asked for now, see the
    /// module doc) or why it has none.
    pub(crate) fn fill(&mut self, entry: &mut TimelineEntry) {
        let probes = match self.inbox.lock() {
            Ok(mut inbox) => std::mem::take(&mut inbox.probes),
            Err(_) => Vec::new(),
        };
        for sample in &probes {
            if let Some(totals) = self.totals.iter_mut().find(|t| t.url == sample.url) {
                totals.add(sample);
            }
        }
        entry.probes = probes;
        if let Some(watched) = self.watched.as_mut() {
            (entry.target, entry.watch_gap) = watched.take(entry.second, WATCH_WAIT);
        }
    }

    /// Stops the observers and returns their totals; the target's are made from the samples
    /// that `timeline` holds.
    pub(crate) fn finish(mut self, timeline: &[TimelineEntry]) -> (Vec<ProbeTotals>, Option<TargetTotals>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watched) = &self.watched {
            watched.link.stop();
        }
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
        if let Ok(mut inbox) = self.inbox.lock() {
            for sample in std::mem::take(&mut inbox.probes) {
                if let Some(totals) = self.totals.iter_mut().find(|t| t.url == sample.url) {
                    totals.add(&sample);
                }
            }
        }
        let target = self.watched.map(|watched| {
            let mut totals = TargetTotals::from_timeline(watched.pid, &watched.name, timeline);
            if let Some(why) = watched.gone {
                totals.note_gone(why);
            }
            totals
        });
        (self.totals, target)
    }
}

impl Watched {
    /// The sample of `second`, with the warnings of late samples before it; or why none.
    fn take(&mut self, second: u64, wait: Duration) -> (Option<WatchSample>, Option<String>) {
        let carried = &mut self.carried;
        match self.link.ask(second, wait, |late| carried.extend(late.warnings)) {
            Ok(mut sample) => {
                if !self.carried.is_empty() {
                    self.carried.append(&mut sample.warnings);
                    sample.warnings = std::mem::take(&mut self.carried);
                }
                (Some(sample), None)
            }
            Err(missing) => {
                if let Missing::Failed(why) = &missing {
                    self.gone.get_or_insert_with(|| why.clone());
                }
                (None, Some(missing.reason()))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_system::watch::WarningKind;

    /// A sample of this test process.
    fn own_sample() -> WatchSample {
        let mut watch = TargetWatch::for_pid(std::process::id()).expect("watch self");
        watch.sample().expect("sample self")
    }

    fn watched(link: Arc<WatchLink>) -> Watched {
        Watched { link, pid: 1, name: "t".into(), carried: Vec::new(), gone: None }
    }

    #[test]
    fn every_second_asked_gets_its_own_sample() {
        let link = Arc::new(WatchLink::default());
        let watch = TargetWatch::for_pid(std::process::id()).expect("watch self");
        let serving = link.clone();
        let thread = std::thread::spawn(move || serving.serve(Box::new(watch)));
        let mut elapsed = Vec::new();
        for second in 1..=5 {
            std::thread::sleep(Duration::from_millis(60));
            let sample = link.ask(second, Duration::from_secs(30), |_| panic!("no late answer")).expect("a sample");
            elapsed.push(sample.elapsed_ms);
        }
        link.stop();
        thread.join().expect("watch thread");
        assert!(elapsed.windows(2).all(|w| w[1] > w[0]), "five samples, each taken when asked: {elapsed:?}");
    }

    #[test]
    fn a_sample_not_ready_in_time_is_a_gap_and_its_warnings_come_with_the_next() {
        let link = Arc::new(WatchLink::default());
        let mut w = watched(link.clone());
        let mut late = own_sample();
        late.warnings = vec![Warning { kind: WarningKind::CloseWaitGrowing, text: "late one".into() }];
        // Nobody answers second 2 in time; an answer to second 1 comes in meanwhile.
        if let Ok(mut desk) = link.desk.lock() {
            desk.answer = Some((1, Ok(late)));
        }
        let (sample, gap) = w.take(2, Duration::from_millis(50));
        assert!(sample.is_none());
        assert_eq!(gap.as_deref(), Some("no sample within 50 ms"));
        assert_eq!(w.gone, None, "late is not gone");

        if let Ok(mut desk) = link.desk.lock() {
            assert_eq!(desk.wanted, Some(2), "the request stays for the watch thread");
            desk.answer = Some((3, Ok(own_sample())));
        }
        let (sample, gap) = w.take(3, Duration::from_millis(50));
        let sample = sample.expect("second 3 has its sample");
        assert_eq!(gap, None);
        assert_eq!(sample.warnings.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(), ["late one"]);
    }

    #[test]
    fn a_target_gone_is_a_gap_at_once_from_then_on() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let watch = TargetWatch::for_pid(child.id()).expect("watch child");
        let link = Arc::new(WatchLink::default());
        let serving = link.clone();
        let thread = std::thread::spawn(move || serving.serve(Box::new(watch)));
        let mut w = watched(link.clone());
        assert!(w.take(1, Duration::from_secs(30)).0.is_some(), "alive: a sample");
        let _ = child.kill();
        let _ = child.wait();
        let (sample, gap) = w.take(2, Duration::from_secs(30));
        assert!(sample.is_none());
        assert!(gap.as_deref().is_some_and(|g| g.contains("gone")), "{gap:?}");
        assert!(w.gone.is_some());
        thread.join().expect("the watch thread ends with its target");
        let asked = Instant::now();
        let (sample, gap) = w.take(3, Duration::from_secs(30));
        assert!(sample.is_none() && gap.is_some());
        assert!(asked.elapsed() < Duration::from_secs(5), "no wait once the watch has ended");
    }
}
