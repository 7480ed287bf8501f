//! nginx, an independent server the end-to-end tests run against (installed by
//! `.ci/setup-nginx`): one process in the foreground on a free loopback port, with a config of
//! its own in a temporary directory, killed by PID on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ChildGuard;

/// Where the nginx binary is expected (Debian/Ubuntu `nginx-light`).
const NGINX: &str = "/usr/sbin/nginx";

/// nginx in the foreground, one process, on a free loopback port, with a config of its own in
/// a temporary directory; killed (by PID) on drop.
pub struct Nginx {
    /// The nginx process.
    pub process: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
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
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install nginx (`apt-get install -y nginx-light`); this test needs an \
             independent server to hold connections to"
        );
        let dir = super::temp_dir();
        let root = dir.path().to_str().expect("temporary paths are UTF-8").to_string();
        let addr: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 8192;\n\
             pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
             \x20 fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
             \x20 {http}\n\
             \x20 server {{ listen {addr}{listen_options}; {locations} }}\n}}\n"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write the nginx config");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NGINX}: {e}"));
        let mut process = ChildGuard(child);
        let up = super::wait_until_listening(addr, Duration::from_secs(10));
        if !up || !matches!(process.0.try_wait(), Ok(None)) {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx did not come up on {addr}; its error log:\n{log}");
        }
        Nginx { process, addr, _dir: dir }
    }
}
