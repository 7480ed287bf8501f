//! The whole conversion: a recording with secrets, other hosts, static files and pauses
//! becomes a plan that the plan loader (`pummel check`'s) accepts, holding no secret.

use super::*;

const SECRETS: &[&str] = &[
    "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig",
    "sess-9f8e7d6c5b4a",
    "qs-token-31415926",
    "hunter2-correct-horse",
    "ak_live_27182818",
];

fn har() -> String {
    format!(
        r#"{{"log": {{"version": "1.2", "entries": [
  {{"startedDateTime": "2024-05-10T12:00:00.000Z", "time": 10,
    "request": {{"method": "GET", "url": "http://127.0.0.1:8090/app/index.html",
      "headers": [{{"name": "Host", "value": "127.0.0.1:8090"}}, {{"name": "Accept", "value": "text/html"}}]}}}},
  {{"startedDateTime": "2024-05-10T12:00:00.020Z", "time": 10,
    "request": {{"method": "GET", "url": "http://127.0.0.1:8090/static/app.js", "headers": []}}}},
  {{"startedDateTime": "2024-05-10T12:00:00.025Z", "time": 10,
    "request": {{"method": "GET", "url": "https://fonts.example.com/font.woff2", "headers": []}}}},
  {{"startedDateTime": "2024-05-10T12:00:00.040Z", "time": 15,
    "request": {{"method": "GET", "url": "http://127.0.0.1:8090/api/items?token={t}&page=2",
      "headers": [
        {{"name": ":authority", "value": "127.0.0.1:8090"}},
        {{"name": "authorization", "value": "Bearer {a}"}},
        {{"name": "cookie", "value": "sid={c}"}},
        {{"name": "x-api-key", "value": "{k}"}},
        {{"name": "sec-fetch-mode", "value": "cors"}},
        {{"name": "accept-encoding", "value": "gzip, br"}},
        {{"name": "referer", "value": "http://127.0.0.1:8090/app/index.html?token={t}"}}
      ]}}}},
  {{"startedDateTime": "2024-05-10T12:00:01.555Z", "time": 20,
    "request": {{"method": "POST", "url": "http://127.0.0.1:8090/api/items/42",
      "headers": [{{"name": "content-type", "value": "application/json"}}, {{"name": "cookie", "value": "sid={c}"}}],
      "postData": {{"mimeType": "application/json",
        "text": "{{\"name\":\"{{{{ not a template }}}}\",\"password\":\"{p}\"}}"}}}}}},
  {{"startedDateTime": "2024-05-10T12:00:01.580Z", "time": 5,
    "request": {{"method": "DELETE", "url": "http://127.0.0.1:8090/api/items/6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
      "headers": []}}}}
]}}}}"#,
        a = SECRETS[0],
        c = SECRETS[1],
        t = SECRETS[2],
        p = SECRETS[3],
        k = SECRETS[4],
    )
}

fn options() -> Options {
    Options {
        exclude: vec!["static/*".into(), "app/*".into()],
        source: "recording.har".into(),
        command: "pummel convert har".into(),
        ..Options::default()
    }
}

#[test]
fn a_recording_becomes_a_plan_the_loader_accepts_without_its_secrets() {
    let parsed = har::parse(&har(), "recording.har").expect("a HAR");
    let converted = convert(parsed.requests, &options()).expect("converts");
    let text = &converted.text;
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} is in the plan:\n{text}");
    }
    let spec = pummel_plan::parse("plan.toml", text, &pummel_plan::Options::default())
        .unwrap_or_else(|report| panic!("{report}\n{text}"));
    let requests: Vec<(&str, &str)> = spec.requests().map(|r| (r.method.as_str(), r.name.as_str())).collect();
    assert_eq!(
        requests,
        [("GET", "GET /api/items"), ("POST", "POST /api/items/:id"), ("DELETE", "DELETE /api/items/:id")]
    );
    assert_eq!(converted.requests, 3);
    // 1,555 - (40 + 15) = 1,500 ms between the first and second request; 5 ms (< 100) later none.
    assert_eq!(text.matches("think = ").count(), 1, "{text}");
    assert!(text.contains("think = \"1500ms\""), "{text}");
    let names: Vec<&str> = converted.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["AUTHORIZATION", "COOKIE", "X_API_KEY", "TOKEN", "PASSWORD"]);
    for name in &names {
        assert!(text.contains(&format!("#   {name} ")), "{name} is listed in the comment:\n{text}");
    }
    // The token in the Referer is the same variable as the one in the query string.
    assert!(
        text.contains(r#"request.headers.referer = 'http://127.0.0.1:8090/app/index.html?token={{ env("TOKEN") }}'"#)
    );
    for dropped in ["Host", ":authority", "sec-fetch-mode", "accept-encoding"] {
        assert!(!text.contains(&format!("headers.{dropped} ")), "{dropped}:\n{text}");
    }
    assert!(text.contains(r#"{{ '{{' }} not a template }}"#), "recorded braces are escaped:\n{text}");
    assert_eq!(converted.warnings.len(), 3, "{:?}", converted.warnings);
    assert!(converted.warnings[0].contains("https://fonts.example.com (1)"));
    assert!(converted.warnings[1].contains("2 requests matched --exclude"));
    assert!(converted.warnings[2].contains("accept-encoding"));
}

#[test]
fn no_think_writes_no_pause() {
    let parsed = har::parse(&har(), "recording.har").expect("a HAR");
    let options = Options { no_think: true, ..options() };
    let converted = convert(parsed.requests, &options).expect("converts");
    assert!(!converted.text.contains("think"), "{}", converted.text);
}

#[test]
fn a_curl_command_becomes_a_one_request_plan() {
    let parsed = curl::parse_text(
        "curl -X POST 'http://127.0.0.1:9/api/login?api_key=key-000111222' -H 'Content-Type: application/json' \
         --data-raw '{\"user\":\"ann\",\"password\":\"pw-123456789\"}'",
        "command",
    )
    .expect("a command");
    let options =
        Options { source: "a curl command".into(), command: "pummel convert curl".into(), ..Options::default() };
    let converted = convert(parsed.requests, &options).expect("converts");
    assert!(!converted.text.contains("key-000111222") && !converted.text.contains("pw-123456789"));
    let spec = pummel_plan::parse("plan.toml", &converted.text, &pummel_plan::Options::default())
        .unwrap_or_else(|report| panic!("{report}\n{}", converted.text));
    assert_eq!(spec.requests().count(), 1);
    assert!(
        converted.text.contains(r#"request.path = '/api/login?api_key={{ env("API_KEY") }}'"#),
        "{}",
        converted.text
    );
}
