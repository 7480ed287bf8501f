//! `pummel sink --processes N`: one sink served by N processes that share the port.
//!
//! One process is limited by what one process does well (one accept queue, one allocator,
//! one set of counters); the kernel spreads connections over several listening sockets bound
//! with `SO_REUSEPORT` by their 4-tuple hash. The process the user started (the *parent*)
//! binds first, so that `--listen` may ask for port 0, then starts N-1 copies of itself
//! (*members*, `--process-index i`) that bind the port it got, and announces the sink once
//! every member listens.
//!
//! Members report to the parent on their stdout, one JSON line per message ([`Report`]):
//! `listening`, their counters every second, and their final counters when they stop. The
//! parent prints and records totals over all processes. A member stops on SIGINT/SIGTERM (the
//! parent forwards its own stop to each member by PID) and when its stdin, a pipe from the
//! parent, reaches its end: a parent that dies, even by SIGKILL, leaves no member behind.
//! With `--record FILE` each member records into `FILE.part<i>`, which the parent appends to
//! FILE once every member stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pummel_sink::StatsSnapshot;
use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};

use super::sink::Settings;
use super::{CliError, ExitStatus};
use crate::cli::SinkArgs;

/// How long the parent waits for every member to listen.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long the parent waits for the members' final counters once it asked them to stop.
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// How often a member sends its counters.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A message from a member to the parent: one JSON line on the member's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Report {
    /// The member bound the port and accepts.
    Listening(SocketAddr),
    /// Its counters now.
    Stats(StatsSnapshot),
    /// Its counters once it stopped serving: the last message.
    Final(StatsSnapshot),
}

/// What the parent learns about member `i`.
enum Event {
    /// A message.
    Report(Report),
    /// Its stdout ended: it exited (or is about to).
    Ended,
}

/// The members of a multi-process sink, seen from the parent.
pub(super) struct ProcessGroup {
    members: Vec<Member>,
    events: Receiver<(usize, Event)>,
}

/// One member process.
struct Member {
    child: Child,
    /// Its stdin: the member stops when this is closed (dropped).
    stdin: Option<ChildStdin>,
    /// Its latest counters.
    latest: StatsSnapshot,
    /// Its final counters, once sent.
    last: Option<StatsSnapshot>,
    /// Its stdout ended.
    ended: bool,
}

/// Flags that cannot be shared by several processes are usage errors.
pub(super) fn check_flags(args: &SinkArgs) -> Result<(), CliError> {
    if args.tls && args.cert.is_none() {
        return Err(CliError::usage(anyhow!(
            "--processes {} with --tls needs --cert and --key: every process must serve the same \
             certificate, and a generated one would differ in each",
            args.processes
        )));
    }
    if args.store {
        return Err(CliError::usage(anyhow!(
            "--processes {} with --store: each process would keep a store of its own, and a read              could reach another process than its write",
            args.processes
        )));
    }
    Ok(())
}

