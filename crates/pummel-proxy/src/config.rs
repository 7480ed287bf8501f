//! The proxy's TOML file: proxies and their toxics in the shape of toxiproxy's JSON, read with
//! every mistake reported at once, each at its byte span (the binary renders them as
//! `file:line:col` with the source line and a caret, as plan files are).
//!
//! ```toml
//! api = "127.0.0.1:8474"            # optional: serve the toxiproxy API here
//!
//! [proxy.redis]
//! listen = "127.0.0.1:26379"        # or "26379": loopback
//! upstream = "127.0.0.1:6379"
//! enabled = true                    # false: starts down
//! toxics = [
//!   { type = "latency", attributes = { latency = 20, jitter = 5 } },   # downstream by default
//!   { type = "bandwidth", stream = "upstream", toxicity = 0.5, attributes = { rate = 100 } },
//! ]
//! ```
//!
//! The tree is walked by hand (not through serde) so that each unknown key, wrong type and bad
//! value gets its own diagnostic and the walk goes on.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::collection::ProxySpec;
use crate::quick::address;
use crate::toxic::{Stream, TYPES, Toxic, ToxicKind};

/// One mistake in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Bytes of the file it is about.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// The expected form.
    pub help: Option<String>,
}

/// A proxy file, read and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyFile {
    /// `api`: where to serve the toxiproxy API, if anywhere.
    pub api: Option<String>,
    /// The proxies, in file order.
    pub proxies: Vec<ProxySpec>,
}

/// Reads a proxy file; `Err` holds every mistake found, in file order.
pub fn parse(source: &str) -> Result<ProxyFile, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let (root, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        for error in errors {
            diags.push(Diagnostic {
                span: error.span().unwrap_or(0..0),
                message: error.message().to_string(),
                help: None,
            });
        }
        return Err(diags);
    }
    let mut file = ProxyFile::default();
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "api" => file.api = string(value, &mut diags).and_then(|a| check_address(&a, value, &mut diags)),
            "proxy" => {
                let Some(table) = table(value, "a table of proxies: [proxy.NAME]", &mut diags) else { continue };
                for (name, proxy) in table.iter() {
                    if let Some(spec) = read_proxy(name, proxy, &mut diags) {
                        file.proxies.push(spec);
                    }
                }
            }
            other => diags.push(unknown(key, other, &["api", "proxy"])),
        }
    }
    if diags.is_empty() {
        Ok(file)
    } else {
        diags.sort_by_key(|d| (d.span.start, d.span.end));
        Err(diags)
    }
}

fn read_proxy(
    name: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProxySpec> {
    let table = table(value, "a table: [proxy.NAME] with listen and upstream", diags)?;
    let mut spec = ProxySpec {
        name: name.get_ref().to_string(),
        listen: String::new(),
        upstream: String::new(),
        enabled: true,
        toxics: Vec::new(),
    };
    let (mut listen, mut upstream) = (false, false);
    let before = diags.len();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "listen" => {
                listen = true;
                if let Some(text) = string(value, diags).and_then(|a| check_address(&a, value, diags)) {
                    spec.listen = text;
                }
            }
            "upstream" => {
                upstream = true;
                if let Some(text) = string(value, diags).and_then(|a| check_address(&a, value, diags)) {
                    spec.upstream = text;
                }
            }
            "enabled" => match value.get_ref() {
                DeValue::Boolean(b) => spec.enabled = *b,
                other => diags.push(wrong_type(value, other, "true or false")),
            },
            "toxics" => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        if let Some(toxic) = read_toxic(item, diags) {
                            if let Some(first) = spec.toxics.iter().find(|t| t.name == toxic.name) {
                                diags.push(
                                    Diagnostic::at(item.span(), format!("a second toxic named {:?}", first.name))
                                        .help("toxic names are unique within a proxy: give this one a name = \"...\""),
                                );
                            } else {
                                spec.toxics.push(toxic);
                            }
                        }
                    }
                }
                other => {
                    diags.push(wrong_type(value, other, "a list of toxics: toxics = [ { type = \"latency\", ... } ]"))
                }
            },
            other => diags.push(unknown(key, other, &["listen", "upstream", "enabled", "toxics"])),
        }
    }
    let missing = |what: &str| {
        Diagnostic::at(name.span(), format!("proxy {:?} has no {what}", name.get_ref()))
            .help(format!("add {what} = \"127.0.0.1:PORT\""))
    };
    if !listen {
        diags.push(missing("listen"));
    }
    if !upstream {
        diags.push(missing("upstream"));
    }
    (diags.len() == before).then_some(spec)
}

