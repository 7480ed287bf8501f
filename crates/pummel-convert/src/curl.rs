//! curl command lines — what "Copy as cURL" in a browser's developer tools gives — read into
//! [`Recorded`] requests.
//!
//! The command arrives either as the arguments after `--` (`pummel convert curl -- curl -H ...
//! URL`: the shell already split it; messages point at "argument N") or as text (one string,
//! or a file of several commands: split by the `shell-words` crate as a POSIX shell would,
//! line continuations and quotes included; messages point at `FILE:LINE:COL`). Several
//! commands follow each other, separated by `;`, `&&` or simply a new `curl`.
//!
//! Understood: the URL (or `--url`), `-X/--request`, `-H/--header`, `-d/--data`,
//! `--data-ascii`, `--data-raw`, `--data-binary`, `--data-urlencode`, `--json`, `-u/--user`,
//! `-b/--cookie`, `-A/--user-agent`, `-e/--referer`, `-G/--get`, `-I/--head`, `--compressed`;
//! options that change only what curl prints or how it connects (`-s`, `-v`, `-o FILE`, `-k`,
//! `-L`, `--http2`, ...) are accepted, with a note where pummel behaves differently. Anything
//! else is refused by name: a plan that silently lost part of a request would mislead.

use base64::Engine as _;
use url::Url;

use crate::ConvertError;
use crate::recorded::Recorded;

/// Options that take a value, long form (without `--`).
const LONG_WITH_VALUE: &[&str] = &[
    "request",
    "header",
    "data",
    "data-ascii",
    "data-raw",
    "data-binary",
    "data-urlencode",
    "json",
    "user",
    "cookie",
    "user-agent",
    "referer",
    "url",
    "output",
    "write-out",
    "max-time",
    "connect-timeout",
    "retry",
    "cacert",
    "resolve",
];

/// Options that take no value and change nothing pummel would send.
const LONG_IGNORED: &[&str] = &[
    "silent",
    "show-error",
    "verbose",
    "include",
    "fail",
    "fail-with-body",
    "no-progress-meter",
    "progress-bar",
    "globoff",
    "http1.1",
    "no-buffer",
];

/// Short options that take a value, and their long names.
const SHORT_WITH_VALUE: &[(char, &str)] = &[
    ('X', "request"),
    ('H', "header"),
    ('d', "data"),
    ('u', "user"),
    ('b', "cookie"),
    ('A', "user-agent"),
    ('e', "referer"),
    ('o', "output"),
    ('w', "write-out"),
    ('m', "max-time"),
];

/// Short options without a value, and their long names.
const SHORT_FLAGS: &[(char, &str)] = &[
    ('G', "get"),
    ('I', "head"),
    ('L', "location"),
    ('k', "insecure"),
    ('s', "silent"),
    ('S', "show-error"),
    ('v', "verbose"),
    ('i', "include"),
    ('f', "fail"),
    ('g', "globoff"),
    ('N', "no-buffer"),
];

/// Where a token came from, for messages.
#[derive(Debug, Clone)]
enum At {
    /// The N-th argument after `--` (1-based).
    Arg(usize),
    /// Line and column in a text (1-based), when found.
    Text { source: String, line: usize, column: usize },
    /// Somewhere in a text.
    Somewhere(String),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Arg(n) => write!(f, "argument {n}"),
            At::Text { source, line, column } => write!(f, "{source}:{line}:{column}"),
            At::Somewhere(source) => write!(f, "{source}"),
        }
    }
}

/// Requests read from curl commands, and what was noted about them.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The requests, in order.
    pub requests: Vec<Recorded>,
    /// Options pummel treats differently from curl, one sentence each.
    pub notes: Vec<String>,
}

/// Reads the command given as arguments (`curl`, then its options and URLs).
pub fn parse_args(args: &[String]) -> Result<Parsed, ConvertError> {
    let tokens = args.iter().enumerate().map(|(i, a)| (a.clone(), At::Arg(i + 1))).collect();
    parse_tokens(tokens)
}

/// Reads one or more commands from shell text; `source` names it in messages (a file name).
pub fn parse_text(text: &str, source: &str) -> Result<Parsed, ConvertError> {
    let text = text.replace("\r\n", "\n");
    let words = shell_words::split(&text)
        .map_err(|e| ConvertError::Input(format!("{source}: not a command line pummel can read: {e}")))?;
    // shell-words gives no positions: find each word where it most likely is, in order, for
    // messages only.
    let mut cursor = 0;
    let mut tokens = Vec::with_capacity(words.len());
    for word in words {
        let found = [word.clone(), format!("'{word}'"), format!("\"{word}\"")]
            .iter()
            .find_map(|form| text[cursor..].find(form.as_str()).map(|at| (cursor + at, form.len())));
        let at = match found {
            Some((offset, len)) if !word.is_empty() => {
                cursor = offset + len;
                let line = text[..offset].matches('\n').count() + 1;
                let column = text[..offset].rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
                At::Text { source: source.to_string(), line, column }
            }
            _ => At::Somewhere(source.to_string()),
        };
        tokens.push((word, at));
    }
    parse_tokens(tokens)
}

