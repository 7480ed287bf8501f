//! The executor: carries out a run's faults on its own thread, on the run's clock, and undoes
//! everything it started on every way out.
//!
//! [`Running::start`] starts the plan's proxies (so that the load can connect through them from
//! its first request; a proxy that cannot bind is an error before anything runs) and the
//! thread. The thread starts and ends each fault at its time and writes a [`FaultMark`] for
//! each step, which the run's collector puts into the timeline ([`Running::take_marks`]). When
//! the run is cut short (the `cut` callback: Ctrl-C or an abort rule), it undoes every fault
//! at once, without waiting for the drain; [`Running::finish`] (or dropping the handle, on
//! an error or a panic) undoes what is left and stops the proxies. What is on is also kept in
//! a process-wide list, so that a second Ctrl-C, which exits at once, can still undo it
//! ([`undo_now`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pummel_proxy::{ProxyHandle, ProxySpec};
use pummel_results::fault::{FaultEvent, FaultMark, FaultWindow};
use rustix::process::Signal;

use crate::process;
use crate::spec::{Action, Fault, FaultPlan, ProcessTarget, ProxyEffect};

/// How long a command (`exec`, `undo`) may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// How long a restarted process has to accept on its port.
const RESTART_WAIT: Duration = Duration::from_secs(30);
/// The thread's longest sleep: how soon it notices a stop.
const TICK: Duration = Duration::from_millis(20);

/// Why the faults could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A `[proxy.NAME]` could not be started (its address is taken, ...).
    #[error("cannot start the fault proxies: {0}")]
    Proxy(#[from] pummel_proxy::StartError),
    /// The thread could not be created.
    #[error("cannot start the fault thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// What must be done to undo a fault that is on, also from [`undo_now`].
#[derive(Debug, Clone)]
enum Undo {
    Cont(Vec<u32>),
    Command(String),
    Restart(String),
}

/// Faults that are on now, in the whole process, by a unique id.
static PENDING: Mutex<BTreeMap<u64, Undo>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Undoes every fault that is on, at once (SIGCONT, undo commands, restarts), for a process
/// about to exit without the orderly end (a second Ctrl-C). Proxies end with the process.
pub fn undo_now() -> Vec<String> {
    let pending = match PENDING.lock() {
        Ok(mut pending) => std::mem::take(&mut *pending),
        Err(_) => return Vec::new(),
    };
    pending
        .into_values()
        .map(|undo| match undo {
            Undo::Cont(pids) => match process::signal(&pids, Signal::CONT) {
                Ok(()) => format!("SIGCONT sent to {}", list(&pids)),
                Err(e) => format!("SIGCONT failed: {e}"),
            },
            Undo::Command(cmd) => match process::run(&cmd, Duration::from_secs(5)) {
                Ok(()) => format!("undo `{cmd}` ran"),
                Err(e) => e,
            },
            Undo::Restart(cmd) => match process::spawn_detached(&cmd) {
                Ok(_) => format!("restart `{cmd}` started"),
                Err(e) => e,
            },
        })
        .collect()
}

fn register(undo: Undo) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut pending) = PENDING.lock() {
        pending.insert(id, undo);
    }
    id
}

fn unregister(id: u64) {
    if let Ok(mut pending) = PENDING.lock() {
        pending.remove(&id);
    }
}

/// What the thread and the collector share.
#[derive(Debug, Default)]
struct Shared {
    marks: Mutex<Vec<FaultMark>>,
    windows: Mutex<Vec<FaultWindow>>,
}

/// The faults of a run, being carried out.
pub struct Running {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts the proxies and the fault thread. `start` is the run's time zero; `cut` says
    /// whether the run has been cut short (every fault is then undone at once).
    pub fn start(
        plan: &FaultPlan,
        start: Instant,
        cut: impl Fn() -> bool + Send + 'static,
    ) -> Result<Running, StartError> {
        let proxies = if plan.proxies.is_empty() {
            None
        } else {
            let specs = plan
                .proxies
                .iter()
                .map(|p| ProxySpec {
                    name: p.name.clone(),
                    listen: p.listen.clone(),
                    upstream: p.upstream.clone(),
                    enabled: true,
                    toxics: Vec::new(),
                })
                .collect();
            Some(pummel_proxy::start(pummel_proxy::Options { proxies: specs, api: None, threads: 1 }, None)?)
        };
        let windows = plan
            .faults
            .iter()
            .map(|f| FaultWindow {
                name: f.name.clone(),
                action: f.describe(),
                started_s: None,
                ended_s: None,
                undone_at_exit: false,
                error: None,
            })
            .collect();
        let shared = Arc::new(Shared { marks: Mutex::new(Vec::new()), windows: Mutex::new(windows) });
        let stop = Arc::new(AtomicBool::new(false));
        let mut executor = Executor {
            faults: plan.faults.clone(),
            proxies,
            start,
            shared: shared.clone(),
            on: plan.faults.iter().map(|_| None).collect(),
            started: Vec::new(),
        };
        let stopping = stop.clone();
        let thread = std::thread::Builder::new().name("pummel-faults".into()).spawn(move || {
            executor.run(&stopping, &cut);
        })?;
        Ok(Running { shared, stop, thread: Some(thread) })
    }

