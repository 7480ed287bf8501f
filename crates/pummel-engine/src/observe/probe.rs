//! Probes: "is it still answering?" One request every interval, each on its own fresh
//! connection (so a probe is never stuck behind the load's queues and sees what a new user
//! sees), recorded as OK/NOK with its latency, optionally with a number read from a JSON body
//! (a queue size from a statistics endpoint, say).
//!
//! Probes run on their own thread with blocking sockets: one request a second does not need
//! the shards' machinery, and must not be slowed down by it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pummel_results::observed::ProbeSample;
use serde::Serialize;

use crate::observe::exposition::MetricSelector;
use crate::plan::{PlanError, Target};
use crate::proto::http1::{Progress, ResponseParser, encode_request};

/// Most body bytes a probe keeps for its checks.
const PROBE_BODY_LIMIT: usize = 256 * 1024;
/// Most body bytes a `--probe-metric` probe keeps: an exporter's whole exposition (a busy
/// node_exporter writes a few hundred KiB).
const EXPOSITION_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What a probe checks besides the status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeExpect {
    /// The body contains this text.
    BodyContains(String),
    /// The status is exactly this.
    Status(u16),
}

impl std::str::FromStr for ProbeExpect {
    type Err = String;

    /// `body contains TEXT` or `status 200`.
    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix("body contains ") {
            let needle = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            if needle.is_empty() {
                return Err("`body contains` needs a text".into());
            }
            return Ok(ProbeExpect::BodyContains(needle.to_string()));
        }
        if let Some(rest) = trimmed.strip_prefix("status ") {
            return rest
                .trim()
                .parse::<u16>()
                .map(ProbeExpect::Status)
                .map_err(|_| format!("{rest:?} is not a status"));
        }
        Err(format!("{text:?}: expected `body contains TEXT` or `status CODE`"))
    }
}

/// One probe of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeSpec {
    /// The URL as given (without the `#$.path` part).
    pub url: String,
    /// Where it goes.
    #[serde(skip)]
    pub target: Target,
    /// Extra check on the response.
    pub expect: Option<ProbeExpect>,
    /// JSON path (`$.a.b[0]`) of a number to record from the body.
    pub json_path: Option<String>,
    /// A metric of a Prometheus text exposition to record from the body (`--probe-metric`).
    #[serde(serialize_with = "as_text")]
    pub metric: Option<MetricSelector>,
    /// Per-probe time limit.
    #[serde(with = "crate::seconds")]
    pub timeout: Duration,
}

impl ProbeSpec {
    /// A probe of `url`; `URL#$.path` also records the number at that JSON path.
    pub fn new(url_and_path: &str, expect: Option<ProbeExpect>, timeout: Duration) -> Result<Self, PlanError> {
        let (url, json_path) = match url_and_path.split_once('#') {
            Some((url, path)) => {
                json_pointer(path).map_err(|reason| PlanError::Url { url: url_and_path.to_string(), reason })?;
                (url, Some(path.to_string()))
            }
            None => (url_and_path, None),
        };
        let target = Target::resolve(url)?;
        if target.scheme != crate::plan::Scheme::Http {
            // Probes use a blocking plain socket of their own (see the module doc).
            return Err(PlanError::Url {
                url: url.to_string(),
                reason: "probes speak plain http:// only; probe an http:// endpoint of the target".into(),
            });
        }
        Ok(ProbeSpec { url: url.to_string(), target, expect, json_path, metric: None, timeout })
    }

    /// A probe of `URL#METRIC{label="x"}` that records the value of that metric in the
    /// Prometheus text exposition the URL serves (matches added up, see [`exposition`]).
    ///
    /// [`exposition`]: crate::observe::exposition
    pub fn for_metric(url_and_metric: &str, expect: Option<ProbeExpect>, timeout: Duration) -> Result<Self, PlanError> {
        let bad = |reason: String| PlanError::Url { url: url_and_metric.to_string(), reason };
        let (url, selector) = url_and_metric
            .split_once('#')
            .ok_or_else(|| bad("expected URL#METRIC or URL#METRIC{label=\"value\"}".into()))?;
        let selector = selector.parse::<MetricSelector>().map_err(bad)?;
        let mut spec = ProbeSpec::new(url, expect, timeout)?;
        spec.metric = Some(selector);
        Ok(spec)
    }
}

/// A selector in the plan as it was written.
fn as_text<S: serde::Serializer>(selector: &Option<MetricSelector>, serializer: S) -> Result<S::Ok, S::Error> {
    match selector {
        Some(s) => serializer.serialize_some(&s.to_string()),
        None => serializer.serialize_none(),
    }
}