fn read_toxic(value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Option<Toxic> {
    let table = table(value, "a toxic: { type = \"latency\", attributes = { latency = 20 } }", diags)?;
    let before = diags.len();
    let mut kind: Option<ToxicKind> = None;
    let (mut name, mut stream, mut toxicity) = (None, Stream::Downstream, 1.0);
    let mut attributes = None;
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "type" => {
                if let Some(text) = string(value, diags) {
                    match ToxicKind::with_defaults(&text) {
                        Some(k) => kind = Some(k),
                        None => diags.push(
                            Diagnostic::at(value.span(), format!("unknown toxic type {text:?}"))
                                .help(format!("one of {}", TYPES.join(", "))),
                        ),
                    }
                }
            }
            "name" => name = string(value, diags),
            "stream" => {
                if let Some(text) = string(value, diags) {
                    match Stream::parse(&text) {
                        Some(s) => stream = s,
                        None => diags.push(
                            Diagnostic::at(value.span(), format!("unknown stream {text:?}"))
                                .help("upstream (client to server) or downstream (server to client)"),
                        ),
                    }
                }
            }
            "toxicity" => match number(value) {
                Some(t) if (0.0..=1.0).contains(&t) => toxicity = t,
                Some(t) => diags.push(
                    Diagnostic::at(value.span(), format!("toxicity {t} is outside 0..1"))
                        .help("the chance a connection gets the toxic: 1 = all, 0.25 = one in four"),
                ),
                None => diags.push(wrong_type(value, value.get_ref(), "a number from 0 to 1")),
            },
            "attributes" => attributes = Some(value),
            other => diags.push(unknown(key, other, &["type", "name", "stream", "toxicity", "attributes"])),
        }
    }
    let Some(mut kind) = kind else {
        if !table.iter().any(|(k, _)| k.get_ref() == "type") {
            diags.push(
                Diagnostic::at(value.span(), "a toxic without a type")
                    .help(format!("type = one of {}", TYPES.join(", "))),
            );
        }
        return None;
    };
    if let Some(attributes) = attributes {
        if let Some(table) = self::table(attributes, "a table of attributes: { latency = 20 }", diags) {
            for (key, value) in table.iter() {
                let attr = key.get_ref().as_ref();
                let Some((_, unit)) = kind.attributes().iter().find(|(n, _)| *n == attr) else {
                    let known: Vec<&str> = kind.attributes().iter().map(|(n, _)| *n).collect();
                    diags.push(
                        Diagnostic::at(key.span(), format!("{} has no attribute {attr:?}", kind.type_name())).help(
                            if known.is_empty() {
                                "it has none".to_string()
                            } else {
                                format!("it has {}", known.join(", "))
                            },
                        ),
                    );
                    continue;
                };
                match value.get_ref().as_integer().and_then(|i| u64::from_str_radix(i.as_str(), i.radix()).ok()) {
                    Some(n) => {
                        let _ = kind.set(attr, n);
                    }
                    None => diags.push(
                        Diagnostic::at(value.span(), format!("{attr} must be a whole number of {unit}, 0 or more"))
                            .help(format!("{attr} = 20 (in {unit}, as toxiproxy)")),
                    ),
                }
            }
        }
    }
    if let Err(problem) = kind.validate() {
        diags.push(Diagnostic::at(value.span(), problem));
    }
    let mut toxic = Toxic::new(kind, stream);
    if let Some(name) = name {
        toxic.name = name;
    }
    toxic.toxicity = toxicity;
    (diags.len() == before).then_some(toxic)
}

