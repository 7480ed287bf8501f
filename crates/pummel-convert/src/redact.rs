//! Secrets of a recording, replaced by `{{ env("NAME") }}` placeholders.
//!
//! A HAR file holds the session cookie, the bearer token and the password of whoever recorded
//! it; a plan is committed, shared and pasted into issues. So the values of secret headers
//! (Authorization, Cookie, API keys, anything named like a token, key, secret, session or
//! signature), of secret query parameters (`token`, `access_token`, `api_key`, `key`,
//! `signature`, ...) and of secret fields of JSON and form bodies (`password`, `token`, ...)
//! become environment variables: the plan reads `{{ env("AUTHORIZATION") }}` and lists, in its
//! opening comment, each variable to set and what it stands for — never its value.
//!
//! One value is one variable, wherever it appears: a token in a query string and again in a
//! `Referer` header both read `{{ env("TOKEN") }}`. Values of [`MIN_SEARCHED`] characters or
//! more are also searched for in every other text of the plan (paths, header values, bodies)
//! and replaced there, and [`Secrets::assert_absent`] refuses a plan in which one still
//! appears. Shorter values are replaced where they were found only: searching for `abc`
//! everywhere would replace innocent text.

use std::fmt;

use toml_writer::ToTomlValue;

use crate::ConvertError;
use crate::write::{Piece, Pieces, Step};

/// Secret values this long or longer are searched for everywhere in the plan.
pub const MIN_SEARCHED: usize = 6;

/// Header names (lowercase) that always hold secrets.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-amz-security-token",
];

/// Parts of header names that mark secrets: `X-Auth-Token`, `X-CSRF-Token`, `X-Session-Id`.
const SECRET_HEADER_PARTS: &[&str] =
    &["token", "secret", "api-key", "apikey", "api_key", "password", "session", "signature", "credential", "auth"];

/// Query parameter and body field names (lowercase) that always hold secrets.
const SECRET_FIELDS: &[&str] = &["key", "sig", "auth", "authorization", "session", "sid", "jwt", "pwd", "pass"];

/// Parts of parameter and field names that mark secrets: `access_token`, `client_secret`,
/// `X-Amz-Signature`, `new_password`.
const SECRET_FIELD_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "apikey",
    "api_key",
    "api-key",
    "credential",
    "private_key",
    "access_key",
    "session_id",
    "sessionid",
];

/// Authorization schemes whose credentials follow as one word: the scheme stays in the plan.
const SCHEMES: &[&str] = &["bearer", "basic", "token", "bot", "apikey"];

/// One variable a plan reads, and what it stands for (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The environment variable's name, e.g. `AUTHORIZATION`.
    pub name: String,
    /// What to set it to, e.g. `the credentials after "Bearer " in the Authorization header`.
    pub what: String,
}

/// The secrets found so far, with their values: the converter's private state. Its `Debug`
/// shows names only.
#[derive(Default)]
pub struct Secrets {
    variables: Vec<Variable>,
    values: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("variables", &self.variables).finish_non_exhaustive()
    }
}

/// Whether a header's value is a secret.
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&lower.as_str()) || SECRET_HEADER_PARTS.iter().any(|part| lower.contains(part))
}

/// Whether a query parameter's or body field's value is a secret.
pub fn is_secret_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_FIELDS.contains(&lower.as_str()) || SECRET_FIELD_PARTS.iter().any(|part| lower.contains(part))
}

/// `X-Api-Key` → `X_API_KEY`: upper case, anything but letters and digits as `_`.
fn variable_base(name: &str) -> String {
    let mut base: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    base = base.trim_matches('_').to_string();
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base.insert_str(0, "SECRET_");
    }
    base
}