/// Sends one probe request and judges it.
pub fn probe_once(spec: &ProbeSpec) -> ProbeSample {
    let started = Instant::now();
    let mut sample =
        ProbeSample { url: spec.url.clone(), ok: false, latency_ms: None, status: None, value: None, error: None };
    match exchange(spec) {
        Ok((status, body)) => {
            sample.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            sample.status = Some(status);
            let mut problems = Vec::new();
            match &spec.expect {
                Some(ProbeExpect::Status(want)) if status != *want => problems.push(format!("status {status}")),
                Some(ProbeExpect::BodyContains(needle)) if !contains(&body, needle.as_bytes()) => {
                    problems.push(format!("body lacks {needle:?}"));
                }
                None if !(200..400).contains(&status) => problems.push(format!("status {status}")),
                _ => {}
            }
            if let Some(path) = &spec.json_path {
                match number_at(&body, path) {
                    Some(v) => sample.value = Some(v),
                    None => problems.push(format!("no number at {path}")),
                }
            }
            if let Some(selector) = &spec.metric {
                match selector.value_in(&String::from_utf8_lossy(&body)) {
                    Some(v) => sample.value = Some(v),
                    None => problems.push(format!("no sample of {selector}")),
                }
            }
            sample.ok = problems.is_empty();
            sample.error = (!problems.is_empty()).then(|| problems.join("; "));
        }
        Err(error) => sample.error = Some(error),
    }
    sample
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// One GET on a fresh connection; returns the status and (up to a limit) the body.
fn exchange(spec: &ProbeSpec) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + spec.timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let addr = spec.target.addrs[0];
    let mut stream = TcpStream::connect_timeout(&addr, spec.timeout).map_err(|e| format!("connect: {e}"))?;
    let request = encode_request("GET", &spec.target.path_and_query, &spec.target.host_header, &[], &[], false)
        .map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    stream.write_all(&request).map_err(|e| format!("write: {e}"))?;
    let mut parser = ResponseParser::new();
    parser.capture_body(if spec.metric.is_some() { EXPOSITION_BODY_LIMIT } else { PROBE_BODY_LIMIT });
    parser.start(false);
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("no answer within {:?}", spec.timeout));
            }
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 {
            let info = parser.finish_on_eof().map_err(|e| e.to_string())?;
            return Ok((info.status, parser.body().to_vec()));
        }
        if let (_, Progress::Complete(info)) = parser.feed(&buf[..n]).map_err(|e| e.to_string())? {
            return Ok((info.status, parser.body().to_vec()));
        }
    }
}

/// Converts `$.a.b[0].c` into the JSON pointer `/a/b/0/c`.
pub fn json_pointer(path: &str) -> Result<String, String> {
    let rest = path.trim().strip_prefix('$').ok_or_else(|| format!("{path:?}: a JSON path starts with $"))?;
    let mut pointer = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("{path:?}: empty key after '.'"));
                }
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            '[' => {
                let mut index = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    index.push(n);
                }
                let key = index.trim().trim_matches(|c| c == '\'' || c == '"');
                if key.is_empty() {
                    return Err(format!("{path:?}: empty [] in the path"));
                }
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            other => return Err(format!("{path:?}: unexpected {other:?} (use $.key.key[0])")),
        }
    }
    Ok(pointer)
}

fn number_at(body: &[u8], path: &str) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let found = value.pointer(&json_pointer(path).ok()?)?;
    found.as_f64().or_else(|| found.as_str()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_pointer("$.a.b[0].c").unwrap(), "/a/b/0/c");
        assert_eq!(json_pointer("$['queue size']").unwrap(), "/queue size");
        assert_eq!(json_pointer("$").unwrap(), "");
        assert!(json_pointer("a.b").is_err());
        assert!(json_pointer("$..").is_err());
    }

    #[test]
    fn numbers_are_read_from_bodies() {
        let body = br#"{"queue":{"size":12,"text":"7"},"list":[3.5]}"#;
        assert_eq!(number_at(body, "$.queue.size"), Some(12.0));
        assert_eq!(number_at(body, "$.queue.text"), Some(7.0));
        assert_eq!(number_at(body, "$.list[0]"), Some(3.5));
        assert_eq!(number_at(body, "$.missing"), None);
        assert_eq!(number_at(b"not json", "$.a"), None);
    }

    #[test]
    fn expectations_parse() {
        assert_eq!("body contains OK".parse::<ProbeExpect>(), Ok(ProbeExpect::BodyContains("OK".into())));
        assert_eq!("status 204".parse::<ProbeExpect>(), Ok(ProbeExpect::Status(204)));
        assert!("body has x".parse::<ProbeExpect>().is_err());
        assert!("status x".parse::<ProbeExpect>().is_err());
    }

    #[test]
    fn a_probe_of_nothing_is_nok() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let spec = ProbeSpec::new(&format!("http://{addr}/"), None, Duration::from_millis(300)).unwrap();
        let sample = probe_once(&spec);
        assert!(!sample.ok);
        assert!(sample.error.unwrap().contains("connect"));
    }

    #[test]
    fn https_probes_are_refused_with_a_reason() {
        let error = ProbeSpec::new("https://127.0.0.1:1/", None, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(error.contains("plain http:// only"), "{error}");
    }
}