fn parse_tokens(tokens: Vec<(String, At)>) -> Result<Parsed, ConvertError> {
    let mut parsed = Parsed::default();
    let mut command: Vec<(String, At)> = Vec::new();
    for (word, at) in tokens {
        let separator = matches!(word.as_str(), ";" | "&&");
        let new_curl = is_curl(&word) && !command.is_empty();
        if separator || new_curl {
            if !command.is_empty() {
                command_requests(std::mem::take(&mut command), &mut parsed)?;
            }
            if separator {
                continue;
            }
        }
        command.push((word, at));
    }
    if !command.is_empty() {
        command_requests(command, &mut parsed)?;
    }
    if parsed.requests.is_empty() {
        return Err(ConvertError::Empty("no curl command with a URL was given".into()));
    }
    parsed.notes.dedup();
    Ok(parsed)
}

/// `curl`, or a path to it.
fn is_curl(word: &str) -> bool {
    word == "curl" || word.ends_with("/curl")
}

/// What one command says, option by option.
#[derive(Debug, Default)]
struct Command {
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Vec<String>,
    json: bool,
    get: bool,
    head: bool,
    user: Option<String>,
    urls: Vec<(String, At)>,
}

fn command_requests(tokens: Vec<(String, At)>, parsed: &mut Parsed) -> Result<(), ConvertError> {
    let mut tokens = tokens.into_iter();
    let Some((first, at)) = tokens.next() else { return Ok(()) };
    if !is_curl(&first) {
        return Err(ConvertError::Input(format!("{at}: expected a curl command, found `{first}`")));
    }
    let mut command = Command::default();
    while let Some((word, at)) = tokens.next() {
        if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                continue;
            }
            let value = if LONG_WITH_VALUE.contains(&long) { Some(value_of(&mut tokens, &word, &at)?) } else { None };
            apply(&mut command, long, value, &at, parsed)?;
        } else if word.len() > 1 && word.starts_with('-') {
            let letters: Vec<char> = word[1..].chars().collect();
            let mut i = 0;
            while i < letters.len() {
                let letter = letters[i];
                if let Some((_, long)) = SHORT_WITH_VALUE.iter().find(|(c, _)| *c == letter) {
                    let attached: String = letters[i + 1..].iter().collect();
                    let value =
                        if attached.is_empty() { value_of(&mut tokens, &format!("-{letter}"), &at)? } else { attached };
                    apply(&mut command, long, Some(value), &at, parsed)?;
                    break;
                }
                match SHORT_FLAGS.iter().find(|(c, _)| *c == letter) {
                    Some((_, long)) => apply(&mut command, long, None, &at, parsed)?,
                    None => return Err(unknown(&format!("-{letter}"), &at)),
                }
                i += 1;
            }
        } else {
            command.urls.push((word, at));
        }
    }
    if command.urls.is_empty() {
        return Err(ConvertError::Input("a curl command has no URL".into()));
    }
    for (url, at) in &command.urls {
        parsed.requests.push(request(&command, url, at)?);
    }
    Ok(())
}

fn value_of(tokens: &mut impl Iterator<Item = (String, At)>, option: &str, at: &At) -> Result<String, ConvertError> {
    tokens.next().map(|(v, _)| v).ok_or_else(|| ConvertError::Input(format!("{at}: `{option}` needs a value")))
}

fn unknown(option: &str, at: &At) -> ConvertError {
    ConvertError::Input(format!(
        "{at}: unknown curl option `{option}`: pummel convert understands the URL, -X, -H, -d, --data-raw, \
         --data-binary, --data-urlencode, --json, -u, -b, -A, -e, -G, -I and --compressed (and ignores -s, -S, -v, \
         -i, -o, -L, -k, ...)"
    ))
}

