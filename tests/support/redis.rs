//! Redis, an independent server the proxy's end-to-end tests put behind `pummel proxy`
//! (Debian's `redis-server` and `redis-tools`, installed by `.ci/setup-redis`): one server in
//! the foreground on a free loopback port, with a temporary directory and no persistence,
//! killed by PID on drop; and a minimal RESP client over `std::net`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ChildGuard;

/// Where Debian's redis-server is.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// Where Debian's redis-benchmark is (package redis-tools).
pub const REDIS_BENCHMARK: &str = "/usr/bin/redis-benchmark";
/// Where Debian's redis-cli is (package redis-tools).
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";

/// A redis-server of this test's own; killed (by PID) on drop.
pub struct Redis {
    /// The process.
    pub process: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server on a free loopback port and waits until it answers PING.
    pub fn start() -> Redis {
        for tool in [REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run .ci/setup-redis (apt-get install -y redis-server redis-tools)"
            );
        }
        for _ in 0..3 {
            let dir = super::temp_dir();
            let addr: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
            let child = Command::new(REDIS_SERVER)
                .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--daemonize", "no", "--protected-mode", "yes", "--logfile", ""])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {REDIS_SERVER}: {e}"));
            let mut process = ChildGuard(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(process.0.try_wait(), Ok(None)) {
                if command(addr, &["PING"]).is_some_and(|r| r.starts_with(b"+PONG")) {
                    return Redis { process, addr, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("redis-server did not come up on {addr}; trying another port");
        }
        panic!("could not start redis-server");
    }
}

/// Encodes a command in RESP.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command on a fresh connection and returns the first reply's bytes (read until a
/// whole line came), or `None` when nothing answered within 2 s.
pub fn command(addr: SocketAddr, args: &[&str]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    stream.write_all(&encode(&args)).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.ends_with(b"\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Some(reply)
}
