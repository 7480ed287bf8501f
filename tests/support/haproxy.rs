//! HAProxy, an independent load balancer (installed by `.ci/setup-haproxy`) put in front of a
//! backend with `maxconn`: one process in the foreground on a free loopback port, with a config
//! of its own in a temporary directory, killed by PID on drop.
//!
//! With `maxconn N` on its frontend HAProxy accepts at most N client connections at a time;
//! further ones wait in the kernel's listen queue (its length is N too, HAProxy's default
//! `backlog`), and past that the kernel drops their SYNs. Each accepted connection carries one
//! request at a time to the backend, whose server line also has `maxconn N`. In front of a
//! backend answering in 50 ms, `maxconn 100` carries at most 100 / 50 ms = 2,000 req/s.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ChildGuard;

/// Where the haproxy binary is expected (Debian's `haproxy` package).
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// The path HAProxy answers itself (`monitor-uri`), never passed to the backend: a readiness
/// check that proves the port is this HAProxy's and leaves the backend's counts alone.
const READY_PATH: &str = "/haproxy-ready";

/// HAProxy on a loopback port in front of one backend; killed (by PID) on drop.
pub struct Haproxy {
    process: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it sends requests.
    pub backend: SocketAddr,
    /// The connection limit of its frontend and of its backend server.
    pub maxconn: u32,
    dir: tempfile::TempDir,
}

impl Haproxy {
    /// HAProxy with `maxconn` on its frontend and on its one server, `backend` (timeouts:
    /// connect 5 s, client and server 30 s, queue unset, so the connect timeout); returns once
    /// it answers. Panics, with its output, when it does not come up, and says how to install
    /// it when it is missing.
    pub fn start(maxconn: u32, backend: SocketAddr) -> Haproxy {
        assert!(
            Path::new(HAPROXY).exists(),
            "{HAPROXY} is missing: run `bash .ci/setup-haproxy` (as root; CI runs it from .ci/run). \
             This test needs HAProxy as a real load balancer with `maxconn` in front of its target"
        );
        assert!(maxconn > 0, "maxconn must be at least 1");
        let dir = super::temp_dir();
        // The port is free when picked but could be taken before HAProxy binds it: retry.
        for _ in 0..3 {
            let addr: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
            let config = dir.path().join("haproxy.cfg");
            std::fs::write(&config, config_text(addr, maxconn, backend)).expect("write the haproxy config");
            let output = dir.path().join("output.log");
            let stderr = File::create(&output).expect("create haproxy's output file");
            let child = Command::new(HAPROXY)
                // In the foreground, one process, the config from the file.
                .arg("-db")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(stderr.try_clone().expect("clone a file handle"))
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {HAPROXY}: {e}"));
            let mut process = ChildGuard(child);
            let ready = |response: &str| response.starts_with("HTTP/1.1 200") && response.contains("Service ready.");
            if super::wait_until_answers(addr, READY_PATH, ready, Duration::from_secs(30))
                && matches!(process.0.try_wait(), Ok(None))
            {
                return Haproxy { process, addr, backend, maxconn, dir };
            }
            let text = std::fs::read_to_string(&output).unwrap_or_default();
            eprintln!("haproxy did not come up on {addr}; trying another port. Its output:\n{text}");
            drop(process);
        }
        panic!("could not start haproxy (maxconn {maxconn}) in front of {backend}");
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The port it listens on (for `--watch-port`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its process id (for `--watch-pid`).
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// True while it runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.process.0.try_wait(), Ok(None))
    }

    /// What it printed so far (warnings and alerts; it logs no traffic).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }
}

/// The whole config: one frontend on `addr`, one backend server at `backend`, both limited to
/// `maxconn` connections; no logging.
fn config_text(addr: SocketAddr, maxconn: u32, backend: SocketAddr) -> String {
    // The process-wide limit is well above the frontend's, so that only the frontend's counts.
    let global_maxconn = (maxconn * 4).max(4096);
    format!(
        "global\n\
         \x20   maxconn {global_maxconn}\n\
         \x20   nbthread 1\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         \n\
         frontend pummel\n\
         \x20   bind {addr}\n\
         \x20   maxconn {maxconn}\n\
         \x20   monitor-uri {READY_PATH}\n\
         \x20   default_backend target\n\
         \n\
         backend target\n\
         \x20   server target {backend} maxconn {maxconn}\n"
    )
}
