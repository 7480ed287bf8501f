//! Templates in plan files: request paths, header values, bodies and WebSocket messages.
//!
//! A plan writes `/items/{{ random_int(0, 9999999) }}` or `Bearer {{ token }}`; the text is
//! compiled once, when the plan is validated, into a [`Template`] and rendered per request
//! against the virtual user's [`Vars`]. Text without `{{`, `{%` or `{#` is "static": it is
//! copied as is and never touches minijinja, so plain plans pay nothing.
//!
//! Rendering is built for the hot path. Templates made only of text, `{{ name }}`,
//! `{{ feeder.column }}` and plan-function calls with literal arguments (the usual shapes) are
//! rendered by a small interpreter with minijinja's exact output, in tens of nanoseconds.
//! Everything else goes through minijinja: every template holds its own cheap clone of one
//! shared environment (functions registered once), and a user's variables are handed to it as
//! a single [`Object`] behind an `Arc`, so a render builds no map and copies no variables.
//! Undefined variables are errors ([`UndefinedBehavior::Strict`]), so a typo in a plan fails
//! loudly instead of sending empty values.
//!
//! One file over 600 lines: about 600 lines of code (the fast path and minijinja behind one type); the rest is its tests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

use crate::flow::feeder::Row;
use crate::flow::seed;

/// Names every template may read without declaring them: the virtual user's number and its
/// iteration count.
pub const BUILTIN_VARIABLES: &[&str] = &["user", "iteration"];

/// Functions templates may call; excluded from [`Template::variables`].
pub const FUNCTIONS: &[&str] = &["random_int", "uuid", "now_ms", "env", "random_string"];

/// Longest string `random_string(n)` makes, so a typo cannot allocate gigabytes per request.
pub const MAX_RANDOM_STRING: usize = 1 << 20;

/// The name each template is stored under in its own environment.
const NAME: &str = "template";

/// A compiled template: compile once, render per request. Cheap to clone.
#[derive(Clone)]
pub struct Template {
    inner: Arc<Compiled>,
}

/// What [`Template`] shares between its clones.
struct Compiled {
    /// The source text.
    text: String,
    /// An environment holding only this template; `None` for static text.
    env: Option<Environment<'static>>,
    /// Top-level variables read, sorted (see [`Template::variables`]).
    variables: Vec<String>,
    /// The template as literal text and simple expressions, when it is that simple: rendered
    /// without minijinja (see [`fast`]). `None`: always rendered by minijinja.
    fast: Option<Vec<fast::Piece>>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template").field("text", &self.inner.text).field("static", &self.is_static()).finish()
    }
}

impl PartialEq for Template {
    /// Two templates are equal when their sources are.
    fn eq(&self, other: &Self) -> bool {
        self.inner.text == other.inner.text
    }
}

/// A template that does not compile, with where in its text the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// What is wrong, without position.
    pub message: String,
    /// Byte offset into the template text of the error (0 when unknown).
    pub offset: usize,
}

/// A render that failed: an undefined variable, an unset environment variable, a bad argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

impl Template {
    /// `text` as it is, never read as a template (a quick run's URL path and headers).
    pub fn literal(text: &str) -> Template {
        Template { inner: Arc::new(Compiled { text: text.to_owned(), env: None, variables: Vec::new(), fast: None }) }
    }

    /// Compiles `text`. Text without `{{`, `{%` or `{#` is static and skips minijinja entirely.
    pub fn compile(text: &str) -> Result<Template, TemplateError> {
        if !has_markup(text) {
            let inner = Compiled { text: text.to_owned(), env: None, variables: Vec::new(), fast: None };
            return Ok(Template { inner: Arc::new(inner) });
        }
        let mut env = base_environment().clone();
        env.add_template_owned(NAME, text.to_owned()).map_err(|err| template_error(text, &err))?;
        let variables = {
            let template = env.get_template(NAME).map_err(|err| template_error(text, &err))?;
            let mut names: Vec<String> =
                template.undeclared_variables(false).into_iter().filter(|n| !is_environment_global(n)).collect();
            names.sort();
            names
        };
        let fast = fast::parse(text);
        Ok(Template { inner: Arc::new(Compiled { text: text.to_owned(), env: Some(env), variables, fast }) })
    }