impl ProcessGroup {
    /// Starts `--processes` - 1 members on `addr` (the port this process bound) and waits until
    /// each listens. A member that fails to start (its error goes to stderr) stops them all:
    /// the sink could not start.
    pub(super) fn start(args: &SinkArgs, addr: SocketAddr) -> Result<ProcessGroup, CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::cannot_start(anyhow!("cannot find pummel's own executable: {e}")))?;
        let (sender, events) = mpsc::channel();
        let mut group = ProcessGroup { members: Vec::new(), events };
        for index in 1..usize::from(args.processes) {
            let mut child = Command::new(&exe)
                .args(member_args(args, addr, index))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| CliError::cannot_start(anyhow!("cannot start sink process {index}: {e}")))?;
            let stdin = child.stdin.take();
            if let Some(stdout) = child.stdout.take() {
                listen_to(index - 1, stdout, sender.clone());
            }
            group.members.push(Member { child, stdin, latest: StatsSnapshot::default(), last: None, ended: false });
        }
        drop(sender);
        group.wait_listening(addr)?;
        Ok(group)
    }

    /// The members' process ids.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.child.id()).collect()
    }

    /// Waits for every member's `listening`; on port `addr`'s port.
    fn wait_listening(&mut self, addr: SocketAddr) -> Result<(), CliError> {
        let deadline = Instant::now() + START_LIMIT;
        let mut listening = vec![false; self.members.len()];
        while listening.iter().any(|l| !l) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((index, Event::Report(Report::Listening(bound)))) if bound.port() == addr.port() => {
                    listening[index] = true;
                }
                Ok((index, Event::Report(Report::Listening(bound)))) => {
                    return Err(CliError::cannot_start(anyhow!(
                        "sink process {} listens on {bound}, not on {addr}",
                        index + 1
                    )));
                }
                Ok((index, Event::Ended)) => {
                    return Err(CliError::cannot_start(anyhow!(
                        "sink process {} ended before it listened on {addr} (its error is above)",
                        index + 1
                    )));
                }
                Ok((index, Event::Report(report))) => self.note(index, report),
                Err(_) => {
                    return Err(CliError::cannot_start(anyhow!(
                        "the sink processes did not all listen on {addr} within {START_LIMIT:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Takes in the members' messages so far (call it often; it does not wait).
    pub(super) fn poll(&mut self) {
        while let Ok((index, event)) = self.events.try_recv() {
            self.handle(index, event);
        }
    }

    /// The sum of the members' latest counters.
    pub(super) fn latest(&self) -> StatsSnapshot {
        let mut total = StatsSnapshot::default();
        for member in &self.members {
            total.add(&member.latest);
        }
        total
    }

    /// Stops every member (SIGTERM by PID, and its stdin closed) and returns each one's final
    /// counters (its latest ones when it did not send them in time; a warning says so).
    pub(super) fn stop(mut self) -> Vec<StatsSnapshot> {
        for member in &mut self.members {
            if let Some(pid) = i32::try_from(member.child.id()).ok().and_then(Pid::from_raw) {
                // It may have exited already; then there is nothing to stop.
                let _ = kill_process(pid, Signal::TERM);
            }
            member.stdin = None;
        }
        let deadline = Instant::now() + STOP_LIMIT;
        while self.members.iter().any(|m| m.last.is_none() && !m.ended) {
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((index, event)) => self.handle(index, event),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut finals = Vec::with_capacity(self.members.len());
        for (index, member) in self.members.iter_mut().enumerate() {
            if member.last.is_none() {
                eprintln!(
                    "warning: sink process {} (pid {}) did not report its final counts; its last ones are counted",
                    index + 1,
                    member.child.id()
                );
            }
            finals.push(member.last.unwrap_or(member.latest));
        }
        // Drop reaps every member (and kills one that did not stop in time).
        finals
    }

    fn handle(&mut self, index: usize, event: Event) {
        match event {
            Event::Report(report) => self.note(index, report),
            Event::Ended => {
                if let Some(member) = self.members.get_mut(index) {
                    member.ended = true;
                }
            }
        }
    }

    fn note(&mut self, index: usize, report: Report) {
        let Some(member) = self.members.get_mut(index) else { return };
        match report {
            Report::Listening(_) => {}
            Report::Stats(stats) => member.latest = stats,
            Report::Final(stats) => {
                member.latest = stats;
                member.last = Some(stats);
            }
        }
    }
}

impl Drop for ProcessGroup {
    /// No member outlives the group: each is asked to stop (stdin closed), given a moment,
    /// then killed by its PID, and reaped.
    fn drop(&mut self) {
        for member in &mut self.members {
            member.stdin = None;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for member in &mut self.members {
            loop {
                match member.child.try_wait() {
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                    Ok(None) => {
                        let _ = member.child.kill();
                        let _ = member.child.wait();
                        break;
                    }
                    Ok(Some(_)) | Err(_) => break,
                }
            }
        }
    }
}

/// Reads member `index`'s reports on a thread of its own, until its stdout ends.
fn listen_to(index: usize, stdout: impl Read + Send + 'static, events: Sender<(usize, Event)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // A line that is not a report (nothing else is printed there) is ignored.
            if let Ok(report) = serde_json::from_str::<Report>(&line) {
                if events.send((index, Event::Report(report))).is_err() {
                    return;
                }
            }
        }
        let _ = events.send((index, Event::Ended));
    });
}

/// The command line of member `index`: the parent's flags that shape answers, the concrete
/// address, and its own record file.
fn member_args(args: &SinkArgs, addr: SocketAddr, index: usize) -> Vec<String> {
    let mut out: Vec<String> = vec![
        "sink".into(),
        "--listen".into(),
        addr.to_string(),
        "--process-index".into(),
        index.to_string(),
        "--delay".into(),
        args.delay.clone(),
        "--error-rate".into(),
        args.error_rate.clone(),
        "--status".into(),
        args.status.to_string(),
        "--body-size".into(),
        args.body_size.to_string(),
        "--idle-timeout".into(),
        args.idle_timeout.clone(),
        "--threads".into(),
        args.threads.to_string(),
        "--ws-delay".into(),
        args.ws_delay.clone(),
    ];
    if args.close {
        out.push("--close".into());
    }
    if args.echo {
        out.push("--echo".into());
    }
    if let Some(capacity) = args.capacity {
        out.extend(["--capacity".into(), capacity.to_string()]);
    }
    if let Some(path) = &args.record {
        out.extend(["--record".into(), part_path(path, index).display().to_string()]);
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        out.extend(["--cert".into(), cert.display().to_string(), "--key".into(), key.display().to_string()]);
    }
    out
}

/// `FILE.part<i>`: where member `i` records.
fn part_path(record: &Path, index: usize) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(format!(".part{index}"));
    PathBuf::from(name)
}

/// Appends the members' record files (`FILE.part1`, ...) to `FILE` and removes them.
pub(super) fn gather_records(record: &Path, members: usize) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(record)?;
    for index in 1..=members {
        let part = part_path(record, index);
        match std::fs::File::open(&part) {
            Ok(mut source) => {
                std::io::copy(&mut source, &mut file)?;
                std::fs::remove_file(&part)?;
            }
            // A member that could not record left no file; its warning was printed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    file.flush()
}

/// Runs as member `index` of a multi-process sink: serves until SIGINT/SIGTERM or until the
/// parent closes stdin, and reports on stdout instead of printing.
pub(super) fn serve_as_member(settings: Settings, index: u16) -> Result<ExitStatus, CliError> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        // Every signal only asks for a stop: the final counts must still reach the parent,
        // also when a terminal's Ctrl-C reaches this process and the parent forwards it too.
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            eprintln!("warning: sink process {index}: cannot handle signals ({e})");
        }
    }
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // The parent writes nothing; the end of the pipe means it is gone or wants a stop.
            let mut sink_hole = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink_hole), Ok(n) if n > 0) {}
            stop.store(true, Ordering::Relaxed);
        });
    }
    pummel_engine::limits::raise_open_file_limit().ok();
    let sink = super::sink::start(settings.addr, settings.config)?;
    if !send(&Report::Listening(sink.local_addr())) {
        return Ok(ExitStatus::Pass);
    }
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last_report.elapsed() >= REPORT_EVERY {
            if !send(&Report::Stats(sink.stats().snapshot())) {
                break;
            }
            last_report = Instant::now();
        }
    }
    let stats = sink.stats();
    let closed = sink.close();
    send(&Report::Final(stats.snapshot()));
    closed.map_err(|e| CliError::internal(anyhow!("sink process {index}: {e}")))?;
    Ok(ExitStatus::Pass)
}

/// Writes one report line to stdout; false when the parent no longer reads it.
fn send(report: &Report) -> bool {
    let Ok(line) = serde_json::to_string(report) else { return false };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_one_json_line_each_and_read_back() {
        let stats = StatsSnapshot { requests: 12, connections: 3, ..StatsSnapshot::default() };
        for report in [Report::Listening(([127, 0, 0, 1], 8090).into()), Report::Stats(stats), Report::Final(stats)] {
            let line = serde_json::to_string(&report).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Report>(&line).unwrap(), report);
        }
        assert_eq!(
            serde_json::to_string(&Report::Listening(([127, 0, 0, 1], 80).into())).unwrap(),
            r#"{"listening":"127.0.0.1:80"}"#
        );
    }

    #[test]
    fn record_parts_are_appended_in_order_and_removed() {
        let dir = std::env::temp_dir().join(format!("pummel-sink-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("received.jsonl");
        std::fs::write(&record, "a\n").unwrap();
        std::fs::write(part_path(&record, 1), "b\n").unwrap();
        std::fs::write(part_path(&record, 3), "d\n").unwrap();
        gather_records(&record, 3).unwrap();
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "a\nb\nd\n");
        assert!(!part_path(&record, 1).exists() && !part_path(&record, 3).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
