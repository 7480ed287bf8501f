//! A real browser's recording for `pummel convert har`: a small page served by this process,
//! whose script calls an API that is proxied to a `pummel sink`, loaded by Debian's Chromium
//! driven by playwright-core (`tests/browser/record-har.mjs`), which saves a HAR.
//!
//! [`PageServer`] serves `/app/*` (the page and its script, given by the test), forwards
//! `/api/*` to a backend (the sink) and answers 404 to anything else, one request per
//! connection, on `127.0.0.1:0`; its threads end when it is dropped. [`record_har`] runs the
//! browser with a time limit and fails with the set-up script's name when a tool is missing.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::ChildGuard;

/// The folder of the browser tooling (`package.json`, `record-har.mjs`, `node_modules`).
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Panics, naming the set-up script, unless node, playwright-core and Chromium are there.
pub fn require_tools() {
    let setup =
        "run `bash .ci/setup-browser` (it installs Chromium and playwright-core into tests/browser/node_modules)";
    let node = Command::new("node").arg("--version").output();
    assert!(node.as_ref().is_ok_and(|o| o.status.success()), "node (Node.js 20 or later) is missing: {setup}");
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(playwright.is_file(), "playwright-core is missing ({} not found): {setup}", playwright.display());
    assert!(Path::new("/usr/bin/chromium").is_file(), "/usr/bin/chromium is missing: {setup}");
}

/// Loads `url` in headless Chromium with a new profile under `dir` and saves the HAR of the
/// visit to `har`; panics with the browser's output if it fails or takes over 45 s.
pub fn record_har(url: &str, har: &Path, dir: &Path) {
    let profile = dir.join("chromium-profile");
    let (done, out) = node_script("record-har.mjs", &[url, &har.to_string_lossy(), &profile.to_string_lossy()]);
    assert!(done && har.is_file(), "recording the HAR failed:\n{out}");
}

/// Runs `tests/browser/SCRIPT` with node (Chromium through playwright-core) and `args`, for at
/// most 45 s; true when it exited 0, with what it printed (stdout, then stderr). Panics, naming
/// the set-up script, when a tool is missing, and when it had to be killed.
pub fn node_script(script: &str, args: &[&str]) -> (bool, String) {
    require_tools();
    let script = browser_dir().join(script);
    let child = Command::new("node")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {}: {e}", script.display()));
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        match guard.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for node: {e}"),
        }
    };
    let mut out = String::new();
    if let Some(mut pipe) = guard.0.stdout.take() {
        let _ = pipe.read_to_string(&mut out);
    }
    if let Some(mut pipe) = guard.0.stderr.take() {
        let _ = pipe.read_to_string(&mut out);
    }
    match status {
        Some(status) => (status.success(), out),
        None => panic!("{} took over 45 s; killed node (PID {}):\n{out}", script.display(), guard.0.id()),
    }
}

/// The page's server: `/app/NAME` from `files`, `/api/*` forwarded to `backend`.
pub struct PageServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Serves `files` (path under `/app/`, content type, body) and forwards `/api/*` to `backend`.
    pub fn start(files: Vec<(&'static str, &'static str, String)>, backend: SocketAddr) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(files);
        let stopping = stop.clone();
        let acceptor = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let files = files.clone();
                        thread::spawn(move || {
                            let _ = serve(stream, &files, backend);
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        PageServer { addr, stop, acceptor: Some(acceptor) }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A request or response read off a stream: its head (up to the blank line) and its body.
fn read_message(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((head, body))
}

/// Answers one request on `stream`, then closes it.
fn serve(
    mut stream: TcpStream,
    files: &[(&'static str, &'static str, String)],
    backend: SocketAddr,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, body) = read_message(&mut stream)?;
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("/");
    if path.starts_with("/api/") {
        // Forwarded as received, on a connection of its own that the backend closes.
        let mut upstream = TcpStream::connect_timeout(&backend, Duration::from_secs(5))?;
        upstream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut forwarded: String = head
            .trim_end()
            .lines()
            .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
            .map(|line| format!("{line}\r\n"))
            .collect();
        forwarded.push_str("Connection: close\r\n\r\n");
        upstream.write_all(forwarded.as_bytes())?;
        upstream.write_all(&body)?;
        let (answer_head, answer_body) = read_message(&mut upstream)?;
        stream.write_all(answer_head.as_bytes())?;
        stream.write_all(&answer_body)?;
        return stream.flush();
    }
    let file = files.iter().find(|(name, _, _)| path == format!("/app/{name}"));
    let (status, content_type, content) = match file {
        Some((_, content_type, content)) => ("200 OK", *content_type, content.as_str()),
        None => ("404 Not Found", "text/plain", "not found"),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n\r\n{content}",
        content.len()
    );
    stream.write_all(answer.as_bytes())?;
    stream.flush()
}
