//! Plans from recorded traffic: `pummel convert har` and `pummel convert curl`.
//!
//! Nobody writes a 40-request journey by hand when the browser already recorded it (k6's HAR
//! converter, Gatling's recorder). This crate reads what was recorded — a HAR file
//! ([`har::parse`]) or curl command lines ([`curl::parse_args`], [`curl::parse_text`]) — into a
//! list of [`Recorded`] requests, and [`convert`] turns that list into the text of a plan file
//! that `pummel check` accepts and that replays the requests in their order:
//!
//! - one host per plan (the plan format sends to one `base_url`): the first request's, or
//!   `--only-host`'s; requests on other hosts are left out, and said so ([`filter`]);
//! - `--exclude 'static/*'` globs on the path leave requests out ([`filter`]);
//! - headers a client adds by itself (Host, Content-Length, Connection, Accept-Encoding, Sec-*,
//!   HTTP/2 pseudo-headers, ...) are dropped unless kept on purpose ([`headers`]);
//! - request names group paths by pattern: numeric and UUID-like segments become `:id`
//!   ([`naming`]);
//! - secrets — Authorization, Cookie, API-key headers, tokens in query strings, password and
//!   token fields of JSON and form bodies — become `{{ env("NAME") }}` placeholders, listed in
//!   a comment at the top of the plan, and are never written in plain text ([`redact`]);
//! - pauses between requests in the recording become `think` steps, unless `no_think`.
//!
//! Nothing here runs a request or validates the plan: the binary checks the text it gets with
//! the plan loader before writing it.

#![forbid(unsafe_code)]

pub mod curl;
pub mod filter;
pub mod har;
pub mod headers;
pub mod naming;
pub mod recorded;
pub mod redact;
pub mod write;

use std::collections::BTreeMap;

pub use recorded::Recorded;

/// Pauses shorter than this between two requests are not think time: a browser sends the
/// requests of one page a few milliseconds apart.
pub const MIN_THINK_MS: u64 = 100;

/// How a recording becomes a plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep only requests to this host (`api.example.com`, or `host:port`); default: the
    /// first request's host and port.
    pub only_host: Option<String>,
    /// Leave out requests whose path matches one of these globs (`static/*`, `*.png`); the
    /// leading `/` of paths and patterns is ignored.
    pub exclude: Vec<String>,
    /// Write no `think` steps.
    pub no_think: bool,
    /// Headers to keep although pummel drops them by default (e.g. `Accept-Encoding`).
    pub keep_headers: Vec<String>,
    /// What was converted, for the plan's opening comment: `recording.har`, `a curl command`.
    pub source: String,
    /// The command that converted it, for the same comment: `pummel convert har`.
    pub command: String,
}

/// A converted plan.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The plan file's text.
    pub text: String,
    /// Requests in the plan.
    pub requests: usize,
    /// The environment variables the plan reads, with what each stands for.
    pub variables: Vec<redact::Variable>,
    /// What was left out or changed, one sentence each, for the user (also in the plan's
    /// opening comment).
    pub warnings: Vec<String>,
}

/// Why a recording could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input is not what it should be; the message starts with where (`file:line:col`).
    #[error("{0}")]
    Input(String),
    /// Nothing was left to convert.
    #[error("nothing to convert: {0}")]
    Empty(String),
    /// An option was given a value that cannot be used.
    #[error("{0}")]
    Option(String),
    /// A secret would have been written in plain text; the conversion refuses.
    #[error("{0}")]
    Secret(String),
}

/// Turns `recorded` (in the order recorded) into a plan.
pub fn convert(recorded: Vec<Recorded>, options: &Options) -> Result<Converted, ConvertError> {
    let mut warnings = Vec::new();
    let selection = filter::select(recorded, options)?;
    warnings.extend(selection.warnings);
    let keep = headers::Keep::new(&options.keep_headers)?;
    let mut secrets = redact::Secrets::default();
    let mut steps = Vec::new();
    let mut dropped_headers: BTreeMap<String, usize> = BTreeMap::new();
    let mut previous_end: Option<f64> = None;
    for request in &selection.requests {
        if let (false, Some(end), Some(start)) = (options.no_think, previous_end, request.started_ms) {
            let pause = (start - end).max(0.0).round() as u64;
            if pause >= MIN_THINK_MS {
                steps.push(write::Step::Think { ms: pause });
            }
        }
        previous_end = request.started_ms.map(|start| start + request.took_ms.unwrap_or(0.0).max(0.0));
        let mut headers = Vec::new();
        for (name, value) in &request.headers {
            if !keep.keeps(name) {
                *dropped_headers.entry(name.to_ascii_lowercase()).or_default() += 1;
                continue;
            }
            headers.push((name.clone(), secrets.header(name, value)));
        }
        let content_type =
            request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.as_str());
        steps.push(write::Step::Request(write::Request {
            name: naming::request_name(&request.method, request.url.path()),
            method: request.method.clone(),
            path: secrets.path_and_query(request.url.path(), request.url.query()),
            headers,
            body: request.body.as_deref().map(|body| secrets.body(body, content_type)),
        }));
    }
    if !dropped_headers.is_empty() {
        let names: Vec<&str> = dropped_headers.keys().map(String::as_str).collect();
        warnings.push(format!(
            "headers a client adds by itself were left out: {} (keep one with --keep-header NAME)",
            names.join(", ")
        ));
    }
    secrets.substitute(&mut steps);
    let plan = write::Plan {
        source: &options.source,
        command: &options.command,
        base_url: &selection.base_url,
        steps: &steps,
        variables: secrets.variables(),
        warnings: &warnings,
    };
    let text = plan.render();
    secrets.assert_absent(&text)?;
    Ok(Converted { text, requests: selection.requests.len(), variables: secrets.variables().to_vec(), warnings })
}

#[cfg(test)]
mod tests;