    /// True when the text holds no template markup and renders to itself.
    pub fn is_static(&self) -> bool {
        self.inner.env.is_none()
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// Top-level names the template reads (`["token", "users"]` for `{{ token }} {{ users.name }}`),
    /// sorted and without duplicates; functions are left out, built-ins ([`BUILTIN_VARIABLES`]) are not.
    pub fn variables(&self) -> Vec<String> {
        self.inner.variables.clone()
    }

    /// Renders against `vars`, appending to `out`. On error `out` is left as it was.
    pub fn render(&self, vars: &Vars, out: &mut String) -> Result<(), RenderError> {
        let Some(env) = &self.inner.env else {
            out.push_str(&self.inner.text);
            return Ok(());
        };
        if let Some(pieces) = &self.inner.fast {
            let before = out.len();
            if fast::render(&self.inner.text, pieces, &vars.state, out).is_some() {
                return Ok(());
            }
            // Anything unusual (an undefined name, a shadowed function, a bad argument) is
            // left to minijinja, which also words the error.
            out.truncate(before);
        }
        let template = env.get_template(NAME).map_err(|err| self.render_error(&err, vars))?;
        let context = Value::from_dyn_object(vars.state.clone());
        let rendered = template.render(context).map_err(|err| self.render_error(&err, vars))?;
        if out.is_empty() {
            *out = rendered;
        } else {
            out.push_str(&rendered);
        }
        Ok(())
    }

    /// A render error worded for plan authors: the undefined variable's name, or the failing
    /// expression, rather than minijinja's bare "undefined value".
    fn render_error(&self, err: &minijinja::Error, vars: &Vars) -> RenderError {
        if err.kind() == ErrorKind::UndefinedError {
            let missing = self.inner.variables.iter().find(|name| vars.state.lookup(name).is_none());
            if let Some(name) = missing {
                return RenderError(format!("undefined variable `{name}`"));
            }
        }
        let mut message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        if let Some(expr) = err.range().and_then(|range| self.inner.text.get(range)) {
            message.push_str(&format!(" (in `{expr}`)"));
        }
        RenderError(message)
    }

    /// Renders against `vars` into a new string.
    pub fn render_to_string(&self, vars: &Vars) -> Result<String, RenderError> {
        let mut out = String::new();
        self.render(vars, &mut out)?;
        Ok(out)
    }
}

/// Renders templates made only of literal text and `{{ name }}`, `{{ name.attr }}` or calls
/// of the plan functions with literal arguments, without minijinja: the common shapes
/// (`/items/{{ random_int(0, 9999999) }}`, `Bearer {{ token }}`) cost tens of nanoseconds
/// instead of hundreds. Output is identical to minijinja's (values are written with the same
/// `Display`); anything else, including every error, goes to minijinja.
mod fast {
    use std::fmt::Write;
    use std::ops::Range;
    use std::sync::Arc;

    use minijinja::value::Value;

    use super::{FUNCTIONS, VarsState};

    /// One part of a simple template.
    #[derive(Debug)]
    pub(super) enum Piece {
        /// Literal text: a range of the template's source.
        Text(Range<usize>),
        /// `{{ name }}` or `{{ name.attr.attr }}`.
        Lookup(Box<str>, Box<[Box<str>]>),
        /// `{{ function(literal, ...) }}`.
        Call(Call),
    }

    /// A call of a plan function with literal arguments.
    #[derive(Debug)]
    pub(super) enum Call {
        RandomInt(i64, i64),
        Uuid,
        NowMs,
        Env(Box<str>),
        RandomString(usize),
    }

