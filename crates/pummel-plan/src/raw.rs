//! The plan file as written: serde structs that mirror the TOML, key for key.
//!
//! This is the "low" form (ripgrep's `LowArgs`): it describes the whole format of issue 3, also
//! the parts the engine cannot run yet, so users' files never have to change when they arrive.
//! Every table denies unknown keys, and every value whose mistakes must be pointed at keeps its
//! position ([`Spanned`]). Nothing is interpreted here: durations, rates, expressions and URLs
//! stay text until validation (`validate/`) turns them into the validated form, so that each bad value
//! gets its own error at its own file:line:col instead of stopping the whole file.
//!
//! Optional keys are `Option`s even where the format requires them: a missing key is reported by
//! validation, with the position of the table it is missing from and the form it should take.

mod fault;
mod verify;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

/// A TOML table of named values, e.g. headers; keys keep their positions too.
pub type RawMap<T> = BTreeMap<Spanned<String>, Spanned<T>>;

/// A list whose items keep their positions.
pub type RawList<T> = Vec<Spanned<T>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    /// `[target]`: where requests go and how connections behave.
    pub target: Option<Spanned<RawTarget>>,
    /// `[targets.NAME]`: more hosts, each with its own base URL, headers and signing; a
    /// request names its host with `target = "NAME"`.
    pub targets: Option<Spanned<RawMap<RawTarget>>>,
    /// `[[scenario]]`: one load model and flow each.
    #[serde(default)]
    pub scenario: RawList<RawScenario>,
    /// `[thresholds]`: `global = [...]` and per request name, `"GET /api" = [...]`.
    pub thresholds: Option<Spanned<RawMap<RawList<ExprText>>>>,
    /// `[abort]`: rules that end the run early.
    pub abort: Option<Spanned<RawAbort>>,
    /// `[variables]`: values for templates; `-e KEY=VALUE` overrides them.
    pub variables: Option<Spanned<RawMap<toml::Value>>>,
    /// `[feeders.NAME]`: data files whose rows feed templates (`{{ NAME.column }}`).
    pub feeders: Option<Spanned<RawMap<RawFeeder>>>,
    /// `seed = 7`: the run's randomness repeats exactly (arrivals, `choose`, `random_*`,
    /// `uuid()`, random feeders); `--seed` overrides it.
    pub seed: Option<Spanned<i64>>,
    /// `[[fault]]`: faults injected during the run (see `fault.rs`).
    #[serde(default)]
    pub fault: RawList<RawFault>,
    /// `[proxy.NAME]`: proxies the run starts for its faults.
    pub proxy: Option<Spanned<RawMap<RawProxy>>>,
    /// `steady_state = "error_rate=2% p99_factor=3"`: what the faults' recovery is judged
    /// against (the words of `--steady-state`).
    pub steady_state: Option<Spanned<String>>,
    /// `[verify]`: how the writes (`write = { key = ... }`) are read back after the load.
    pub verify: Option<Spanned<RawVerify>>,
}

pub use self::fault::{RawFault, RawProxy};
pub use self::verify::{RawVerify, RawWrite};

/// `[target]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `base_url = "http://127.0.0.1:8090"`: joined with each request's `path`.
    pub base_url: Option<Spanned<String>>,
    /// Headers sent with every request (a request's own headers win).
    pub headers: Option<Spanned<RawMap<String>>>,
    /// Per-request time limit, e.g. `"30s"`.
    pub timeout: Option<Spanned<DurationText>>,
    /// TCP connect time limit, e.g. `"5s"`.
    pub connect_timeout: Option<Spanned<DurationText>>,
    /// `false` opens a new connection per request.
    pub keepalive: Option<Spanned<bool>>,
    /// Statuses that count as success: `200`, or `"200-399,404"`.
    pub ok_status: Option<Spanned<StatusText>>,
    /// `"1.1"` (default) or `"2"` (HTTP/2: prior knowledge for http://, ALPN for https://).
    pub http_version: Option<Spanned<String>>,
    /// Streams per HTTP/2 connection (with `http_version = "2"`).
    pub streams: Option<Spanned<i64>>,
    /// `auth = { aws_sigv4 = { region, service, access_key_env, secret_key_env } }`.
    pub auth: Option<Spanned<RawAuth>>,
    /// `cookies = false`: no cookie jar (each virtual user keeps one by default).
    pub cookies: Option<Spanned<bool>>,
    /// `redirects = N`: redirects a request follows at most (default 10; 0 follows none).
    pub redirects: Option<Spanned<i64>>,
    /// `accept_encoding = ["gzip", "br", "zstd"]`: sent as `Accept-Encoding` with every
    /// request; a compressed body that checks or extraction read is decoded.
    pub accept_encoding: Option<Spanned<RawList<String>>>,
}

