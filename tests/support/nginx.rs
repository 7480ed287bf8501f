//! nginx, an independent server the end-to-end tests run against (installed by
//! `.ci/setup-nginx`): one process in the foreground on a free loopback port (or on an address
//! of a test's network namespace), with a config of its own in a temporary directory, killed by
//! PID on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ChildGuard;
use super::netns::Topology;

/// Where the nginx binary is expected (Debian/Ubuntu `nginx-light`).
const NGINX: &str = "/usr/sbin/nginx";

/// nginx in the foreground, one process, on a free loopback port, with a config of its own in
/// a temporary directory; killed (by PID) on drop.
pub struct Nginx {
    /// The nginx process.
    pub process: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx keeping idle connections for 60 s.
    pub fn start() -> Nginx {
        Nginx::with_keepalive_timeout("60s")
    }

    /// nginx closing a keep-alive connection once it has been idle for `timeout` (nginx syntax:
    /// `500ms`, `60s`).
    pub fn with_keepalive_timeout(timeout: &str) -> Nginx {
        Nginx::configured(&format!("keepalive_timeout {timeout};"), "location / { return 200 \"ok\\n\"; }")
    }

    /// nginx with `http` directives of the test's own (`gzip on;`) and the `server` block's
    /// locations.
    pub fn configured(http: &str, locations: &str) -> Nginx {
        Nginx::configured_listening(http, locations, "")
    }

    /// As [`Nginx::configured`], with `listen_options` after the address (` http2`: HTTP/2
    /// with prior knowledge, h2c).
    pub fn configured_listening(http: &str, locations: &str, listen_options: &str) -> Nginx {
        let dir = super::temp_dir();
        let addr: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
        let site = Site { http, locations, listen_options, access_log: "off" };
        let config_path = site.write(&dir, addr);
        let mut process = ChildGuard(launch(Command::new(NGINX), &dir, &config_path));
        let up = super::wait_until_listening(addr, Duration::from_secs(10));
        if !up || !matches!(process.0.try_wait(), Ok(None)) {
            panic!("nginx did not come up on {addr}; its error log:\n{}", error_log(&dir));
        }
        Nginx { process, addr, dir }
    }

    /// nginx inside `role`'s network namespace of `topology`, listening on `addr` (an address
    /// of that namespace), answering `ok` on every path and logging every request in the
    /// `combined` format, the client's address first, to [`Nginx::access_log`]. Returns once a
    /// connection from `from`'s namespace reaches it (the test process is not on that network).
    pub fn in_namespace(topology: &Topology, role: &str, addr: SocketAddr, from: &str) -> Nginx {
        let dir = super::temp_dir();
        let log = dir.path().join("access.log");
        let access_log = format!("{} combined", log.display());
        let site = Site {
            http: "",
            locations: "location / { return 200 \"ok\\n\"; }",
            listen_options: "",
            access_log: &access_log,
        };
        let config_path = site.write(&dir, addr);
        let mut process = ChildGuard(launch(topology.command(role, NGINX), &dir, &config_path));
        let up = topology.reachable(from, addr, Duration::from_secs(10));
        if !up || !matches!(process.0.try_wait(), Ok(None)) {
            panic!("nginx did not come up on {addr} in {role}'s namespace; its error log:\n{}", error_log(&dir));
        }
        Nginx { process, addr, dir }
    }

    /// Where [`Nginx::in_namespace`] logs each request (the others log none).
    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }
}

/// What a test's nginx serves: `http` directives, the `server` block's locations, options after
/// the listening address, and the `access_log` directive's value (`off`, or `PATH FORMAT`).
struct Site<'a> {
    http: &'a str,
    locations: &'a str,
    listen_options: &'a str,
    access_log: &'a str,
}

impl Site<'_> {
    /// Writes `dir/nginx.conf`, everything nginx writes kept under `dir`; returns its path.
    fn write(&self, dir: &tempfile::TempDir, addr: SocketAddr) -> PathBuf {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install nginx (`apt-get install -y nginx-light`); this test needs an \
             independent server to hold connections to"
        );
        let root = dir.path().to_str().expect("temporary paths are UTF-8").to_string();
        let Site { http, locations, listen_options, access_log } = self;
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 8192;\n\
             pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log {access_log};\n  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
             \x20 fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
             \x20 {http}\n\
             \x20 server {{ listen {addr}{listen_options}; {locations} }}\n}}\n"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write the nginx config");
        config_path
    }
}

/// Starts `command` (nginx, or a wrapper that execs it) on the config at `config_path`, its
/// prefix and error log under `dir`.
fn launch(mut command: Command, dir: &tempfile::TempDir, config_path: &Path) -> std::process::Child {
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(config_path)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {NGINX}: {e}"))
}

/// What nginx wrote to its error log under `dir`.
fn error_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
}