    impl Call {
        /// The function's name (a context variable of that name hides it).
        fn name(&self) -> &'static str {
            match self {
                Call::RandomInt(..) => "random_int",
                Call::Uuid => "uuid",
                Call::NowMs => "now_ms",
                Call::Env(_) => "env",
                Call::RandomString(_) => "random_string",
            }
        }
    }

    /// Names minijinja reads as literals or operators, not variables.
    const RESERVED: &[&str] =
        &["true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "loop"];

    /// The simple form of `text`, or `None` when it needs minijinja.
    pub(super) fn parse(text: &str) -> Option<Vec<Piece>> {
        if text.contains("{%") || text.contains("{#") {
            return None;
        }
        let mut pieces = Vec::new();
        let mut at = 0;
        while let Some(open) = text[at..].find("{{") {
            let open = at + open;
            if open > at {
                pieces.push(Piece::Text(at..open));
            }
            let inner = open + 2;
            let close = inner + text[inner..].find("}}")?;
            pieces.push(expression(text[inner..close].trim())?);
            at = close + 2;
        }
        if at < text.len() {
            pieces.push(Piece::Text(at..text.len()));
        }
        Some(pieces)
    }

    /// A name, dotted attributes or a function call with literal arguments.
    fn expression(expr: &str) -> Option<Piece> {
        if let Some(open) = expr.find('(') {
            let name = &expr[..open];
            let args = arguments(expr[open + 1..].strip_suffix(')')?)?;
            let call = match (name, args.as_slice()) {
                ("random_int", [Arg::Int(lo), Arg::Int(hi)]) if lo <= hi => Call::RandomInt(*lo, *hi),
                ("uuid", []) => Call::Uuid,
                ("now_ms", []) => Call::NowMs,
                ("env", [Arg::Str(var)]) => Call::Env(var.as_str().into()),
                ("random_string", [Arg::Int(n)]) => {
                    Call::RandomString(usize::try_from(*n).ok().filter(|&n| n <= super::MAX_RANDOM_STRING)?)
                }
                _ => return None,
            };
            return Some(Piece::Call(call));
        }
        let mut parts = expr.split('.');
        let name = parts.next().filter(|n| is_identifier(n) && !RESERVED.contains(n) && !FUNCTIONS.contains(n))?;
        let attrs = parts.map(|a| is_identifier(a).then(|| Box::from(a))).collect::<Option<Box<[_]>>>()?;
        Some(Piece::Lookup(name.into(), attrs))
    }

    /// A literal argument.
    enum Arg {
        Int(i64),
        Str(String),
    }

    /// Comma-separated integer or quoted-string literals (strings without escapes).
    fn arguments(text: &str) -> Option<Vec<Arg>> {
        let text = text.trim();
        if text.is_empty() {
            return Some(Vec::new());
        }
        let mut args = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            let (arg, after) = match rest.as_bytes().first()? {
                quote @ (b'"' | b'\'') => {
                    let end = 1 + rest[1..].find(char::from(*quote))?;
                    let body = &rest[1..end];
                    if body.contains('\\') {
                        return None;
                    }
                    (Arg::Str(body.to_owned()), &rest[end + 1..])
                }
                _ => {
                    let end = rest.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(rest.len());
                    let digits = &rest[..end];
                    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
                    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    (Arg::Int(digits.parse().ok()?), &rest[end..])
                }
            };
            args.push(arg);
            let after = after.trim_start();
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Some(args),
                None => return None,
            }
        }
    }

    /// An ASCII identifier as minijinja reads one.
    fn is_identifier(text: &str) -> bool {
        let mut bytes = text.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    /// Appends the rendered template to `out`; `None` when minijinja must do it instead (the
    /// caller then drops what was appended).
    pub(super) fn render(text: &str, pieces: &[Piece], vars: &Arc<VarsState>, out: &mut String) -> Option<()> {
        for piece in pieces {
            match piece {
                Piece::Text(range) => out.push_str(&text[range.clone()]),
                Piece::Lookup(name, attrs) => {
                    let mut value = vars.lookup(name)?;
                    for attr in attrs.iter() {
                        value = value.get_attr(attr).ok().filter(|v| !v.is_undefined())?;
                    }
                    write_value(&value, out);
                }
                Piece::Call(call) => {
                    if vars.lookup(call.name()).is_some() {
                        return None;
                    }
                    match call {
                        Call::RandomInt(lo, hi) => write!(out, "{}", super::random_int(*lo, *hi).ok()?).ok()?,
                        Call::Uuid => out.push_str(&super::uuid_v4()),
                        Call::NowMs => write!(out, "{}", super::now_ms()).ok()?,
                        Call::Env(name) => write_value(&super::env_var(name).ok()?, out),
                        Call::RandomString(n) => out.push_str(&super::random_string(*n).ok()?),
                    }
                }
            }
        }
        Some(())
    }

    /// Writes a value as minijinja's default formatter does (no auto-escaping).
    fn write_value(value: &Value, out: &mut String) {
        match value.as_str() {
            Some(text) => out.push_str(text),
            None => {
                let _ = write!(out, "{value}");
            }
        }
    }
}