    /// The marks of everything that happened before `before` (from the run's start), taken
    /// out: the collector's share for the second it closes.
    pub fn take_marks(&self, before: Duration) -> Vec<FaultMark> {
        let Ok(mut marks) = self.shared.marks.lock() else { return Vec::new() };
        let limit = before.as_secs_f64();
        let (due, later): (Vec<FaultMark>, Vec<FaultMark>) = marks.drain(..).partition(|m| m.at_s < limit);
        *marks = later;
        due
    }

    /// Undoes what is still on, stops the proxies, and returns every fault's window and the
    /// marks not taken yet (those of the undo, at the run's end).
    pub fn finish(mut self) -> (Vec<FaultWindow>, Vec<FaultMark>) {
        self.stop_and_join();
        let windows = self.shared.windows.lock().map(|w| w.clone()).unwrap_or_default();
        let marks = self.shared.marks.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default();
        (windows, marks)
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Dropped without [`Running::finish`] (an error, a panic): the faults are still undone.
impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A fault that is on, and what undoes it.
#[derive(Debug)]
struct On {
    /// Its entry in [`PENDING`], if undoing it needs more than the proxies.
    id: Option<u64>,
    what: OnWhat,
}

#[derive(Debug)]
enum OnWhat {
    ProxyDown(String),
    Toxics(String, Vec<String>),
    Stopped(Vec<u32>),
    Killed { restart: Option<String>, ports: Vec<u16> },
    Exec(Option<String>),
}

/// The thread's state.
struct Executor {
    faults: Vec<Fault>,
    proxies: Option<ProxyHandle>,
    start: Instant,
    shared: Arc<Shared>,
    /// What each fault has on, by index.
    on: Vec<Option<On>>,
    /// Indexes of faults in the order they started (undone in reverse).
    started: Vec<usize>,
}

impl Executor {
    fn run(&mut self, stop: &AtomicBool, cut: &dyn Fn() -> bool) {
        let mut steps: Vec<(Duration, usize, bool)> = Vec::new();
        for (index, fault) in self.faults.iter().enumerate() {
            steps.push((fault.at, index, true));
            if let Some(end) = fault.end() {
                steps.push((end, index, false));
            }
        }
        // Ends before starts at the same time, so a fault that follows another starts clean.
        steps.sort_by_key(|&(at, index, begins)| (at, begins, index));
        let mut steps = steps.into_iter().peekable();
        let mut was_cut = false;
        while !stop.load(Ordering::SeqCst) {
            if !was_cut && cut() {
                was_cut = true;
                self.undo_all();
            }
            let now = self.start.elapsed();
            match steps.peek() {
                Some(&(at, index, begins)) if !was_cut && at <= now && Instant::now() >= self.start => {
                    steps.next();
                    if begins {
                        self.begin(index);
                    } else {
                        self.end(index, FaultEvent::Ended);
                    }
                }
                Some(&(at, _, _)) if !was_cut => {
                    let wait = (self.start + at).saturating_duration_since(Instant::now());
                    std::thread::sleep(wait.clamp(Duration::from_millis(1), TICK));
                }
                _ => std::thread::sleep(TICK),
            }
        }
        self.undo_all();
        self.proxies = None;
    }

    /// Seconds since the run's start.
    fn now_s(&self) -> f64 {
        Instant::now().saturating_duration_since(self.start).as_secs_f64()
    }

    fn mark(&self, index: usize, event: FaultEvent, at_s: f64, detail: String) {
        let name = self.faults[index].name.clone();
        if let Ok(mut marks) = self.shared.marks.lock() {
            marks.push(FaultMark { name, event, at_s, detail });
        }
    }

    fn window(&self, index: usize, change: impl FnOnce(&mut FaultWindow)) {
        if let Ok(mut windows) = self.shared.windows.lock() {
            if let Some(window) = windows.get_mut(index) {
                change(window);
            }
        }
    }

    fn begin(&mut self, index: usize) {
        let at_s = self.now_s();
        match self.switch_on(index) {
            Ok((on, detail)) => {
                self.on[index] = Some(on);
                self.started.push(index);
                self.window(index, |w| w.started_s = Some(at_s));
                self.mark(index, FaultEvent::Started, at_s, detail);
            }
            Err(why) => {
                self.window(index, |w| w.error = Some(format!("could not start: {why}")));
                self.mark(index, FaultEvent::Failed, at_s, format!("could not start: {why}"));
            }
        }
    }

    fn switch_on(&mut self, index: usize) -> Result<(On, String), String> {
        let fault = &self.faults[index];
        match &fault.action {
            Action::Proxy { proxy, effect } => {
                let handle = self.proxies.as_ref().ok_or("no proxy was started")?;
                match effect {
                    ProxyEffect::Down => {
                        handle.block_on(handle.proxies().set_enabled(proxy, false)).map_err(|e| e.to_string())?;
                        Ok((On { id: None, what: OnWhat::ProxyDown(proxy.clone()) }, format!("proxy {proxy} down")))
                    }
                    ProxyEffect::Toxics(toxics) => {
                        let mut names = Vec::new();
                        for toxic in toxics {
                            let added = handle.block_on(handle.proxies().add_toxic(proxy, toxic.clone()));
                            match added {
                                Ok(t) => names.push(t.name),
                                Err(e) => {
                                    for name in &names {
                                        let _ = handle.block_on(handle.proxies().remove_toxic(proxy, name));
                                    }
                                    return Err(e.to_string());
                                }
                            }
                        }
                        let shown: Vec<String> = toxics.iter().map(crate::spec::short_toxic).collect();
                        let detail = format!("proxy {proxy}: {}", shown.join(", "));
                        Ok((On { id: None, what: OnWhat::Toxics(proxy.clone(), names) }, detail))
                    }
                }
            }
            Action::Stop { target } => {
                let pids = process::resolve(*target)?;
                let id = register(Undo::Cont(pids.clone()));
                if let Err(e) = process::signal(&pids, Signal::STOP) {
                    // Whatever was stopped is continued.
                    let _ = process::signal(&pids, Signal::CONT);
                    unregister(id);
                    return Err(e);
                }
                Ok((
                    On { id: Some(id), what: OnWhat::Stopped(pids.clone()) },
                    format!("SIGSTOP sent to {}", list(&pids)),
                ))
            }
            Action::Kill { target, restart } => {
                let pids = process::resolve(*target)?;
                let ports = match target {
                    ProcessTarget::Port(port) => vec![*port],
                    ProcessTarget::Pid(_) => pids.iter().flat_map(|p| process::listening_ports(*p)).collect(),
                };
                process::signal(&pids, Signal::KILL)?;
                let id = restart.clone().map(|cmd| register(Undo::Restart(cmd)));
                let detail = format!("SIGKILL sent to {}", list(&pids));
                Ok((On { id, what: OnWhat::Killed { restart: restart.clone(), ports } }, detail))
            }
            Action::Exec { command, undo } => {
                process::run(command, COMMAND_LIMIT)?;
                let id = undo.clone().map(|cmd| register(Undo::Command(cmd)));
                Ok((On { id, what: OnWhat::Exec(undo.clone()) }, format!("`{command}` ran")))
            }
        }
    }

    /// Ends fault `index` if it is on; `event` says why (its end, or the run's).
    fn end(&mut self, index: usize, event: FaultEvent) {
        let Some(on) = self.on[index].take() else { return };
        self.started.retain(|&i| i != index);
        let result = self.switch_off(on.what);
        if let Some(id) = on.id {
            unregister(id);
        }
        let at_s = self.now_s();
        let at_exit = event == FaultEvent::Undone;
        match result {
            Ok(detail) => {
                self.window(index, |w| {
                    w.ended_s = Some(at_s);
                    w.undone_at_exit = at_exit;
                });
                self.mark(index, event, at_s, detail);
            }
            Err(why) => {
                let why = format!("could not undo: {why}");
                self.window(index, |w| {
                    w.ended_s = Some(at_s);
                    w.undone_at_exit = at_exit;
                    w.error = Some(why.clone());
                });
                self.mark(index, FaultEvent::Failed, at_s, why);
            }
        }
    }

    fn switch_off(&mut self, what: OnWhat) -> Result<String, String> {
        let proxies = || self.proxies.as_ref().ok_or_else(|| "the proxies are gone".to_string());
        match what {
            OnWhat::ProxyDown(proxy) => {
                let handle = proxies()?;
                handle.block_on(handle.proxies().set_enabled(&proxy, true)).map_err(|e| e.to_string())?;
                Ok(format!("proxy {proxy} up again"))
            }
            OnWhat::Toxics(proxy, names) => {
                let handle = proxies()?;
                for name in &names {
                    handle.block_on(handle.proxies().remove_toxic(&proxy, name)).map_err(|e| e.to_string())?;
                }
                Ok(format!("proxy {proxy}: toxics removed"))
            }
            OnWhat::Stopped(pids) => {
                process::signal(&pids, Signal::CONT)?;
                Ok(format!("SIGCONT sent to {}", list(&pids)))
            }
            OnWhat::Killed { restart: None, .. } => Ok("not restarted (no restart command)".to_string()),
            OnWhat::Killed { restart: Some(cmd), ports } => {
                // Dropping the child does not stop it; it outlives pummel as the target should.
                let _child = process::spawn_detached(&cmd)?;
                let mut detail = format!("restarted with `{cmd}`");
                for port in ports {
                    let took = process::wait_for_port(port, RESTART_WAIT)?;
                    detail.push_str(&format!(", port {port} accepts after {:.1} s", took.as_secs_f64()));
                }
                Ok(detail)
            }
            OnWhat::Exec(None) => Ok("no undo command".to_string()),
            OnWhat::Exec(Some(cmd)) => {
                process::run(&cmd, COMMAND_LIMIT)?;
                Ok(format!("undo `{cmd}` ran"))
            }
        }
    }

    /// Undoes every fault that is on, the last started first.
    fn undo_all(&mut self) {
        while let Some(&index) = self.started.last() {
            self.end(index, FaultEvent::Undone);
        }
    }
}

/// `1234` or `1234, 1240, 1241`.
fn list(pids: &[u32]) -> String {
    let shown: Vec<String> = pids.iter().map(u32::to_string).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('?')
    }

    fn stop_fault(pid: u32, at_ms: u64, for_ms: Option<u64>) -> Fault {
        Fault {
            name: "stop".into(),
            at: Duration::from_millis(at_ms),
            length: for_ms.map(Duration::from_millis),
            action: Action::Stop { target: ProcessTarget::Pid(pid) },
        }
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_stop_fault_starts_ends_and_is_marked() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        let plan = FaultPlan { faults: vec![stop_fault(pid, 50, Some(300))], ..FaultPlan::default() };
        let running = Running::start(&plan, Instant::now(), || false).expect("start");
        wait_for("stopped", || state(pid) == 'T');
        wait_for("continued", || state(pid) != 'T');
        let (windows, rest) = running.finish();
        let marks: Vec<FaultEvent> = rest.iter().map(|m| m.event).collect();
        assert_eq!(marks, [FaultEvent::Started, FaultEvent::Ended]);
        assert!(!windows[0].undone_at_exit);
        let (start, end) = (windows[0].started_s.expect("started"), windows[0].ended_s.expect("ended"));
        assert!(start >= 0.05 && end >= 0.35, "{start} {end}: at 50 ms, for 300 ms");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_fault_still_on_is_undone_when_the_run_is_cut_or_the_handle_dropped() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        let cut = Arc::new(AtomicBool::new(false));
        let plan = FaultPlan { faults: vec![stop_fault(pid, 0, None)], ..FaultPlan::default() };
        let seen = cut.clone();
        let running = Running::start(&plan, Instant::now(), move || seen.load(Ordering::SeqCst)).expect("start");
        wait_for("stopped", || state(pid) == 'T');
        assert!(PENDING.lock().map(|p| !p.is_empty()).unwrap_or(false), "registered for undo_now");
        cut.store(true, Ordering::SeqCst);
        wait_for("continued once cut, before finish", || state(pid) != 'T');
        let (windows, marks) = running.finish();
        assert!(windows[0].undone_at_exit);
        assert_eq!(marks.last().map(|m| m.event), Some(FaultEvent::Undone));

        let plan = FaultPlan { faults: vec![stop_fault(pid, 0, None)], ..FaultPlan::default() };
        let running = Running::start(&plan, Instant::now(), || false).expect("start");
        wait_for("stopped again", || state(pid) == 'T');
        drop(running);
        assert_ne!(state(pid), 'T', "dropping the handle undoes");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_fault_that_cannot_start_is_marked_failed() {
        let plan = FaultPlan { faults: vec![stop_fault(999_999_999, 0, Some(10))], ..FaultPlan::default() };
        let running = Running::start(&plan, Instant::now(), || false).expect("start");
        std::thread::sleep(Duration::from_millis(100));
        let marks = running.take_marks(Duration::from_secs(60));
        let (windows, _) = running.finish();
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].event, FaultEvent::Failed);
        assert!(windows[0].error.as_deref().is_some_and(|e| e.contains("no process")), "{windows:?}");
        assert_eq!(windows[0].started_s, None);
    }
}
