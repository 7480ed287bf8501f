//! What every end-to-end test needs: run the real `pummel` binary with a time limit and capture
//! what it prints, start `pummel sink` on a free loopback port, give each test its own
//! directory, read figures out of JSON, and keep timing-sensitive tests from sharing the CPU.
//!
//! Nothing here may hang: every wait has a deadline, and every child process is killed (by its
//! PID, through [`ChildGuard`]) when the value that owns it is dropped, also when a test panics.

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

pub mod browser;
pub mod gunicorn;
pub mod haproxy;
pub mod netns;
pub mod nginx;
pub mod plans;
pub mod prometheus;
pub mod proxy;
pub mod redis;
pub mod servers;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `pummel` binary cargo built for this test run.
pub const PUMMEL: &str = env!("CARGO_BIN_EXE_pummel");

/// Held exclusively by tests whose assertions depend on timing (rates, latency, the demo), and
/// shared by every other test that runs pummel: a timing test never runs beside another load,
/// while light tests still run in parallel with each other. (A `Mutex` would serialise the light
/// tests too, for nothing.)
static LOAD: RwLock<()> = RwLock::new(());

/// Taken by a test whose measurements must not compete with other tests for the CPU.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    // A test that panicked while holding the lock poisons it; the lock protects no data.
    LOAD.write().unwrap_or_else(|e| e.into_inner())
}

/// Taken by every other test that runs pummel.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|e| e.into_inner())
}

/// Kills its child process (by PID) on drop unless it already exited.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// What a finished pummel process left behind.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Output {
    /// Panics, showing both streams, unless the exit code is `expected`.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "pummel exited with {:?}, expected {expected}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as JSON (the `--json` summary).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e})\n--- stdout:\n{}\n--- stderr:\n{}", self.stdout, self.stderr)
        })
    }

    /// Panics when stderr shows a Rust panic.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "pummel panicked:\n{}", self.stderr);
        self
    }
}

/// A pummel process that is still running.
pub struct Running {
    guard: ChildGuard,
    started: Instant,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// stderr, line by line, as it is printed.
    stderr_lines: Receiver<String>,
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe; each
/// line is also sent on `lines` as soon as it arrives.
fn drain(pipe: impl Read + Send + 'static, lines: Option<Sender<String>>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut all = String::new();
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(lines) = &lines {
                let _ = lines.send(text.clone());
            }
            all.push_str(&text);
            line.clear();
        }
        all
    })
}

/// Starts `pummel args...` with piped output, in `cwd` if given.
pub fn spawn(args: &[&str], cwd: Option<&Path>) -> Running {
    spawn_with_env(args, cwd, &[])
}

/// As [`spawn`], with environment variables set (`Some`) or removed (`None`) for the child only.
pub fn spawn_with_env(args: &[&str], cwd: Option<&Path>, env: &[(&str, Option<&str>)]) -> Running {
    let mut command = Command::new(PUMMEL);
    command.args(args);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    start(command)
}

/// Starts `command` with stdin closed and both output streams piped and drained (stderr also
/// line by line, for [`Running::wait_for_stderr`]).
fn start(mut command: Command) -> Running {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let (lines_tx, stderr_lines) = mpsc::channel();
    let stdout = child.stdout.take().map(|pipe| drain(pipe, None));
    let stderr = child.stderr.take().map(|pipe| drain(pipe, Some(lines_tx)));
    Running { guard: ChildGuard(child), started, stdout, stderr, stderr_lines }
}

/// Runs `pummel args...` to its end; kills it and fails the test after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    spawn(args, None).wait(limit)
}

impl Running {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// True while the process has not exited.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.guard.0.try_wait(), Ok(None))
    }

    /// Waits until a line of stderr contains `needle`; false when the process closes stderr
    /// (exits) first or after `limit`.
    pub fn wait_for_stderr(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits until a line of stderr contains `needle` and returns that line; `None` when the
    /// process closes stderr (exits) first or after `limit`.
    pub fn wait_for_stderr_line(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Sends a signal by name (`INT`, `TERM`) to this process only, by its PID.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits for the exit, at most `limit`; on timeout kills the process and panics with what
    /// it printed so far.
    pub fn wait(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.guard.0.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for pummel: {e}"),
            }
        };
        if status.is_none() {
            let _ = self.guard.0.kill();
            let _ = self.guard.0.wait();
        }
        let elapsed = self.started.elapsed();
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        match status {
            Some(status) => Output { code: status.code(), stdout, stderr, elapsed },
            None => panic!(
                "pummel did not finish within {limit:?}; killed it\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"
            ),
        }
    }
}