/// True when `name` is a function or global of the environment (`random_int`, `range`, ...).
fn is_environment_global(name: &str) -> bool {
    base_environment().globals().any(|(global, _)| global == name)
}

/// True when `text` contains anything minijinja would interpret.
fn has_markup(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Turns a minijinja compile error into a [`TemplateError`] with a byte offset into `text`.
fn template_error(text: &str, err: &minijinja::Error) -> TemplateError {
    let offset = match (err.range(), err.line()) {
        (Some(range), _) => range.start.min(text.len()),
        (None, Some(line)) => line_start(text, line),
        (None, None) => 0,
    };
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    TemplateError { message, offset }
}

/// Byte offset of the start of 1-based `line` in `text` (its end when there are fewer lines).
fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n').nth(line - 2).map_or(text.len(), |(at, _)| at + 1)
}

/// The environment every template starts from: strict undefined, the plan functions.
fn base_environment() -> &'static Environment<'static> {
    static BASE: OnceLock<Environment<'static>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_debug(true);
        env.add_function("random_int", random_int);
        env.add_function("uuid", uuid_v4);
        env.add_function("now_ms", now_ms);
        env.add_function("env", env_var);
        env.add_function("random_string", random_string);
        env
    })
}

/// `random_int(lo, hi)`: a uniformly random integer in `lo..=hi`, from the rendering user's
/// generator (see `flow::seed`), as are `uuid()` and `random_string(n)`.
fn random_int(lo: i64, hi: i64) -> Result<i64, minijinja::Error> {
    if lo > hi {
        return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("random_int({lo}, {hi}): lo > hi")));
    }
    Ok(seed::draw(|rng| rng.random_range(lo..=hi)))
}

/// `uuid()`: a random (version 4) UUID as text.
fn uuid_v4() -> String {
    let bytes: [u8; 16] = seed::draw(|rng| rng.random());
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// `now_ms()`: milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `random_string(n)`: `n` random ASCII letters and digits.
fn random_string(n: usize) -> Result<String, minijinja::Error> {
    if n > MAX_RANDOM_STRING {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("random_string({n}): at most {MAX_RANDOM_STRING} characters"),
        ));
    }
    Ok(seed::draw(|rng| Alphanumeric.sample_string(rng, n)))
}

/// `env("NAME")`: an environment variable, looked up once per process and cached.
fn env_var(name: &str) -> Result<Value, minijinja::Error> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let cached = cache.read().ok().and_then(|map| map.get(name).cloned());
    let value = match cached {
        Some(value) => value,
        None => {
            let value = std::env::var(name).ok().map(Value::from);
            if let Ok(mut map) = cache.write() {
                map.insert(name.to_owned(), value.clone());
            }
            value
        }
    };
    value.ok_or_else(|| {
        minijinja::Error::new(ErrorKind::InvalidOperation, format!("environment variable {name} is not set"))
    })
}

