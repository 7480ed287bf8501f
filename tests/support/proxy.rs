//! `pummel proxy` as the end-to-end tests run it: a child process with its API on a free
//! loopback port and proxies on ports the proxy picks (port 0), whose addresses are read from
//! the lines it prints once each listener is bound; and a plain HTTP/1.1 client for the API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use super::Running;

/// A running `pummel proxy`; killed on drop.
pub struct ProxyProcess {
    /// The process (its output, signals, exit).
    pub process: Running,
    /// Where its toxiproxy API listens.
    pub api: SocketAddr,
    /// (name, listen address) of the proxies it started with.
    pub listening: Vec<(String, SocketAddr)>,
}

impl ProxyProcess {
    /// Starts `pummel proxy --api 127.0.0.1:0 --quiet` with one `--proxy NAME=127.0.0.1:0,UPSTREAM`
    /// per entry of `proxies` and `extra` flags (`--toxic ...`), and waits until it is ready.
    pub fn start(proxies: &[(&str, SocketAddr)], extra: &[&str]) -> ProxyProcess {
        let mut args: Vec<String> = vec!["proxy".into(), "--api".into(), "127.0.0.1:0".into(), "--quiet".into()];
        for (name, upstream) in proxies {
            args.push("--proxy".into());
            args.push(format!("{name}=127.0.0.1:0,{upstream}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = super::spawn(&refs, None);
        let mut listening = Vec::new();
        for (name, _) in proxies {
            let line = process
                .wait_for_stderr_line(&format!("{name} listening on "), Duration::from_secs(10))
                .unwrap_or_else(|| panic!("pummel proxy did not start proxy {name}"));
            listening.push((name.to_string(), address_after(&line, "listening on ")));
        }
        let line = process
            .wait_for_stderr_line("API listening on http://", Duration::from_secs(10))
            .expect("pummel proxy did not start its API");
        let api = address_after(&line, "http://");
        ProxyProcess { process, api, listening }
    }

    /// Where proxy `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listening.iter().find(|(n, _)| n == name).map(|(_, a)| *a).unwrap_or_else(|| panic!("no proxy {name}"))
    }

    /// One API request; returns the status and the body parsed as JSON (`Value::Null` when empty).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = http(self.api, method, path, body, &[]);
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text:?}"))
        };
        (status, json)
    }
}

/// The `ADDR` that follows `marker` in a line (up to the next space).
fn address_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {line:?}")) + marker.len()..];
    let text = rest.split_whitespace().next().unwrap_or_default();
    text.parse().unwrap_or_else(|e| panic!("{text:?} in {line:?} is not an address: {e}"))
}

/// A plain HTTP/1.1 request on a fresh connection (`Connection: close`); the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the API");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("write the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {text:?}"));
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    (status, body)
}

/// Joins the chunks of a chunked body.
fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}
