//! `--log-requests FILE` and `--log-sample 1%` (run, quick and plan): the engine's bounded
//! request log (`pummel_engine::request_log`), set up from the flags, with the secrets to keep
//! out of it (the values of the secret headers the run sends, judged by the plan converter's
//! rules, as in converted plans), and its totals said at the end.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use pummel_convert::redact::{is_secret_field, is_secret_header};
use pummel_engine::request_log::{RequestLogSpec, RequestLogTotals};

use super::CliError;
use crate::cli::DisplayArgs;

/// The request-log flags of `pummel run`.
#[derive(Debug, Args, Default, Clone)]
pub struct RequestLogArgs {
    /// Write failed requests to FILE as JSON lines (name, URL, method, status, error kind and
    /// message, timings, the first bytes of the answer), at most --log-per-second lines per
    /// second per error kind; what is left out is counted and reported. Secrets (secret
    /// headers' values, token-like query parameters) are redacted
    #[arg(long, value_name = "FILE", help_heading = LOG_HEADING)]
    pub log_requests: Option<PathBuf>,
    /// Also log this share of the successful requests, e.g. 1% (exactly every 100th), 100%
    #[arg(long, value_name = "PERCENT", default_value = "0%", requires = "log_requests", help_heading = LOG_HEADING)]
    pub log_sample: String,
    /// Most lines per second for each error kind (and for sampled successes), shared out over
    /// the generator threads
    #[arg(long, value_name = "N", default_value_t = pummel_engine::request_log::DEFAULT_PER_SECOND,
        requires = "log_requests", help_heading = LOG_HEADING)]
    pub log_per_second: u32,
}

/// Where the request-log flags show in `--help`.
const LOG_HEADING: &str = "Request log";

/// The log asked for, if any; `headers` are the headers the run sends (`Name`, value text).
pub fn spec(args: &RequestLogArgs, headers: &[(String, String)]) -> Result<Option<RequestLogSpec>, CliError> {
    let Some(path) = &args.log_requests else { return Ok(None) };
    let sample = parse_percent(&args.log_sample).map_err(|e| CliError::usage(anyhow!("--log-sample: {e}")))?;
    if args.log_per_second == 0 {
        return Err(CliError::usage(anyhow!("--log-per-second must be at least 1")));
    }
    let mut spec = RequestLogSpec::new(path.clone());
    spec.sample = sample;
    spec.per_second = args.log_per_second;
    spec.secrets = secret_values(headers);
    spec.secret_field = Some(is_secret_field);
    Ok(Some(spec))
}

/// Says what the log holds and what it left out (stderr; the summary and results hold it too).
pub fn report(totals: Option<&RequestLogTotals>, display: DisplayArgs) {
    let Some(totals) = totals else { return };
    if let Some(error) = &totals.error {
        eprintln!("warning: the request log {} is incomplete: {error}", totals.path);
    }
    if display.quiet {
        return;
    }
    let left: u64 = totals.left_out.values().sum();
    if left == 0 {
        eprintln!("request log: {} lines in {}", totals.written, totals.path);
    } else {
        let kinds: Vec<String> = totals.left_out.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        eprintln!(
            "request log: {} lines in {}; {left} left out by the per-second bounds ({})",
            totals.written,
            totals.path,
            kinds.join(", ")
        );
    }
}

/// The values of the secret headers (`Authorization`, `Cookie`, `X-Api-Key`, ...), and of the
/// environment variables their templates read (`{{ env("TOKEN") }}`).
fn secret_values(headers: &[(String, String)]) -> Vec<String> {
    let mut values = Vec::new();
    for (_, value) in headers.iter().filter(|(name, _)| is_secret_header(name)) {
        values.push(value.trim().to_string());
        // The credentials of `Bearer xyz` alone too.
        if let Some((_, credentials)) = value.trim().split_once(' ') {
            values.push(credentials.trim().to_string());
        }
        let mut rest = value.as_str();
        while let Some(at) = rest.find("env(") {
            rest = &rest[at + 4..];
            let quoted = rest.trim_start().trim_start_matches(['"', '\'']);
            let end = quoted.find(['"', '\'']).unwrap_or(quoted.len());
            if let Ok(secret) = std::env::var(&quoted[..end]) {
                values.push(secret);
            }
        }
    }
    values.retain(|v| !v.is_empty());
    // Longest first, so a whole value is replaced before a part of it.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// `1%`, `0.5%`, `100%` → 0.01, 0.005, 1.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix('%').ok_or_else(|| format!("{text:?}: expected a percentage such as 1%"))?;
    match number.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!("{text:?}: expected a percentage from 0% to 100%")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent(" 0.5% "), Ok(0.005));
        assert!(parse_percent("1").is_err());
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("x%").is_err());
    }

    #[test]
    fn secret_headers_give_their_values() {
        let headers = [
            ("Authorization".to_string(), "Bearer abcdef123".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
            ("X-Api-Key".to_string(), "k-123456".to_string()),
        ];
        assert_eq!(secret_values(&headers), ["Bearer abcdef123", "abcdef123", "k-123456"]);
    }
}