impl Secrets {
    /// The variables found, in the order found.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The variable holding `value`: the one that already does, or a new one named after
    /// `base` (`TOKEN`, then `TOKEN_2`, ...).
    fn variable(&mut self, base: &str, value: &str, what: String) -> String {
        if let Some(index) = self.values.iter().position(|v| v == value) {
            return self.variables[index].name.clone();
        }
        let base = variable_base(base);
        let mut name = base.clone();
        let mut n = 1;
        while self.variables.iter().any(|v| v.name == name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.variables.push(Variable { name: name.clone(), what });
        self.values.push(value.to_string());
        name
    }

    /// A header's value: a placeholder when the header is secret (`Bearer ` and the like stay).
    pub fn header(&mut self, name: &str, value: &str) -> Pieces {
        if value.is_empty() || !is_secret_header(name) {
            return vec![Piece::Text(value.to_string())];
        }
        if let Some((scheme, credentials)) = value.split_once(' ') {
            let credentials = credentials.trim();
            if SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
                && !credentials.is_empty()
                && !credentials.contains(char::is_whitespace)
            {
                let what = format!("the credentials after \"{scheme} \" in the {name} header");
                let var = self.variable(name, credentials, what);
                return vec![Piece::Text(format!("{scheme} ")), Piece::Env(var)];
            }
        }
        let var = self.variable(name, value, format!("the {name} header"));
        vec![Piece::Env(var)]
    }

    /// The path and query string, secret parameters' values as placeholders (values as they
    /// appear in the URL, still URL-encoded).
    pub fn path_and_query(&mut self, path: &str, query: Option<&str>) -> Pieces {
        let mut pieces = vec![Piece::Text(path.to_string())];
        if let Some(query) = query {
            pieces.push(Piece::Text("?".to_string()));
            pieces.extend(self.urlencoded(query, "query parameter", "as it appears in the URL, URL-encoded"));
        }
        pieces
    }

    /// `a=1&token=x` with the secret parameters' values as placeholders.
    fn urlencoded(&mut self, text: &str, kind: &str, how: &str) -> Pieces {
        let mut pieces = Vec::new();
        for (index, part) in text.split('&').enumerate() {
            if index > 0 {
                pieces.push(Piece::Text("&".to_string()));
            }
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let decoded: String =
                url::form_urlencoded::parse(key.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default();
            if value.is_empty() || !is_secret_field(&decoded) {
                pieces.push(Piece::Text(part.to_string()));
                continue;
            }
            let var = self.variable(&decoded, value, format!("{kind} `{decoded}` ({how})"));
            pieces.push(Piece::Text(format!("{key}=")));
            pieces.push(Piece::Env(var));
        }
        pieces
    }

    /// A request body: secret fields of a JSON or form body as placeholders; other bodies as
    /// they are (still searched for known secrets by [`Secrets::substitute`]).
    pub fn body(&mut self, body: &str, content_type: Option<&str>) -> Pieces {
        let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
        // JSON whatever the Content-Type says (`curl -d '{...}'` sends it as a form).
        let looks_json = content_type.contains("json") || body.trim_start().starts_with(['{', '[']);
        let parsed = if looks_json { serde_json::from_str::<serde_json::Value>(body).ok() } else { None };
        let Some(value) = parsed else {
            if content_type.contains("x-www-form-urlencoded") {
                return self.urlencoded(body, "form field", "URL-encoded, as in the body");
            }
            return vec![Piece::Text(body.to_string())];
        };
        let mut pieces = vec![Piece::Text(body.to_string())];
        let mut fields = Vec::new();
        secret_json_fields(&value, &mut fields);
        for (key, secret) in fields {
            let what = format!("JSON field `{key}` of a request body");
            let var = self.variable(&key, &secret, what);
            let quoted = serde_json::Value::String(secret.clone()).to_string();
            if quoted[1..quoted.len() - 1] == secret {
                // Written without escapes: the variable goes between the quotes.
                pieces =
                    replace(pieces, &quoted, &[Piece::Text("\"".into()), Piece::Env(var), Piece::Text("\"".into())]);
            } else {
                // Escaped in the body: the whole string is rendered from the variable as JSON.
                pieces = replace(pieces, &quoted, &[Piece::EnvJson(var)]);
            }
        }
        pieces
    }

    /// Replaces every known secret of [`MIN_SEARCHED`] characters or more wherever else it
    /// appears in the steps' texts (a token in a `Referer`, a password echoed in a path).
    pub fn substitute(&self, steps: &mut [Step]) {
        let mut order: Vec<usize> = (0..self.values.len()).filter(|&i| self.values[i].len() >= MIN_SEARCHED).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.values[i].len()));
        for step in steps {
            let Step::Request(request) = step else { continue };
            let mut texts: Vec<&mut Pieces> = vec![&mut request.path];
            texts.extend(request.headers.iter_mut().map(|(_, v)| v));
            texts.extend(request.body.as_mut());
            for pieces in texts {
                for &i in &order {
                    let found = std::mem::take(pieces);
                    *pieces = replace(found, &self.values[i], &[Piece::Env(self.variables[i].name.clone())]);
                }
            }
        }
    }

    /// Refuses `text` when a secret of [`MIN_SEARCHED`] characters or more appears in it, as
    /// is or as escaped in a TOML string.
    pub fn assert_absent(&self, text: &str) -> Result<(), ConvertError> {
        for (variable, value) in self.variables.iter().zip(&self.values) {
            if value.len() < MIN_SEARCHED {
                continue;
            }
            let toml = value.as_str().to_toml_value();
            let escaped = toml.trim_matches(|c| c == '"' || c == '\'');
            if text.contains(value.as_str()) || text.contains(escaped) {
                return Err(ConvertError::Secret(format!(
                    "the value of {} ({}) appears elsewhere in the recording in a form pummel cannot replace; \
                     refusing to write it in plain text",
                    variable.name, variable.what
                )));
            }
        }
        Ok(())
    }
}

/// Secret fields of a JSON value with string values, depth first.
fn secret_json_fields(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(s) if !s.is_empty() && is_secret_field(key) => {
                        out.push((key.clone(), s.clone()));
                    }
                    other => secret_json_fields(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| secret_json_fields(item, out)),
        _ => {}
    }
}

