//! One request as it was recorded, whatever recorded it: the common form of a HAR entry and a
//! curl command, which [`crate::convert`] turns into a plan step.

use url::Url;

/// A recorded HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The full URL, http:// or https://.
    pub url: Url,
    /// Headers in the order sent, as recorded (pseudo-headers and all: the filter decides).
    pub headers: Vec<(String, String)>,
    /// The body as text, if there was one.
    pub body: Option<String>,
    /// When the request started, milliseconds since the Unix epoch (HAR only).
    pub started_ms: Option<f64>,
    /// How long it took until its answer ended, milliseconds (HAR only).
    pub took_ms: Option<f64>,
}

impl Recorded {
    /// The value of header `name` (any case), the first if several.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `host:port` of the URL (the port always, default or not).
    pub fn host_port(&self) -> String {
        host_port(&self.url)
    }
}

/// `host:port` of `url`, the port always given (`127.0.0.1:8090`, `example.com:443`).
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}
