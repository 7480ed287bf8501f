//! HAR files (HTTP Archive 1.2, as browsers, Playwright and proxies save them) read into
//! [`Recorded`] requests, in the order they started.
//!
//! Only what a replay needs is read: each entry's `startedDateTime` and `time` (for think
//! times), and its request's method, URL, headers, cookies and `postData`. Responses are not
//! read at all. Entries that are not http(s) requests (WebSocket sessions, `data:` and `blob:`
//! URLs, browser extensions) are left out and counted in a note. A file that is not a HAR is
//! refused at its `file:line:col`.

use serde::Deserialize;
use url::Url;

use crate::ConvertError;
use crate::recorded::Recorded;

/// `{"log": {...}}`.
#[derive(Debug, Deserialize)]
struct Har {
    log: Log,
}

#[derive(Debug, Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    started_date_time: Option<String>,
    #[serde(default)]
    time: Option<f64>,
    request: Request,
    /// Chrome's and Playwright's resource type (`websocket`, `fetch`, `document`, ...).
    #[serde(default, rename = "_resourceType")]
    resource_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    cookies: Vec<NameValue>,
    #[serde(default)]
    post_data: Option<PostData>,
    /// Bytes of the body sent (`-1` when unknown).
    #[serde(default)]
    body_size: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct NameValue {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Vec<NameValue>,
}

/// The requests of a HAR file's text; `source` names it in messages.
pub struct Parsed {
    /// The http(s) requests, in the order they started.
    pub requests: Vec<Recorded>,
    /// What was left out, one sentence each.
    pub notes: Vec<String>,
}

/// Reads the HAR in `text`.
pub fn parse(text: &str, source: &str) -> Result<Parsed, ConvertError> {
    let har: Har = serde_json::from_str(text).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "not JSON" } else { "not a HAR file" };
        ConvertError::Input(format!("{source}:{}:{}: {what}: {e}", e.line(), e.column()))
    })?;
    let mut requests = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut bodies_missing = 0;
    for entry in har.log.entries {
        let url = match Url::parse(&entry.request.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
            Ok(url) => {
                skipped.push(format!("{}:", url.scheme()));
                continue;
            }
            Err(_) => {
                skipped.push("unreadable URLs".into());
                continue;
            }
        };
        if entry.resource_type.as_deref() == Some("websocket") {
            skipped.push("WebSocket".into());
            continue;
        }
        let request = entry.request;
        let mut headers: Vec<(String, String)> = request.headers.into_iter().map(|h| (h.name, h.value)).collect();
        if !request.cookies.is_empty() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("cookie")) {
            let cookie: Vec<String> = request.cookies.iter().map(|c| format!("{}={}", c.name, c.value)).collect();
            headers.push(("Cookie".to_string(), cookie.join("; ")));
        }
        let body = match request.post_data {
            Some(data) if data.text.as_deref().is_some_and(|t| !t.is_empty()) => data.text,
            Some(data) if !data.params.is_empty() => Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(data.params.iter().map(|p| (&p.name, &p.value)))
                    .finish(),
            ),
            _ => {
                if request.body_size.is_some_and(|n| n > 0.0) {
                    bodies_missing += 1;
                }
                None
            }
        };
        requests.push(Recorded {
            method: request.method.to_ascii_uppercase(),
            url,
            headers,
            body,
            started_ms: entry.started_date_time.as_deref().and_then(rfc3339_ms),
            took_ms: entry.time.filter(|t| t.is_finite() && *t >= 0.0),
        });
    }
    // Entries are in start order in every HAR writer known; sort anyway (stably) when the
    // times say otherwise.
    if requests.iter().all(|r| r.started_ms.is_some()) {
        requests.sort_by(|a, b| a.started_ms.unwrap_or(0.0).total_cmp(&b.started_ms.unwrap_or(0.0)));
    }
    let mut notes = Vec::new();
    if !skipped.is_empty() {
        skipped.sort();
        let mut kinds = skipped.clone();
        kinds.dedup();
        notes.push(format!(
            "{} entries that are not http(s) requests were left out ({})",
            skipped.len(),
            kinds.join(", ")
        ));
    }
    if bodies_missing > 0 {
        notes.push(format!(
            "{bodies_missing} requests had a body the HAR does not hold (recorded without content, or binary); \
             they are sent without one"
        ));
    }
    Ok(Parsed { requests, notes })
}