impl Diagnostic {
    fn at(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { span, message: message.into(), help: None }
    }

    fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

fn unknown(key: &Spanned<std::borrow::Cow<'_, str>>, name: &str, known: &[&str]) -> Diagnostic {
    Diagnostic::at(key.span(), format!("unknown key {name:?}")).help(format!("expected one of {}", known.join(", ")))
}

fn wrong_type(value: &Spanned<DeValue<'_>>, found: &DeValue<'_>, expected: &str) -> Diagnostic {
    Diagnostic::at(value.span(), format!("expected {expected}, found {}", found.type_str()))
}

fn string(value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match value.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            diags.push(wrong_type(value, other, "a string"));
            None
        }
    }
}

fn number(value: &Spanned<DeValue<'_>>) -> Option<f64> {
    match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

fn table<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    expected: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            diags.push(wrong_type(value, other, expected));
            None
        }
    }
}

/// An address as the file gives it, completed (`26379` → `127.0.0.1:26379`).
fn check_address(text: &str, value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match address(text) {
        Ok(addr) => Some(addr),
        Err(problem) => {
            diags.push(Diagnostic::at(value.span(), problem).help("HOST:PORT, or a port alone for 127.0.0.1"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proxies_and_toxics() {
        let text = r#"
api = "8474"
[proxy.redis]
listen = "26379"
upstream = "127.0.0.1:6379"
toxics = [
  { type = "latency", attributes = { latency = 20, jitter = 5 } },
  { type = "bandwidth", stream = "upstream", toxicity = 0.5, attributes = { rate = 100 } },
]
[proxy.web]
listen = "127.0.0.1:0"
upstream = "localhost:8080"
enabled = false
"#;
        let file = parse(text).unwrap();
        assert_eq!(file.api.as_deref(), Some("127.0.0.1:8474"));
        assert_eq!(file.proxies.len(), 2);
        let redis = &file.proxies[0];
        assert_eq!(redis.listen, "127.0.0.1:26379");
        assert_eq!(redis.toxics[0].name, "latency_downstream");
        assert_eq!(redis.toxics[0].kind, ToxicKind::Latency { latency: 20, jitter: 5 });
        assert_eq!(redis.toxics[1].stream, Stream::Upstream);
        assert_eq!(redis.toxics[1].toxicity, 0.5);
        assert!(!file.proxies[1].enabled);
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let text = r#"
apii = 1
[proxy.redis]
listen = "127.0.0.1:notaport"
upstream = 6379
toxics = [
  { type = "lag" },
  { type = "latency", attributes = { latency = -1, spike = 3 } },
  { type = "latency", stream = "sideways", toxicity = 2 },
  { type = "slicer", attributes = { average_size = 0 } },
]
[proxy.web]
upstream = "127.0.0.1:80"
"#;
        let diags = parse(text).unwrap_err();
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        let expect = [
            "unknown key \"apii\"",
            "not a port",
            "expected a string, found integer",
            "unknown toxic type \"lag\"",
            "latency must be a whole number of milliseconds",
            "latency has no attribute \"spike\"",
            "unknown stream \"sideways\"",
            "toxicity 2 is outside 0..1",
            "slicer needs average_size",
            "proxy \"web\" has no listen",
        ];
        for needle in expect {
            assert!(messages.iter().any(|m| m.contains(needle)), "no {needle:?} in {messages:#?}");
        }
        // In file order, each at its own place.
        assert!(diags.windows(2).all(|w| w[0].span.start <= w[1].span.start));
        let apii = &diags[0];
        assert_eq!(&text[apii.span.clone()], "apii");
    }

    #[test]
    fn syntax_errors_are_reported() {
        let diags = parse("[proxy.redis\nlisten = 1").unwrap_err();
        assert!(!diags.is_empty());
    }
}