/// A loopback port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Waits until something accepts connections at `addr`; false after `limit`.
pub fn wait_until_listening(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until a line of the file at `path` contains `needle` (a server's log, which it may not
/// have created yet) and returns that line; `None` after `limit`.
pub fn wait_for_line_in(path: &Path, needle: &str, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(needle)) {
            return Some(line.to_string());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` over a fresh connection to `addr` (HTTP/1.0, so the server closes when done):
/// the whole response as text, or `None` when the server did not answer in full within
/// `timeout`. For readiness checks of the servers the tests start.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<String> {
    use std::io::Write;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(String::from_utf8_lossy(&response).into_owned())
}

/// Polls `GET path` at `addr` until a response passes `ready` (the server is up and is the one
/// the test started); false after `limit`.
pub fn wait_until_answers(addr: SocketAddr, path: &str, ready: impl Fn(&str) -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if http_get(addr, path, Duration::from_secs(2)).is_some_and(|response| ready(&response)) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Sends signal `name` (`TERM`, `KILL`) by PID with `kill`; `-PID` names a process group.
/// Quietly does nothing when no such process is left.
pub fn kill(name: &str, pid: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(pid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A `pummel sink` child process on a free loopback port; killed on drop.
pub struct Sink {
    process: Running,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Starts `pummel sink --listen 127.0.0.1:PORT extra...` and waits until it accepts; returns
/// the process (for its PID, signals and output) and its address. With `--tls` in `extra` it
/// waits for the `https://` announcement.
pub fn spawn_sink(extra: &[&str]) -> (Running, SocketAddr) {
    let scheme = if extra.contains(&"--tls") { "https" } else { "http" };
    // The port is free when picked but could be taken before the sink binds it: retry.
    for _ in 0..3 {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let listen = addr.to_string();
        let mut args = vec!["sink", "--listen", listen.as_str()];
        args.extend_from_slice(extra);
        let mut process = spawn(&args, None);
        // The sink says so once it has bound the port; if the bind fails it exits instead.
        // (Only polling the port could find another test's server on a reused port.)
        let announced = process.wait_for_stderr(&format!("listening on {scheme}://{addr}"), Duration::from_secs(10));
        if announced && wait_until_listening(addr, Duration::from_secs(5)) && process.is_alive() {
            return (process, addr);
        }
        eprintln!("pummel sink did not come up on {addr}; trying another port");
        drop(process);
    }
    panic!("could not start pummel sink {}", extra.join(" "));
}

impl Sink {
    /// Starts `pummel sink --listen 127.0.0.1:PORT extra...` and waits until it accepts.
    pub fn start(extra: &[&str]) -> Sink {
        let (process, addr) = spawn_sink(extra);
        Sink { process, addr }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// True while the sink process runs.
    pub fn is_alive(&mut self) -> bool {
        self.process.is_alive()
    }

    /// The sink's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends a signal by name (`STOP`, `CONT`) to the sink process, by its PID.
    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }
}

/// A fresh directory for one test, removed afterwards.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pummel-e2e-").tempdir().expect("create a temporary directory")
}

/// `dir/name` as a `String`, for command lines.
pub fn path_in(dir: &tempfile::TempDir, name: &str) -> (PathBuf, String) {
    let path = dir.path().join(name);
    let text = path.to_str().expect("temporary paths are UTF-8").to_string();
    (path, text)
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The number at a JSON pointer (`/requests/completed`); panics with the document otherwise.
pub fn num(value: &Value, pointer: &str) -> f64 {
    value.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer} in\n{value:#}"))
}

/// The unsigned integer at a JSON pointer; panics with the document otherwise.
pub fn count(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned integer at {pointer} in\n{value:#}"))
}

/// The string at a JSON pointer; panics with the document otherwise.
pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in\n{value:#}"))
}

/// The results document schema, compiled.
pub fn results_schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(pummel_results::document::SCHEMA).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("the results schema is not a valid schema: {e}"))
}

/// Panics listing every violation unless `document` matches the results schema.
pub fn assert_valid_results(document: &Value) {
    let validator = results_schema();
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("  at {}: {e}", e.instance_path)).collect();
    assert!(errors.is_empty(), "results document does not match the schema:\n{}", errors.join("\n"));
}