/// Variables every virtual user sees: the plan's `[variables]`. Shared by all users.
#[derive(Debug, Default)]
pub struct Globals {
    values: HashMap<String, Value>,
}

impl Globals {
    /// Globals holding the plan's `[variables]` (name → text).
    pub fn new(variables: &BTreeMap<String, String>) -> Globals {
        Globals { values: variables.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect() }
    }

    /// These globals with lists added: `{{ NAME }}` is the list, `{{ NAME[i] }}` one item,
    /// `{{ NAME | length }}` its size (a setup's exported values, see `engine::phases`).
    pub fn with_lists(&self, lists: &BTreeMap<String, Vec<String>>) -> Globals {
        let mut values = self.values.clone();
        for (name, list) in lists {
            values.insert(name.clone(), Value::from(list.clone()));
        }
        Globals { values }
    }

    /// The value of `name`, if the plan defines it.
    fn lookup(&self, name: &str) -> Option<Value> {
        self.values.get(name).cloned()
    }
}

/// One virtual user's variables: its number, iteration, extracted values and feeder rows,
/// falling back to the shared [`Globals`]. Small: one pointer plus what it holds.
#[derive(Debug, Clone)]
pub struct Vars {
    /// Behind an `Arc` so a render hands it to minijinja without copying; writes go through
    /// `Arc::make_mut`, which does not copy because renders do not outlive themselves.
    state: Arc<VarsState>,
}

/// What [`Vars`] holds.
#[derive(Debug, Clone)]
struct VarsState {
    globals: Arc<Globals>,
    user: u64,
    iteration: u64,
    /// Extracted values and feeder rows (as objects), in insertion order; few, so a list.
    values: Vec<(Box<str>, Value)>,
}

impl Vars {
    /// Variables for virtual user `user` (iteration 0, nothing extracted yet).
    pub fn new(globals: Arc<Globals>, user: u64) -> Vars {
        Vars { state: Arc::new(VarsState { globals, user, iteration: 0, values: Vec::new() }) }
    }

    /// Sets the iteration number `{{ iteration }}` renders.
    pub fn set_iteration(&mut self, iteration: u64) {
        Arc::make_mut(&mut self.state).iteration = iteration;
    }

    /// The iteration number.
    pub fn iteration(&self) -> u64 {
        self.state.iteration
    }

    /// The virtual user's number.
    pub fn user(&self) -> u64 {
        self.state.user
    }

    /// Sets `name` to `value` (an extracted value); it hides a global of the same name.
    pub fn set(&mut self, name: &str, value: String) {
        self.put(name, Value::from(value));
    }

    /// The value of `name` as text: built-ins, then set values, then globals.
    pub fn get(&self, name: &str) -> Option<String> {
        self.state.lookup(name).map(|v| match v.as_str() {
            Some(text) => text.to_owned(),
            None => v.to_string(),
        })
    }

    /// Makes `row` readable as `{{ feeder.column }}`.
    pub fn set_row(&mut self, feeder: &str, row: Row) {
        self.put(feeder, Value::from_object(RowObject(row)));
    }

    /// Sets or replaces one value.
    fn put(&mut self, name: &str, value: Value) {
        let state = Arc::make_mut(&mut self.state);
        match state.values.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, slot)) => *slot = value,
            None => state.values.push((name.into(), value)),
        }
    }
}

impl VarsState {
    /// The value of `name`: built-ins, then set values, then globals.
    fn lookup(&self, name: &str) -> Option<Value> {
        match name {
            "user" => Some(Value::from(self.user)),
            "iteration" => Some(Value::from(self.iteration)),
            _ => match self.values.iter().find(|(n, _)| &**n == name) {
                Some((_, value)) => Some(value.clone()),
                None => self.globals.lookup(name),
            },
        }
    }
}