/// Applies one option (by its long name) to the command.
fn apply(
    command: &mut Command,
    long: &str,
    value: Option<String>,
    at: &At,
    parsed: &mut Parsed,
) -> Result<(), ConvertError> {
    let value = value.unwrap_or_default();
    match long {
        "request" => command.method = Some(value.to_ascii_uppercase()),
        "header" => match value.split_once(':') {
            Some((name, v)) if !name.trim().is_empty() => {
                // `-H 'Name:'` removes a header curl would send: nothing to add.
                if !v.trim().is_empty() {
                    command.headers.push((name.trim().to_string(), v.trim().to_string()));
                }
            }
            _ => return Err(ConvertError::Input(format!("{at}: -H {value:?}: expected 'Name: value'"))),
        },
        "data" | "data-ascii" => command.data.push(data_value(&value, true, at)?),
        "data-binary" => command.data.push(data_value(&value, false, at)?),
        "data-raw" => command.data.push(value),
        "data-urlencode" => command.data.push(urlencode_data(&value, at)?),
        "json" => {
            command.data.push(data_value(&value, false, at)?);
            command.json = true;
        }
        "user" => command.user = Some(value),
        "cookie" => {
            if !value.contains('=') {
                return Err(ConvertError::Input(format!(
                    "{at}: -b {value:?} reads cookies from a file; give them as -b 'name=value; name2=value2'"
                )));
            }
            command.headers.push(("Cookie".into(), value));
        }
        "user-agent" => command.headers.push(("User-Agent".into(), value)),
        "referer" => command.headers.push(("Referer".into(), value)),
        "url" => command.urls.push((value, at.clone())),
        "get" => command.get = true,
        "head" => command.head = true,
        "compressed" => command.headers.push(("Accept-Encoding".into(), "deflate, gzip, br, zstd".into())),
        "location" => parsed.notes.push(
            "-L: pummel does not follow redirects; the plan sends the request as given (add the redirect's target as \
             a request of its own if it matters)"
                .into(),
        ),
        "insecure" => parsed.notes.push("-k: run the plan with --insecure to accept any certificate".into()),
        "http2" | "http2-prior-knowledge" => {
            parsed.notes.push("--http2: set http_version = \"2\" in the plan's [target] to speak HTTP/2".into())
        }
        _ if LONG_IGNORED.contains(&long) || LONG_WITH_VALUE.contains(&long) => {}
        _ => return Err(unknown(&format!("--{long}"), at)),
    }
    Ok(())
}