/// `auth`: how every request is signed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// AWS Signature Version 4 (S3 and other AWS APIs).
    pub aws_sigv4: Option<Spanned<RawSigV4>>,
}

/// `aws_sigv4 = { region = "us-east-1", service = "s3", access_key_env, secret_key_env }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigV4 {
    /// Region of the credential scope.
    pub region: Option<Spanned<String>>,
    /// Service of the credential scope (default `s3`).
    pub service: Option<Spanned<String>>,
    /// Environment variable holding the access key (default `AWS_ACCESS_KEY_ID`).
    pub access_key_env: Option<Spanned<String>>,
    /// Environment variable holding the secret key (default `AWS_SECRET_ACCESS_KEY`).
    pub secret_key_env: Option<Spanned<String>>,
}

/// `[[scenario]]`: who does what, how often.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Name used in output and results.
    pub name: Option<Spanned<String>>,
    /// Open model: arrivals per second, `200` or `"120/m"`.
    pub rate: Option<Spanned<RateValue>>,
    /// Closed model: concurrent virtual users, each looping over the flow: `1000`, or a
    /// template of `[variables]` such as `"{{ users }}"` (so `-e users=100` scales a plan).
    pub users: Option<Spanned<CountValue>>,
    /// A load shape: levels of `rate` or `users`, ramps, holds.
    pub stages: Option<Spanned<RawList<RawStage>>>,
    /// Closed model: time over which the users are started, evenly.
    pub ramp_up: Option<Spanned<DurationText>>,
    /// Open model: `"uniform"` (default) or `"poisson"`.
    pub arrival: Option<Spanned<String>>,
    /// Runs of the flow: per user (closed model) or in all (open model); a number or a
    /// template of `[variables]` (`"{{ subscriptions // 50 }}"`).
    pub iterations: Option<Spanned<CountValue>>,
    /// Length of the scenario, e.g. `"1m"`.
    pub duration: Option<Spanned<DurationText>>,
    /// The steps each iteration goes through.
    pub flow: Option<Spanned<RawList<RawStep>>>,
    /// `"1.1"` or `"2"` for this scenario's requests (default: the target's `http_version`).
    pub http_version: Option<Spanned<String>>,
    /// Streams per HTTP/2 connection for this scenario (default: the target's `streams`).
    pub streams: Option<Spanned<i64>>,
    /// When the scenario starts, from the load's start (or from the end of `after`): `"30s"`.
    pub start: Option<Spanned<DurationText>>,
    /// The scenario whose end starts this one.
    pub after: Option<Spanned<String>>,
    /// `"setup"` (once before the load), `"load"` (the default) or `"teardown"` (after it).
    pub phase: Option<Spanned<String>>,
    /// Setup only: extracted variables collected over its iterations, for later phases.
    pub export: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One stage of a load shape.
///
/// - `{ rate = 200, for = "30s" }`: a level, 200 req/s for 30 s (`users = N` likewise);
/// - `{ rate = 500, ramp = "1m" }`: a linear ramp from the previous level to 500 over 1 min,
///   optionally followed by `for` at the new level;
/// - `{ hold = "2m" }`: keeps the previous level for 2 min.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// Target rate (open model).
    pub rate: Option<Spanned<RateValue>>,
    /// Target number of users (closed model).
    pub users: Option<Spanned<i64>>,
    /// How long the level is held.
    #[serde(rename = "for")]
    pub hold_for: Option<Spanned<DurationText>>,
    /// Time to reach the level linearly from the previous one.
    pub ramp: Option<Spanned<DurationText>>,
    /// Keep the previous level this long.
    pub hold: Option<Spanned<DurationText>>,
}

/// One step of a flow: exactly one of its kinds (`repeat` and `every` may go together, with
/// `flow`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Send an HTTP request.
    pub request: Option<Spanned<RawRequest>>,
    /// Pause: `"2s"`, `"1s..5s"` (uniform) or `"exp(20s)"` (exponential, that mean).
    pub think: Option<Spanned<String>>,
    /// Run the nested `flow` this many times.
    pub repeat: Option<Spanned<i64>>,
    /// Run the nested `flow` every interval, for the rest of the run (or `repeat` times).
    pub every: Option<Spanned<DurationText>>,
    /// The nested steps of `repeat` / `every`.
    pub flow: Option<Spanned<RawList<RawStep>>>,
    /// Choose one sub-flow per iteration, by weight.
    pub choose: Option<Spanned<RawList<RawBranch>>>,
    /// Open a WebSocket session.
    pub ws_connect: Option<Spanned<RawWsConnect>>,
    /// Send a WebSocket message.
    pub ws_send: Option<Spanned<RawWsSend>>,
    /// Wait for a WebSocket message that matches.
    pub ws_expect: Option<Spanned<RawWsExpect>>,
    /// Close the WebSocket session: `true`, or `{ code = 1000, reason = "bye" }`.
    pub ws_close: Option<Spanned<toml::Value>>,
}