/// `pieces` with every occurrence of `needle` in their texts replaced by `with`.
fn replace(pieces: Pieces, needle: &str, with: &[Piece]) -> Pieces {
    if needle.is_empty() {
        return pieces;
    }
    let mut out = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let Piece::Text(text) = piece else {
            out.push(piece);
            continue;
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find(needle) {
            if at > 0 {
                out.push(Piece::Text(rest[..at].to_string()));
            }
            out.extend_from_slice(with);
            rest = &rest[at + needle.len()..];
        }
        if !rest.is_empty() {
            out.push(Piece::Text(rest.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::render_template;

    #[test]
    fn secret_names() {
        for name in ["Authorization", "cookie", "X-Api-Key", "X-Auth-Token", "X-CSRF-Token", "X-Session-Id"] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["Accept", "Content-Type", "User-Agent", "Referer", "X-Request-Id"] {
            assert!(!is_secret_header(name), "{name}");
        }
        for name in ["token", "access_token", "api_key", "apiKey", "key", "signature", "X-Amz-Signature", "password"] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in ["page", "q", "id", "author", "keyword", "monkey"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn an_authorization_header_keeps_its_scheme() {
        let mut secrets = Secrets::default();
        let pieces = secrets.header("Authorization", "Bearer eyJhbGciOi.secret.sig");
        assert_eq!(render_template(&pieces), r#"Bearer {{ env("AUTHORIZATION") }}"#);
        let pieces = secrets.header("Cookie", "session=s3cr3t-cookie; theme=dark");
        assert_eq!(render_template(&pieces), r#"{{ env("COOKIE") }}"#);
        let pieces = secrets.header("Authorization", "AWS4-HMAC-SHA256 Credential=a, Signature=b");
        assert_eq!(render_template(&pieces), r#"{{ env("AUTHORIZATION_2") }}"#);
        assert_eq!(render_template(&secrets.header("Accept", "*/*")), "*/*");
        let names: Vec<_> = secrets.variables().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["AUTHORIZATION", "COOKIE", "AUTHORIZATION_2"]);
        assert_eq!(secrets.variables()[0].what, r#"the credentials after "Bearer " in the Authorization header"#);
    }

    #[test]
    fn query_tokens_become_placeholders_and_one_value_is_one_variable() {
        let mut secrets = Secrets::default();
        let pieces = secrets.path_and_query("/a", Some("page=2&access_token=abc%2Fdef&key=k123456&empty_token="));
        assert_eq!(
            render_template(&pieces),
            r#"/a?page=2&access_token={{ env("ACCESS_TOKEN") }}&key={{ env("KEY") }}&empty_token="#
        );
        let again = secrets.header("X-Api-Key", "k123456");
        assert_eq!(render_template(&again), r#"{{ env("KEY") }}"#, "the same value reuses its variable");
        assert_eq!(secrets.variables().len(), 2);
    }

    #[test]
    fn json_and_form_bodies_lose_their_secret_fields() {
        let mut secrets = Secrets::default();
        let json = r#"{"user":"ann","password":"hunter2-long","nested":[{"refresh_token":"r\"t"}],"n":1}"#;
        let pieces = secrets.body(json, Some("application/json"));
        assert_eq!(
            render_template(&pieces),
            r#"{"user":"ann","password":"{{ env("PASSWORD") }}","nested":[{"refresh_token":{{ env("REFRESH_TOKEN") | tojson }}}],"n":1}"#
        );
        let form =
            secrets.body("user=ann&password=hunter2-long&next=%2Fhome", Some("application/x-www-form-urlencoded"));
        assert_eq!(render_template(&form), r#"user=ann&password={{ env("PASSWORD") }}&next=%2Fhome"#);
        let sent_as_form = secrets.body(r#"{"password":"hunter2-long"}"#, Some("application/x-www-form-urlencoded"));
        assert_eq!(render_template(&sent_as_form), r#"{"password":"{{ env("PASSWORD") }}"}"#);
        let text = secrets.body("password=hunter2-long", Some("text/plain"));
        assert_eq!(render_template(&text), "password=hunter2-long", "not a form: substitute() handles it");
    }

    #[test]
    fn long_secrets_are_replaced_everywhere_and_never_written() {
        let mut secrets = Secrets::default();
        let mut steps = vec![Step::Request(crate::write::Request {
            name: "GET /".into(),
            method: "GET".into(),
            path: secrets.path_and_query("/", Some("token=tok-123456")),
            headers: vec![("Referer".into(), vec![Piece::Text("http://h/?token=tok-123456".into())])],
            body: Some(vec![Piece::Text("echo tok-123456 and tok-123456".into())]),
        })];
        secrets.substitute(&mut steps);
        let Step::Request(request) = &steps[0] else { unreachable!() };
        assert_eq!(render_template(&request.headers[0].1), r#"http://h/?token={{ env("TOKEN") }}"#);
        assert_eq!(
            render_template(request.body.as_ref().expect("a body")),
            r#"echo {{ env("TOKEN") }} and {{ env("TOKEN") }}"#
        );
        assert!(secrets.assert_absent("nothing here").is_ok());
        let err = secrets.assert_absent("x tok-123456 y").expect_err("refused");
        assert!(err.to_string().contains("TOKEN"), "{err}");
        assert!(!err.to_string().contains("tok-123456"), "the message does not show the value either: {err}");
        assert!(!format!("{secrets:?}").contains("tok-123456"));
    }
}