/// A `-d` value: `@FILE` reads the file (`-d` strips its line breaks, as curl does).
fn data_value(value: &str, strip_newlines: bool, at: &At) -> Result<String, ConvertError> {
    let Some(path) = value.strip_prefix('@') else { return Ok(value.to_string()) };
    if path == "-" {
        return Err(ConvertError::Input(format!("{at}: @- (the body from standard input) cannot be converted")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConvertError::Input(format!("{at}: cannot read the body file {path}: {e}")))?;
    Ok(if strip_newlines { text.replace(['\r', '\n'], "") } else { text })
}

/// `--data-urlencode`: `name=content`, `=content`, `content`, `name@file` or `@file`.
fn urlencode_data(value: &str, at: &At) -> Result<String, ConvertError> {
    if let Some((name, content)) = value.split_once('=') {
        if !name.contains('@') {
            return Ok(if name.is_empty() { encode(content) } else { format!("{name}={}", encode(content)) });
        }
    }
    if let Some((name, path)) = value.split_once('@') {
        let content = data_value(&format!("@{path}"), false, at)?;
        return Ok(if name.is_empty() { encode(&content) } else { format!("{name}={}", encode(&content)) });
    }
    Ok(encode(value))
}

/// Percent-encodes everything but unreserved characters, as curl does.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The request one URL of a command sends.
fn request(command: &Command, url: &str, at: &At) -> Result<Recorded, ConvertError> {
    let with_scheme = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| ConvertError::Input(format!("{at}: bad URL {url:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConvertError::Input(format!("{at}: {url}: only http:// and https:// URLs can be converted")));
    }
    let mut headers = command.headers.clone();
    let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if let Some(user) = &command.user {
        if !has(&headers, "authorization") {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user);
            headers.push(("Authorization".into(), format!("Basic {encoded}")));
        }
    }
    let data = (!command.data.is_empty()).then(|| command.data.join(if command.json { "" } else { "&" }));
    let mut body = None;
    match data {
        Some(data) if command.get => {
            let query = match url.query() {
                Some(q) if !q.is_empty() => format!("{q}&{data}"),
                _ => data,
            };
            url.set_query(Some(&query));
        }
        Some(data) => {
            if command.json {
                if !has(&headers, "content-type") {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                if !has(&headers, "accept") {
                    headers.push(("Accept".into(), "application/json".into()));
                }
            } else if !has(&headers, "content-type") {
                headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            }
            body = Some(data);
        }
        None => {}
    }
    let method = match (&command.method, command.head, &body) {
        (Some(method), _, _) => method.clone(),
        (None, true, _) => "HEAD".to_string(),
        (None, false, Some(_)) => "POST".to_string(),
        (None, false, None) => "GET".to_string(),
    };
    Ok(Recorded { method, url, headers, body, started_ms: None, took_ms: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Parsed {
        let args: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        parse_args(&args).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_copied_browser_command() {
        let text = r#"curl 'https://api.example.com/v1/items?page=2' \
  -H 'accept: application/json' \
  -H 'authorization: Bearer abc.def' \
  -b 'sid=s3cr3t; theme=dark' \
  --data-raw '{"name":"x"}' \
  --compressed"#;
        let parsed = parse_text(text, "cmd.txt").expect("parses");
        assert_eq!(parsed.requests.len(), 1);
        let r = &parsed.requests[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.url.as_str(), "https://api.example.com/v1/items?page=2");
        assert_eq!(r.header("authorization"), Some("Bearer abc.def"));
        assert_eq!(r.header("cookie"), Some("sid=s3cr3t; theme=dark"));
        assert_eq!(r.header("accept-encoding"), Some("deflate, gzip, br, zstd"));
        assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.body.as_deref(), Some(r#"{"name":"x"}"#));
    }

    #[test]
    fn methods_data_and_get() {
        let r = &args(&["curl", "-X", "put", "http://h/a", "-d", "a=1", "-d", "b=2"]).requests[0];
        assert_eq!((r.method.as_str(), r.body.as_deref()), ("PUT", Some("a=1&b=2")));
        let r = &args(&["curl", "-G", "http://h/s?x=1", "-d", "q=a", "--data-urlencode", "w=b c&d"]).requests[0];
        assert_eq!(
            (r.method.as_str(), r.url.as_str(), r.body.as_deref()),
            ("GET", "http://h/s?x=1&q=a&w=b%20c%26d", None)
        );
        let r = &args(&["curl", "--json", r#"{"a":1}"#, "h:8080/j"]).requests[0];
        assert_eq!((r.method.as_str(), r.url.as_str()), ("POST", "http://h:8080/j"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("accept"), Some("application/json"));
        let r = &args(&["curl", "-sSLI", "http://h/"]).requests[0];
        assert_eq!(r.method, "HEAD");
        let r = &args(&["curl", "-XDELETE", "-HX-A:1", "http://h/"]).requests[0];
        assert_eq!((r.method.as_str(), r.header("x-a")), ("DELETE", Some("1")));
        let r = &args(&["curl", "-u", "ann:pw", "-A", "agent/1", "http://h/"]).requests[0];
        assert_eq!(r.header("authorization"), Some("Basic YW5uOnB3"));
        assert_eq!(r.header("user-agent"), Some("agent/1"));
    }

    #[test]
    fn several_commands_in_a_file() {
        let text = "# first\ncurl http://h/a ;\ncurl 'http://h/b' -X POST\ncurl http://h/c && curl http://h/d";
        let parsed = parse_text(text, "f").expect("parses");
        let urls: Vec<&str> = parsed.requests.iter().map(|r| r.url.path()).collect();
        assert_eq!(urls, ["/a", "/b", "/c", "/d"]);
        assert_eq!(parsed.requests[1].method, "POST");
    }

    #[test]
    fn unknown_options_are_refused_where_they_are() {
        let err = parse_text("curl http://h/ \\\n  -H 'a: b' --proxy http://p:1", "cmds.sh").expect_err("refused");
        assert!(err.to_string().starts_with("cmds.sh:2:13: unknown curl option `--proxy`"), "{err}");
        let err = parse_args(&["curl".into(), "-Z".into(), "http://h/".into()]).expect_err("refused");
        assert!(err.to_string().starts_with("argument 2: unknown curl option `-Z`"), "{err}");
        let err = parse_args(&["curl".into(), "-H".into()]).expect_err("refused");
        assert!(err.to_string().contains("`-H` needs a value"), "{err}");
        let err = parse_args(&["wget".into(), "http://h/".into()]).expect_err("refused");
        assert!(err.to_string().contains("expected a curl command, found `wget`"), "{err}");
        let err =
            parse_args(&["curl".into(), "-b".into(), "cookies.txt".into(), "http://h/".into()]).expect_err("file");
        assert!(err.to_string().contains("reads cookies from a file"), "{err}");
        let err = parse_text("curl 'http://h/", "q").expect_err("unterminated quote");
        assert!(err.to_string().starts_with("q: not a command line"), "{err}");
        let err = parse_args(&["curl".into(), "-s".into()]).expect_err("no URL");
        assert!(err.to_string().contains("no URL"), "{err}");
    }

    #[test]
    fn notes_for_what_pummel_does_differently() {
        let parsed = args(&["curl", "-kL", "http://h/"]);
        assert_eq!(parsed.notes.len(), 2, "{:?}", parsed.notes);
        assert!(parsed.notes[0].starts_with("-k"));
        assert!(parsed.notes[1].starts_with("-L"));
    }
}