/// `request = { ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// HTTP method (default `GET`).
    pub method: Option<Spanned<String>>,
    /// Path (and query) joined with `[target].base_url`.
    pub path: Option<Spanned<String>>,
    /// A full URL instead of `path`.
    pub url: Option<Spanned<String>>,
    /// Headers of this request.
    pub headers: Option<Spanned<RawMap<String>>>,
    /// Query parameters, appended URL-encoded.
    pub query: Option<Spanned<RawMap<Scalar>>>,
    /// A body sent as is.
    pub body: Option<Spanned<String>>,
    /// A body serialized as JSON (Content-Type: application/json unless given).
    pub json: Option<Spanned<toml::Value>>,
    /// A body URL-encoded as a form (Content-Type: application/x-www-form-urlencoded).
    pub form: Option<Spanned<RawMap<Scalar>>>,
    /// A random body of this size (`1048576`, `"1MiB"`), generated once and sent by every
    /// request (object-store uploads); `--object-size` overrides it.
    pub random_body: Option<Spanned<Scalar>>,
    /// A body read from this file (relative to the plan file) once, and sent as is.
    pub body_file: Option<Spanned<String>>,
    /// A `multipart/form-data` body: `[ { name = "file", file = "photo.jpg", content_type =
    /// "image/jpeg" }, { name = "title", value = "{{ title }}" } ]`.
    pub multipart: Option<Spanned<RawList<RawPart>>>,
    /// The host it goes to: a `[targets.NAME]` (default: `[target]`, or the first target).
    pub target: Option<Spanned<String>>,
    /// Name that groups this request's statistics (default `METHOD path`).
    pub name: Option<Spanned<String>>,
    /// Values taken from the response into per-user variables.
    pub extract: Option<Spanned<RawMap<RawExtract>>>,
    /// Checks on the response.
    pub check: Option<Spanned<RawList<RawCheck>>>,
    /// `write = { key = "..." }`: the request writes this key (logged with its outcome, read
    /// back by `[verify]`).
    pub write: Option<Spanned<RawWrite>>,
}

/// One part of a `multipart` body: a field (`value`, a template) or a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPart {
    /// The field's name.
    pub name: Option<Spanned<String>>,
    /// A text value (a template).
    pub value: Option<Spanned<String>>,
    /// A file to upload, relative to the plan file, read once.
    pub file: Option<Spanned<String>>,
    /// The file's `Content-Type` (default `application/octet-stream`).
    pub content_type: Option<Spanned<String>>,
    /// The file name sent (default: the file's own name).
    pub filename: Option<Spanned<String>>,
}

/// One extracted variable: from a JSON body (`json = "$.token"`), a header, or a regex.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    /// JSONPath into the body.
    pub json: Option<Spanned<String>>,
    /// Response header name.
    pub header: Option<Spanned<String>>,
    /// Regex on the body (or on `header`); its first group is the value.
    pub regex: Option<Spanned<String>>,
    /// Value when nothing matched (otherwise the request fails).
    pub default: Option<Spanned<Scalar>>,
}

/// One check on a response; its pass rate is reported under `name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Name in the results.
    pub name: Option<Spanned<String>>,
    /// Expected status or set: `201`, `"200-299"`.
    pub status: Option<Spanned<StatusText>>,
    /// Response header the check is about (with `equals`, `contains`, `regex` or `exists`).
    pub header: Option<Spanned<String>>,
    /// JSONPath into the body the check is about (with `equals` or `exists`).
    pub json: Option<Spanned<String>>,
    /// Expected value of `header` or `json`.
    pub equals: Option<Spanned<toml::Value>>,
    /// `header` contains this text.
    pub contains: Option<Spanned<String>>,
    /// `header` matches this regex.
    pub regex: Option<Spanned<String>>,
    /// `header` or `json` is present (`true`) or absent (`false`).
    pub exists: Option<Spanned<bool>>,
    /// The body contains this text.
    pub body_contains: Option<Spanned<String>>,
    /// The body matches this regex.
    pub body_regex: Option<Spanned<String>>,
    /// The response came within this time.
    pub latency: Option<Spanned<DurationText>>,
    /// Whether a failed check marks the request failed (default true).
    pub fail: Option<Spanned<bool>>,
}