/// `2024-05-10T12:34:56.789Z` or `...+02:00` → milliseconds since the Unix epoch.
pub fn rfc3339_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        (clock, sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?))
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: f64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || !(0.0..61.0).contains(&second)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 - offset_minutes * 60;
    Some(seconds as f64 * 1000.0 + second * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_ms("2024-05-10T12:34:56.789Z"), Some(1_715_344_496_789.0));
        assert_eq!(rfc3339_ms("2024-05-10T14:34:56.789+02:00"), Some(1_715_344_496_789.0));
        assert_eq!(rfc3339_ms("2024-05-10T10:04:56.789-02:30"), Some(1_715_344_496_789.0));
        assert_eq!(rfc3339_ms("2000-02-29T00:00:00.000Z"), Some(951_782_400_000.0));
        for bad in ["", "yesterday", "2024-13-01T00:00:00Z", "2024-05-10", "2024-05-10T25:00:00Z"] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

    const HAR: &str = r#"{"log": {"version": "1.2", "entries": [
      {"startedDateTime": "2024-05-10T12:00:01.000Z", "time": 20,
       "request": {"method": "post", "url": "http://127.0.0.1:8090/api/items?x=1",
         "headers": [{"name": "Content-Type", "value": "application/json"}],
         "cookies": [{"name": "sid", "value": "abc123"}],
         "postData": {"mimeType": "application/json", "text": "{\"a\":1}"}},
       "response": {"status": 200}},
      {"startedDateTime": "2024-05-10T12:00:00.000Z", "time": 5,
       "request": {"method": "GET", "url": "http://127.0.0.1:8090/", "headers": []}},
      {"startedDateTime": "2024-05-10T12:00:02.000Z", "time": 5, "_resourceType": "websocket",
       "request": {"method": "GET", "url": "ws://127.0.0.1:8090/ws", "headers": []}},
      {"startedDateTime": "2024-05-10T12:00:03.000Z", "time": 5,
       "request": {"method": "GET", "url": "data:image/png;base64,AAAA", "headers": []}},
      {"startedDateTime": "2024-05-10T12:00:05.000Z", "time": 5,
       "request": {"method": "POST", "url": "http://127.0.0.1:8090/omitted", "headers": [], "bodySize": 12,
         "postData": {"mimeType": "application/json", "text": ""}}},
      {"startedDateTime": "2024-05-10T12:00:04.000Z", "time": 5,
       "request": {"method": "POST", "url": "http://127.0.0.1:8090/form", "headers": [],
         "postData": {"mimeType": "application/x-www-form-urlencoded",
           "params": [{"name": "a b", "value": "c&d"}]}}}
    ]}}"#;

    #[test]
    fn entries_become_requests_in_start_order() {
        let parsed = parse(HAR, "x.har").expect("a HAR");
        let urls: Vec<&str> = parsed.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8090/",
                "http://127.0.0.1:8090/api/items?x=1",
                "http://127.0.0.1:8090/form",
                "http://127.0.0.1:8090/omitted"
            ]
        );
        assert_eq!(parsed.requests[3].body, None, "an empty text is no body");
        let post = &parsed.requests[1];
        assert_eq!(post.method, "POST");
        assert_eq!(post.body.as_deref(), Some("{\"a\":1}"));
        assert_eq!(post.header("cookie"), Some("sid=abc123"), "cookies become a Cookie header");
        assert_eq!(post.started_ms, rfc3339_ms("2024-05-10T12:00:01Z"));
        assert_eq!(post.took_ms, Some(20.0));
        assert_eq!(parsed.requests[2].body.as_deref(), Some("a+b=c%26d"));
        assert_eq!(parsed.notes[0], "2 entries that are not http(s) requests were left out (data:, ws:)");
        assert!(parsed.notes[1].starts_with("1 requests had a body the HAR does not hold"), "{:?}", parsed.notes);
    }

    #[test]
    fn not_a_har_is_refused_at_its_position() {
        let err = parse("{\"log\": {\"entries\": [{\"request\": {}}]}}", "bad.har").err().expect("refused");
        assert!(err.to_string().starts_with("bad.har:1:"), "{err}");
        assert!(err.to_string().contains("not a HAR file"), "{err}");
        let err = parse("{\n  oops", "broken.har").err().expect("refused");
        assert!(err.to_string().starts_with("broken.har:2:3: not JSON"), "{err}");
    }
}
