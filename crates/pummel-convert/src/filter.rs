//! Which recorded requests go into a plan: one host, minus the excluded paths.
//!
//! A plan sends to one `base_url` (the plan format has one host per plan; a `url` on another
//! host is an error), so a recording that touched several hosts — a page, its CDN, an analytics
//! service — keeps the requests of one: the first request's scheme, host and port, or those of
//! `--only-host`. The others are left out, counted per host in a warning that names
//! `--only-host`: a conversion that silently dropped half a journey would be worse than one
//! that refused, and one that refused every page with a font from a CDN would be useless.
//! `--exclude` globs match the path (without its leading `/`; `*` crosses `/`).

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::recorded::{Recorded, host_port};
use crate::{ConvertError, Options};

/// The requests that go into the plan.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `scheme://host[:port]` of the kept requests.
    pub base_url: String,
    /// The kept requests, in the order recorded.
    pub requests: Vec<Recorded>,
    /// What was left out, one sentence each.
    pub warnings: Vec<String>,
}

/// Keeps the requests of one origin whose paths no `--exclude` glob matches.
pub fn select(recorded: Vec<Recorded>, options: &Options) -> Result<Selection, ConvertError> {
    let Some(first) = recorded.first() else {
        return Err(ConvertError::Empty("the recording holds no http:// or https:// request".into()));
    };
    let origin = match &options.only_host {
        None => first.url.origin().ascii_serialization(),
        Some(host) => {
            recorded.iter().find(|r| matches_host(r, host)).map(|r| r.url.origin().ascii_serialization()).ok_or_else(
                || {
                    ConvertError::Empty(format!(
                        "no request on host {host:?}; the recording's hosts: {}",
                        hosts(&recorded).keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                },
            )?
        }
    };
    let excludes = globs(&options.exclude)?;
    let total = recorded.len();
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    let mut excluded = 0;
    let mut requests = Vec::new();
    for request in recorded {
        if request.url.origin().ascii_serialization() != origin {
            *others.entry(request.url.origin().ascii_serialization()).or_default() += 1;
        } else if excludes.is_match(request.url.path().trim_start_matches('/')) {
            excluded += 1;
        } else {
            requests.push(request);
        }
    }
    let mut warnings = Vec::new();
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|(host, n)| format!("{host} ({n})")).collect();
        let n: usize = others.values().sum();
        warnings.push(format!(
            "{n} of {total} requests were on other hosts and were left out (a plan sends to one host): {}; \
             convert them with --only-host HOST",
            list.join(", ")
        ));
    }
    if excluded > 0 {
        warnings.push(format!("{excluded} requests matched --exclude and were left out"));
    }
    if requests.is_empty() {
        return Err(ConvertError::Empty(format!("all {total} requests of {origin} matched --exclude")));
    }
    Ok(Selection { base_url: origin, requests, warnings })
}

/// `--only-host` matches the host (`example.com`, any port) or `host:port`.
fn matches_host(request: &Recorded, wanted: &str) -> bool {
    let wanted = wanted.trim().trim_end_matches('/').to_ascii_lowercase();
    let wanted = wanted.split_once("://").map_or(wanted.as_str(), |(_, rest)| rest);
    let host = request.url.host_str().unwrap_or_default().to_ascii_lowercase();
    wanted == host || wanted == request.host_port().to_ascii_lowercase()
}

/// Requests per origin.
fn hosts(recorded: &[Recorded]) -> BTreeMap<String, usize> {
    let mut hosts = BTreeMap::new();
    for request in recorded {
        *hosts.entry(host_port(&request.url)).or_default() += 1;
    }
    hosts
}

/// The `--exclude` globs; a bad one is refused with the reason.
fn globs(patterns: &[String]) -> Result<GlobSet, ConvertError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern.trim_start_matches('/'))
            .map_err(|e| ConvertError::Option(format!("--exclude {pattern:?}: {e}")))?;
        set.add(glob);
    }
    set.build().map_err(|e| ConvertError::Option(format!("--exclude: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Recorded {
        Recorded {
            method: "GET".into(),
            url: url::Url::parse(url).expect("a URL"),
            headers: Vec::new(),
            body: None,
            started_ms: None,
            took_ms: None,
        }
    }

    fn paths(selection: &Selection) -> Vec<&str> {
        selection.requests.iter().map(|r| r.url.path()).collect()
    }

    #[test]
    fn the_first_host_is_kept_and_the_others_are_counted() {
        let recording = vec![
            get("http://127.0.0.1:8080/app/"),
            get("https://cdn.example.com/font.woff"),
            get("http://127.0.0.1:8080/api/items"),
            get("http://localhost:8080/api/items"),
            get("https://cdn.example.com/x.css"),
        ];
        let selection = select(recording, &Options::default()).expect("selects");
        assert_eq!(selection.base_url, "http://127.0.0.1:8080");
        assert_eq!(paths(&selection), ["/app/", "/api/items"]);
        assert_eq!(selection.warnings.len(), 1);
        let warning = &selection.warnings[0];
        assert!(warning.starts_with("3 of 5 requests were on other hosts"), "{warning}");
        assert!(warning.contains("https://cdn.example.com (2)") && warning.contains("http://localhost:8080 (1)"));
        assert!(warning.contains("--only-host"), "{warning}");
    }

    #[test]
    fn only_host_picks_by_host_or_host_and_port() {
        let recording =
            || vec![get("http://127.0.0.1:8080/"), get("https://api.example.com/v1/a"), get("http://127.0.0.1:9090/b")];
        let by_host = Options { only_host: Some("api.example.com".into()), ..Options::default() };
        let selection = select(recording(), &by_host).expect("selects");
        assert_eq!(selection.base_url, "https://api.example.com");
        assert_eq!(paths(&selection), ["/v1/a"]);
        let by_port = Options { only_host: Some("127.0.0.1:9090".into()), ..Options::default() };
        assert_eq!(paths(&select(recording(), &by_port).expect("selects")), ["/b"]);
        let https_port = Options { only_host: Some("api.example.com:443".into()), ..Options::default() };
        assert_eq!(paths(&select(recording(), &https_port).expect("selects")), ["/v1/a"]);
        let missing = Options { only_host: Some("nowhere.test".into()), ..Options::default() };
        let err = select(recording(), &missing).expect_err("no such host").to_string();
        assert!(err.contains("127.0.0.1:8080") && err.contains("api.example.com:443"), "{err}");
    }

    #[test]
    fn exclude_matches_paths_with_or_without_the_leading_slash() {
        let recording = || {
            vec![
                get("http://h/static/app.js"),
                get("http://h/static/css/site.css"),
                get("http://h/img/logo.png"),
                get("http://h/api/items?static=1"),
            ]
        };
        let options = Options { exclude: vec!["static/*".into(), "/*.png".into()], ..Options::default() };
        let selection = select(recording(), &options).expect("selects");
        assert_eq!(paths(&selection), ["/api/items"]);
        assert_eq!(selection.warnings, ["3 requests matched --exclude and were left out"]);
        let all = Options { exclude: vec!["*".into()], ..Options::default() };
        assert!(matches!(select(recording(), &all), Err(ConvertError::Empty(_))));
        let bad = Options { exclude: vec!["a[".into()], ..Options::default() };
        assert!(select(recording(), &bad).expect_err("bad glob").to_string().starts_with("--exclude \"a[\""));
    }
}