/// One weighted sub-flow of `choose`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    /// Relative weight, e.g. 90 and 10.
    pub weight: Option<Spanned<f64>>,
    /// Name in the results.
    pub name: Option<Spanned<String>>,
    /// The steps of this branch.
    pub flow: Option<Spanned<RawList<RawStep>>>,
}

/// `ws_connect = { url, headers, name }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWsConnect {
    /// `ws://` URL, or a path joined with the base URL.
    pub url: Option<Spanned<String>>,
    /// Path joined with `[target].base_url`.
    pub path: Option<Spanned<String>>,
    /// Headers of the upgrade request.
    pub headers: Option<Spanned<RawMap<String>>>,
    /// Name that groups the handshake's statistics.
    pub name: Option<Spanned<String>>,
}

/// `ws_send = { text | json, name }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWsSend {
    /// A text message (a template).
    pub text: Option<Spanned<String>>,
    /// A JSON message.
    pub json: Option<Spanned<toml::Value>>,
    /// Name of the exchange (send + expect) in the results.
    pub name: Option<Spanned<String>>,
}

/// `ws_expect = { json, equals, regex, match_id, timeout, name }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWsExpect {
    /// JSONPath the message must have (with `equals`: that value).
    pub json: Option<Spanned<String>>,
    /// Expected value at `json`.
    pub equals: Option<Spanned<toml::Value>>,
    /// Regex the message must match.
    pub regex: Option<Spanned<String>>,
    /// JSON-RPC style: the reply whose value at this JSONPath equals the sent message's.
    pub match_id: Option<Spanned<String>>,
    /// How long to wait.
    pub timeout: Option<Spanned<DurationText>>,
    /// Name of the exchange in the results.
    pub name: Option<Spanned<String>>,
}

/// `[abort]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAbort {
    /// Rules, e.g. `["error_rate>50%"]`, judged every second over `window`.
    pub when: Option<Spanned<RawList<ExprText>>>,
    /// Sliding window (default 5s).
    pub window: Option<Spanned<DurationText>>,
}

/// `[feeders.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeeder {
    /// CSV or JSON-lines file, relative to the plan file.
    pub file: Option<Spanned<String>>,
    /// `"csv"` or `"jsonl"` (default: from the file's extension).
    pub format: Option<Spanned<String>>,
    /// `"sequential"` (default), `"random"` or `"unique"`.
    pub mode: Option<Spanned<String>>,
    /// `"wrap"` (default) or `"end"`: what `unique` and `sequential` do after the last row.
    pub when_exhausted: Option<Spanned<String>>,
}

/// Declares a newtype over text whose serde "expected" message shows the form users should
/// write, so that `duration = 30` says `expected a duration like "30s"`.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl Visitor<'_> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                }
                deserializer.deserialize_str(TextVisitor)
            }
        }
    };
}

text_type!(
    /// A duration as written, e.g. `"30s"`; parsed by validation.
    DurationText,
    "a duration like \"30s\""
);
text_type!(
    /// A threshold or abort rule as written, e.g. `"p99<250ms"`; parsed by validation.
    ExprText,
    "a rule like \"p99<250ms\" or \"error_rate<1%\""
);

/// A status set: an integer (`200`) or text (`"200-399,404"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText(pub String);

impl<'de> Deserialize<'de> for StatusText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl Visitor<'_> for StatusVisitor {
            type Value = StatusText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status like 200 or a set like \"200-399,404\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusText, E> {
                Ok(StatusText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusText, E> {
                Ok(StatusText(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusText, E> {
                Ok(StatusText(v.to_string()))
            }
        }
        deserializer.deserialize_any(StatusVisitor)
    }
}

/// A rate: a number of requests per second (`200`, `0.5`) or text with a unit (`"120/m"`).
#[derive(Debug, Clone, PartialEq)]
pub enum RateValue {
    /// Per second.
    Number(f64),
    /// As written, e.g. `"2000/s"`, `"120/m"`.
    Text(String),
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = RateValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate like 200 (per second) or \"120/m\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RateValue, E> {
                Ok(RateValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RateValue, E> {
                Ok(RateValue::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RateValue, E> {
                Ok(RateValue::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateValue, E> {
                Ok(RateValue::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

/// A string, number or boolean, as text (query and form values, extraction defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A count: a whole number (`1000`) or a template of `[variables]` (`"{{ users }}"`), rendered
/// once at validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountValue {
    /// As written.
    Number(i64),
    /// A template, e.g. `"{{ users }}"`.
    Text(String),
}

impl<'de> Deserialize<'de> for CountValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = CountValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number like 1000 or a template like \"{{ users }}\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CountValue, E> {
                Ok(CountValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CountValue, E> {
                Ok(CountValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CountValue, E> {
                Ok(CountValue::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}
