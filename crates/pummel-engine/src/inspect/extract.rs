//! Taking values out of responses into a virtual user's variables: `token` from `$.token`,
//! a session id from a header, an id from the body by regex.

use super::jsonpath::JsonPath;
use super::{JsonBody, ResponseView, json_to_text, lossy, regex_capture};

/// Where an extracted value comes from.
#[derive(Debug, Clone)]
pub enum ExtractSource {
    /// The first value a JSONPath selects in the JSON body (strings unquoted, see
    /// [`json_to_text`]).
    Json(JsonPath),
    /// A header's value (first of that name, case-insensitive).
    Header(String),
    /// A regex over a header's value: its first capture group if it has one, else the match.
    HeaderRegex(String, regex::Regex),
    /// A regex over the body: its first capture group if it has one, else the match.
    BodyRegex(regex::Regex),
}

/// One extraction: where from, into which variable, and what to use when nothing is found.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// The variable set from the value.
    pub variable: String,
    /// Where the value comes from.
    pub source: ExtractSource,
    /// The value when the source yields nothing (`None`: the extraction fails).
    pub default: Option<String>,
}

impl Extractor {
    /// The value in `response`, else the default; `None` when neither exists.
    pub fn extract(&self, response: &ResponseView, json: &JsonBody) -> Option<String> {
        let found = match &self.source {
            ExtractSource::Json(path) => json.value().and_then(|v| path.first(v)).map(json_to_text),
            ExtractSource::Header(name) => response.header(name).map(|v| lossy(v).into_owned()),
            ExtractSource::HeaderRegex(name, regex) => {
                response.header(name).and_then(|v| regex_capture(regex, &lossy(v)))
            }
            ExtractSource::BodyRegex(regex) => regex_capture(regex, &lossy(response.body)),
        };
        found.or_else(|| self.default.clone())
    }

    /// The value in a WebSocket text message (whose JSON form is `json`), else the default.
    /// Only JSON and body-regex sources apply to messages; others yield `None`.
    pub fn extract_text(&self, message: &str, json: &JsonBody) -> Option<String> {
        let found = match &self.source {
            ExtractSource::Json(path) => json.value().and_then(|v| path.first(v)).map(json_to_text),
            ExtractSource::BodyRegex(regex) => regex_capture(regex, message),
            ExtractSource::Header(_) | ExtractSource::HeaderRegex(..) => return None,
        };
        found.or_else(|| self.default.clone())
    }

    /// True when the extraction reads the response body.
    pub fn needs_body(&self) -> bool {
        matches!(self.source, ExtractSource::Json(_) | ExtractSource::BodyRegex(_))
    }

    /// True when the extraction reads the response headers.
    pub fn needs_headers(&self) -> bool {
        matches!(self.source, ExtractSource::Header(_) | ExtractSource::HeaderRegex(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HEADERS: &[(&[u8], &[u8])] = &[(b"X-Session", b"s-123"), (b"Location", b"/items/987?x=1")];

    fn view(body: &[u8]) -> ResponseView<'_> {
        ResponseView { status: 201, headers: HEADERS, body, elapsed: Duration::from_millis(3) }
    }

    fn extractor(source: ExtractSource, default: Option<&str>) -> Extractor {
        Extractor { variable: "v".to_owned(), source, default: default.map(str::to_owned) }
    }

    fn json(path: &str) -> ExtractSource {
        ExtractSource::Json(JsonPath::compile(path).unwrap())
    }

    fn run(e: &Extractor, body: &[u8]) -> Option<String> {
        e.extract(&view(body), &JsonBody::new(body))
    }

    #[test]
    fn json_source() {
        let body = br#"{"token": "abc", "id": 42, "user": {"ok": true}, "list": [1, 2]}"#;
        assert_eq!(run(&extractor(json("$.token"), None), body).as_deref(), Some("abc"));
        assert_eq!(run(&extractor(json("$.id"), None), body).as_deref(), Some("42"));
        assert_eq!(run(&extractor(json("$.user"), None), body).as_deref(), Some(r#"{"ok":true}"#));
        assert_eq!(run(&extractor(json("$.list[1]"), None), body).as_deref(), Some("2"));
        assert_eq!(run(&extractor(json("$.missing"), None), body), None);
        assert_eq!(run(&extractor(json("$.missing"), Some("dflt")), body).as_deref(), Some("dflt"));
    }

    #[test]
    fn json_source_on_invalid_body_uses_the_default() {
        assert_eq!(run(&extractor(json("$.token"), None), b"<html>"), None);
        assert_eq!(run(&extractor(json("$.token"), Some("d")), b"<html>").as_deref(), Some("d"));
    }

    #[test]
    fn header_sources() {
        let e = extractor(ExtractSource::Header("x-session".to_owned()), None);
        assert_eq!(run(&e, b"").as_deref(), Some("s-123"));
        let e = extractor(ExtractSource::Header("x-missing".to_owned()), Some("none"));
        assert_eq!(run(&e, b"").as_deref(), Some("none"));
        let re = regex::Regex::new(r"/items/(\d+)").unwrap();
        let e = extractor(ExtractSource::HeaderRegex("location".to_owned(), re.clone()), None);
        assert_eq!(run(&e, b"").as_deref(), Some("987"));
        let e = extractor(ExtractSource::HeaderRegex("x-missing".to_owned(), re), None);
        assert_eq!(run(&e, b""), None);
        let whole = regex::Regex::new(r"s-\d").unwrap();
        let e = extractor(ExtractSource::HeaderRegex("X-Session".to_owned(), whole), None);
        assert_eq!(run(&e, b"").as_deref(), Some("s-1"));
    }

    #[test]
    fn body_regex_source() {
        let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        let e = extractor(ExtractSource::BodyRegex(re), None);
        assert_eq!(run(&e, br#"<input name="csrf" value="t0k3n">"#).as_deref(), Some("t0k3n"));
        assert_eq!(run(&e, b"<p>nothing</p>"), None);
        let e = extractor(ExtractSource::BodyRegex(regex::Regex::new(r"\d{3}").unwrap()), None);
        assert_eq!(run(&e, b"\xff\xfe id 12345").as_deref(), Some("123"), "invalid UTF-8 is tolerated");
    }

    #[test]
    fn what_it_needs() {
        let header = extractor(ExtractSource::Header("a".to_owned()), None);
        assert!(header.needs_headers() && !header.needs_body());
        let body = extractor(json("$.a"), None);
        assert!(body.needs_body() && !body.needs_headers());
        let re = extractor(ExtractSource::BodyRegex(regex::Regex::new("a").unwrap()), None);
        assert!(re.needs_body() && !re.needs_headers());
    }

    #[test]
    fn text_messages() {
        let message = r#"{"jsonrpc": "2.0", "id": 5, "result": {"sub": "x1"}}"#;
        let json_body = JsonBody::new(message.as_bytes());
        assert_eq!(extractor(json("$.result.sub"), None).extract_text(message, &json_body).as_deref(), Some("x1"));
        let re = extractor(ExtractSource::BodyRegex(regex::Regex::new(r#""id": (\d+)"#).unwrap()), None);
        assert_eq!(re.extract_text(message, &json_body).as_deref(), Some("5"));
        let header = extractor(ExtractSource::Header("a".to_owned()), Some("d"));
        assert_eq!(header.extract_text(message, &json_body), None);
        let missing = extractor(json("$.nope"), Some("d"));
        assert_eq!(missing.extract_text("not json", &JsonBody::new(b"not json")).as_deref(), Some("d"));
    }
}
