//! gunicorn, an independent Python WSGI server with a capacity that is known in advance (installed
//! by `.ci/setup-gunicorn` into a virtual environment at a fixed path): N sync workers serving
//! `tests/fixtures/slow_app.py`, which sleeps a fixed delay and answers `200 ok` (or
//! `tests/fixtures/kv_app.py`, a front that stores POSTs in Redis, for the writes' tests). A sync worker
//! serves one request at a time and closes the connection after it, so N workers of delay D
//! carry at most N / D requests a second (4 × 20 ms: 200 in theory, ~190 measured); beyond that
//! connections wait in the listen queue.
//!
//! gunicorn binds `127.0.0.1:0` and says in its log which port it got, so no port is guessed.
//! It runs in a process group of its own, with its log and the app in a temporary directory; on
//! drop the master is asked to stop (TERM, by its PID; it stops its workers), and if it is still
//! running 10 s later its group is killed.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ChildGuard;

/// Where `.ci/setup-gunicorn` installs gunicorn (its own virtual environment).
pub const GUNICORN: &str = "/opt/pummel-ci/gunicorn/bin/gunicorn";

/// The WSGI app, written into each instance's directory (so that Python leaves no bytecode in
/// the source tree).
const SLOW_APP: &str = include_str!("../fixtures/slow_app.py");
/// The Redis front of the writes' tests.
const KV_APP: &str = include_str!("../fixtures/kv_app.py");

/// How long gunicorn may take to start on a busy machine (it imports Python modules).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A gunicorn master and its workers on a loopback port; stopped on drop.
pub struct Gunicorn {
    process: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many workers serve requests.
    pub workers: u32,
    /// How long the app takes over each request.
    pub delay: Duration,
    dir: tempfile::TempDir,
    /// The app, as gunicorn names it (`slow_app:app`).
    module: &'static str,
    /// The app's environment.
    env: Vec<(String, String)>,
}

/// A WSGI app of the fixtures, and how gunicorn runs it.
struct App {
    file: &'static str,
    source: &'static str,
    module: &'static str,
    env: Vec<(&'static str, String)>,
}

impl Gunicorn {
    /// gunicorn with `workers` sync workers, each request taking `delay` then answered
    /// `200 ok`; returns once every worker is up and a request was answered. Capacity ≈
    /// `workers / delay` (4 workers × 20 ms ≈ 190 req/s). Panics, with gunicorn's log, when it
    /// does not come up, and says how to install it when it is missing.
    pub fn start_sync(workers: u32, delay: Duration) -> Gunicorn {
        let delay_ms = format!("{}", delay.as_secs_f64() * 1000.0);
        let app = App {
            file: "slow_app.py",
            source: SLOW_APP,
            module: "slow_app:app",
            env: vec![("SLOW_APP_DELAY_MS", delay_ms)],
        };
        Gunicorn::start(app, workers, 0, delay)
    }

    /// gunicorn with `workers` sync workers serving `tests/fixtures/kv_app.py`, a front that
    /// stores POSTed bodies in the Redis on `redis_port` (and answers GETs from it), listening on
    /// `port` (so that a restart after a kill can listen there again: see
    /// [`Gunicorn::restart_command`]).
    pub fn start_kv(workers: u32, redis_port: u16, port: u16) -> Gunicorn {
        let app = App {
            file: "kv_app.py",
            source: KV_APP,
            module: "kv_app:app",
            env: vec![("KV_REDIS_PORT", redis_port.to_string())],
        };
        Gunicorn::start(app, workers, port, Duration::ZERO)
    }

    /// A shell command that starts this gunicorn again on its port (after a fault killed it),
    /// writing its master's PID where [`Drop`] finds it to stop it.
    pub fn restart_command(&self) -> String {
        let dir = self.dir.path().display();
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "exec env {} PYTHONDONTWRITEBYTECODE=1 {GUNICORN} --bind {} --worker-class sync --workers {} --chdir {dir} \
             --worker-tmp-dir {dir} --pid {dir}/restarted.pid --error-logfile {dir}/restarted.log {} \
             >{dir}/restarted.out 2>&1",
            env.join(" "),
            self.addr,
            self.workers,
            self.module
        )
    }