impl Object for VarsState {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().and_then(|name| self.lookup(name))
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.lookup(key)
    }
}

/// A feeder row as a template value: `{{ users.name }}`.
#[derive(Debug)]
struct RowObject(Row);

impl Object for RowObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().and_then(|column| self.0.get(column)).map(Value::from)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.0.get(key).map(Value::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut globals = BTreeMap::new();
        globals.insert("host".to_owned(), "example.test".to_owned());
        globals.insert("token".to_owned(), "global-token".to_owned());
        Vars::new(Arc::new(Globals::new(&globals)), 7)
    }

    fn render(text: &str, vars: &Vars) -> Result<String, RenderError> {
        Template::compile(text).expect("compiles").render_to_string(vars)
    }

    #[test]
    fn static_text_skips_minijinja() {
        let t = Template::compile("/items/42 {not a template}").unwrap();
        assert!(t.is_static());
        assert_eq!(t.text(), "/items/42 {not a template}");
        assert!(t.variables().is_empty());
        let mut out = String::from("GET ");
        t.render(&vars(), &mut out).unwrap();
        assert_eq!(out, "GET /items/42 {not a template}");
    }

    #[test]
    fn markup_is_not_static() {
        for text in ["{{ user }}", "{% if true %}x{% endif %}", "a{# comment #}b"] {
            assert!(!Template::compile(text).unwrap().is_static(), "{text}");
        }
        assert_eq!(render("a{# comment #}b", &vars()).unwrap(), "ab");
    }

    #[test]
    fn builtins_globals_and_set_values() {
        let mut v = vars();
        v.set_iteration(3);
        assert_eq!(
            render("{{ user }}/{{ iteration }}/{{ host }}/{{ token }}", &v).unwrap(),
            "7/3/example.test/global-token"
        );
        v.set("token", "extracted".to_owned());
        assert_eq!(render("Bearer {{ token }}", &v).unwrap(), "Bearer extracted");
        v.set("token", "again".to_owned());
        assert_eq!(v.get("token").as_deref(), Some("again"));
        assert_eq!(v.get("host").as_deref(), Some("example.test"));
        assert_eq!(v.get("user").as_deref(), Some("7"));
        assert_eq!(v.get("nope"), None);
        assert_eq!((v.user(), v.iteration()), (7, 3));
    }

    #[test]
    fn render_appends_to_out() {
        let t = Template::compile("{{ user }}").unwrap();
        let mut out = String::from("id=");
        t.render(&vars(), &mut out).unwrap();
        assert_eq!(out, "id=7");
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let err = render("x {{ missing }}", &vars()).unwrap_err();
        assert_eq!(err.0, "undefined variable `missing`");
        let err = render("{{ host.nope }}", &vars()).unwrap_err();
        assert!(err.0.contains("undefined") && err.0.contains("host.nope"), "{err}");
        let err = render("{% for i in range(2) %}{{ i }}{{ other }}{% endfor %}", &vars()).unwrap_err();
        assert_eq!(err.0, "undefined variable `other`");
    }

    #[test]
    fn random_int_stays_in_range_and_varies() {
        let t = Template::compile("{{ random_int(3, 9) }}").unwrap();
        let v = vars();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let n: i64 = t.render_to_string(&v).unwrap().parse().unwrap();
            assert!((3..=9).contains(&n), "{n}");
            seen.insert(n);
        }
        assert_eq!(seen.len(), 7, "all of 3..=9 in 500 draws");
        assert!(render("{{ random_int(5, 1) }}", &v).is_err());
        assert_eq!(render("{{ random_int(4, 4) }}", &v).unwrap(), "4");
    }

    #[test]
    fn uuid_now_and_random_string() {
        let v = vars();
        let a = render("{{ uuid() }}", &v).unwrap();
        let b = render("{{ uuid() }}", &v).unwrap();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        let now: u64 = render("{{ now_ms() }}", &v).unwrap().parse().unwrap();
        assert!(now > 1_600_000_000_000, "{now}");
        let s = render("{{ random_string(24) }}", &v).unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
        assert!(render("{{ random_string(99999999) }}", &v).is_err());
    }

    #[test]
    fn env_reads_and_names_missing_variables() {
        let v = vars();
        // PATH is set in any test environment; the lookup goes through the cache twice.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(render("{{ env(\"PATH\") }}", &v).unwrap(), path);
        assert_eq!(render("{{ env(\"PATH\") }}", &v).unwrap(), path);
        let err = render("{{ env(\"PUMMEL_SURELY_UNSET_VARIABLE\") }}", &v).unwrap_err();
        assert!(err.0.contains("PUMMEL_SURELY_UNSET_VARIABLE"), "{err}");
    }

    #[test]
    fn variables_lists_names_not_functions() {
        let t =
            Template::compile("{{ users.name }} {{ token }} {{ random_int(0, 9) }} {{ token }} {{ user }}").unwrap();
        assert_eq!(t.variables(), ["token", "user", "users"]);
        let t = Template::compile("{% for i in range(2) %}{{ i }}{{ env(\"X\") }}{% endfor %}").unwrap();
        assert!(t.variables().is_empty(), "{:?}", t.variables());
    }

    #[test]
    fn compile_errors_carry_an_offset() {
        let text = "/items/{{ random_int(0, }}";
        let err = Template::compile(text).unwrap_err();
        assert!(!err.message.is_empty());
        assert!(err.offset > 7 && err.offset <= text.len(), "{err:?}");
        let text = "line one\nline two {% if %}";
        let err = Template::compile(text).unwrap_err();
        assert!(err.offset >= 9, "{err:?} should point into the second line");
        let err = Template::compile("{{ unclosed").unwrap_err();
        assert!(err.offset <= "{{ unclosed".len(), "{err:?}");
    }

    #[test]
    fn line_start_finds_lines() {
        assert_eq!(line_start("ab\ncd\nef", 1), 0);
        assert_eq!(line_start("ab\ncd\nef", 2), 3);
        assert_eq!(line_start("ab\ncd\nef", 3), 6);
        assert_eq!(line_start("ab", 9), 2);
    }

    #[test]
    fn json_body_with_templates() {
        let mut v = vars();
        v.set("name", "Ann".to_owned());
        let body = r#"{"user": {{ user }}, "name": "{{ name }}", "kind": "test", "n": 1, "ok": true}"#;
        let out = render(body, &v).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["user"], 7);
        assert_eq!(parsed["name"], "Ann");
        // Trailing newlines in bodies are kept.
        assert_eq!(render("{{ user }}\n", &v).unwrap(), "7\n");
    }

    /// Renders through minijinja, skipping the fast path.
    fn render_slow(t: &Template, vars: &Vars) -> Result<String, String> {
        let env = t.inner.env.as_ref().expect("not static");
        let template = env.get_template(NAME).unwrap();
        template.render(Value::from_dyn_object(vars.state.clone())).map_err(|e| e.to_string())
    }

    #[test]
    fn fast_path_matches_minijinja() {
        let mut v = vars();
        v.set_iteration(12);
        v.set("name", "Ann <&> \"q\"".to_owned());
        let columns: Arc<[String]> = vec!["name".to_owned(), "id".to_owned()].into();
        v.set_row("users", Row::for_tests(columns, &["bob", "17"]));
        let texts = [
            "/items/{{ user }}/{{ iteration }}?q={{ name }}",
            "{{host}}{{ token }} {{  users.name }}-{{ users.id }}",
            "{{ users }}",
            "{\"a\": {\"b\": {{ user }}}}",
            "{{ env('PATH') }}",
            "{{ random_int(-5, -5) }}{{ random_string(0) }}",
        ];
        for text in texts {
            let t = Template::compile(text).unwrap();
            assert!(t.inner.fast.is_some(), "{text} should take the fast path");
            assert_eq!(t.render_to_string(&v).ok(), render_slow(&t, &v).ok(), "{text}");
        }
    }

    #[test]
    fn fast_path_leaves_the_rest_to_minijinja() {
        let slow = [
            "{{ user | string }}",
            "{{ user + 1 }}",
            "{{- user }}",
            "{{ true }}",
            "{{ users['name'] }}",
            "{{ random_int(1, x) }}",
            "{{ env(\"A\\\"B\") }}",
            "{% if true %}{{ user }}{% endif %}",
            "{{ 'a' ~ user }}",
            "{{ random_int(1, 2, 3) }}",
        ];
        for text in slow {
            let t = Template::compile(text).unwrap();
            assert!(t.inner.fast.is_none(), "{text} should not take the fast path");
        }
        let v = vars();
        assert_eq!(render("{{- user }}", &v).unwrap(), "7");
        assert_eq!(render("{{ user + 1 }}", &v).unwrap(), "8");
    }

    #[test]
    fn fast_path_falls_back_on_errors_and_shadowing() {
        let mut v = vars();
        let err = render("a{{ missing }}", &v).unwrap_err();
        assert!(err.0.contains("undefined"), "{err}");
        let columns: Arc<[String]> = vec!["name".to_owned()].into();
        v.set_row("users", Row::for_tests(columns, &["bob"]));
        assert!(render("{{ users.nope }}", &v).is_err());
        // A variable named like a function hides it, as in minijinja.
        v.set("uuid", "not-a-function".to_owned());
        assert!(render("{{ uuid() }}", &v).is_err());
        // Nothing of a failed fast render is left in `out`.
        let t = Template::compile("x{{ user }}{{ missing }}").unwrap();
        let mut out = String::from("keep");
        assert!(t.render(&v, &mut out).is_err());
        assert_eq!(out, "keep");
    }

    #[test]
    fn vars_clone_is_independent() {
        let mut a = vars();
        a.set("x", "1".to_owned());
        let mut b = a.clone();
        b.set("x", "2".to_owned());
        assert_eq!(a.get("x").as_deref(), Some("1"));
        assert_eq!(b.get("x").as_deref(), Some("2"));
    }

    #[test]
    fn template_is_send_sync_and_vars_small() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Template>();
        assert_send_sync::<Globals>();
        assert_send_sync::<Vars>();
        assert!(std::mem::size_of::<Vars>() + std::mem::size_of::<VarsState>() <= 200);
    }

    /// Prints ns/render for the three shapes the plan executor renders per request.
    /// `cargo test -p pummel-engine --release --lib template -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn render_cost() {
        let mut v = vars();
        v.set("token", "eyJhbGciOiJIUzI1NiJ9.abc.def".to_owned());
        v.set("name", "Ann".to_owned());
        let cases = [
            ("path", "/items/{{ random_int(0, 9999999) }}"),
            ("header", "Bearer {{ token }}"),
            ("body", r#"{"user": {{ user }}, "name": "{{ name }}", "kind": "test", "n": 1, "ok": true}"#),
            ("static", "/items/42"),
            // The same path through minijinja (a filter keeps it off the fast path).
            ("minijinja path", "/items/{{ random_int(0, 9999999) | string }}"),
        ];
        for (label, text) in cases {
            let t = Template::compile(text).unwrap();
            let mut out = String::with_capacity(256);
            let iterations = 200_000u32;
            // Warm up, then measure the best of three rounds.
            for _ in 0..10_000 {
                out.clear();
                t.render(&v, &mut out).unwrap();
            }
            let mut best = f64::MAX;
            for _ in 0..3 {
                let start = std::time::Instant::now();
                for _ in 0..iterations {
                    out.clear();
                    t.render(&v, &mut out).unwrap();
                    std::hint::black_box(&out);
                }
                best = best.min(start.elapsed().as_nanos() as f64 / f64::from(iterations));
            }
            println!("render {label:14} {best:6.0} ns  ({text})");
        }
    }
}