    fn start(app: App, workers: u32, port: u16, delay: Duration) -> Gunicorn {
        assert!(
            Path::new(GUNICORN).exists(),
            "{GUNICORN} is missing: run `bash .ci/setup-gunicorn` (as root; CI runs it from .ci/run). \
             This test needs gunicorn as a real target of known capacity"
        );
        assert!(workers > 0, "gunicorn needs at least one worker");
        let dir = super::temp_dir();
        std::fs::write(dir.path().join(app.file), app.source).expect("write the WSGI app");
        let log = dir.path().join("gunicorn.log");
        let stderr = File::create(dir.path().join("stderr.log")).expect("create gunicorn's stderr file");

        let mut command = Command::new(GUNICORN);
        command
            .args(["--bind", &format!("127.0.0.1:{port}"), "--worker-class", "sync", "--workers"])
            .arg(workers.to_string())
            // The app is imported once, before the workers are forked: a worker that booted
            // is ready, and an app that cannot be imported stops the master at once.
            .arg("--preload")
            .arg("--chdir")
            .arg(dir.path())
            .arg("--worker-tmp-dir")
            .arg(dir.path())
            .arg("--error-logfile")
            .arg(&log)
            .args(["--log-level", "info"])
            // A worker stopped in the middle of a request is given this long to finish it on TERM.
            .args(["--graceful-timeout", "2"])
            .arg(app.module)
            .envs(app.env.iter().map(|(k, v)| (k, v)))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            // Its own process group: on drop, whatever the master leaves behind goes too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {GUNICORN}: {e}"));
        let process = ChildGuard(child);
        let env = app.env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let mut gunicorn =
            Gunicorn { process, addr: ([127, 0, 0, 1], 0).into(), workers, delay, dir, module: app.module, env };

        let deadline = Instant::now() + START_LIMIT;
        // `[INFO] Listening at: http://127.0.0.1:40081 (10961)`
        let Some(line) = super::wait_for_line_in(&log, "Listening at: http://", START_LIMIT) else {
            gunicorn.fail("did not say where it listens");
        };
        let Some(addr) = line
            .split("Listening at: http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
        else {
            gunicorn.fail(&format!("printed an address that is not one: {line}"));
        };
        gunicorn.addr = addr;
        while gunicorn.booted() < workers {
            if Instant::now() >= deadline || !gunicorn.is_alive() {
                gunicorn.fail(&format!("booted {} of {workers} workers", gunicorn.booted()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // gunicorn answers an HTTP/1.0 request in HTTP/1.0 (the slow app `200 ok` on any path,
        // the store `404` for a key it does not hold).
        let answered = |response: &str| {
            (response.starts_with("HTTP/1.0 200") && response.ends_with("\r\n\r\nok"))
                || response.starts_with("HTTP/1.0 404")
        };
        if !super::wait_until_answers(addr, "/", answered, left) || !gunicorn.is_alive() {
            gunicorn.fail("does not answer 200 ok");
        }
        gunicorn
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The port it listens on (for `--watch-port`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The master's process id (for `--watch-pid`; the workers are its children and share the
    /// listening socket).
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// True while the master runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.process.0.try_wait(), Ok(None))
    }

    /// gunicorn's log so far (its start, its workers booting and exiting, timeouts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gunicorn.log")).unwrap_or_default()
    }

    /// How many workers said they booted.
    fn booted(&self) -> u32 {
        self.log().lines().filter(|line| line.contains("Booting worker with pid")).count() as u32
    }

    /// Panics saying what went wrong, with gunicorn's log and stderr (the drop stops it).
    fn fail(&mut self, what: &str) -> ! {
        let stderr = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        panic!(
            "gunicorn ({} sync workers, {:?}) {what}\n--- its log:\n{}\n--- its stderr:\n{stderr}",
            self.workers,
            self.delay,
            self.log()
        );
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        // A gunicorn a fault started again (`restart_command`) is not a child: stopped by the
        // PID it wrote.
        let restarted = std::fs::read_to_string(self.dir.path().join("restarted.pid")).unwrap_or_default();
        if let Ok(pid) = restarted.trim().parse::<u32>() {
            super::kill("TERM", &pid.to_string());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            super::kill("KILL", &format!("-{pid}"));
        }
        if !self.is_alive() {
            return;
        }
        // The master stops its workers (those still busy get `--graceful-timeout`) and exits.
        let pid = self.pid().to_string();
        super::kill("TERM", &pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.is_alive() {
            // Still running (not yet reaped, so the group is surely this one): the master and
            // its workers, by the group's id, which is the master's PID.
            super::kill("KILL", &format!("-{pid}"));
        }
        // The ChildGuard reaps the master.
    }
}
