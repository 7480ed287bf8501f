//! Cookies, as a browser keeps them: a jar per virtual user (`cookie_store`, which applies the
//! standard rules for Domain, Path, Expires/Max-Age, Secure and HttpOnly), filled from each
//! answer's `Set-Cookie` headers and read for each request's `Cookie` header.
//!
//! Plans keep cookies unless `cookies = false`; a quick run keeps none unless `--cookies`. A
//! user that leaves drops its jar, and an open-model arrival (a new virtual user) starts with
//! an empty one. A user with no cookie yet pays nothing: its jar does not exist.

use cookie_store::CookieStore;
use url::Url;

use crate::plan::{Scheme, Target};

/// A user's cookies; created at the first `Set-Cookie`.
pub(super) type Jar = Option<Box<CookieStore>>;

/// The URL of `path` on the target: what cookies are matched against.
pub(super) fn url_of(target: &Target, path: &str) -> Option<Url> {
    let scheme = match target.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    Url::parse(&format!("{scheme}://{}{path}", target.host_header)).ok()
}

/// The `Cookie` header value for `url` from `jar`, when it holds any for it.
pub(super) fn header_for(jar: &Jar, url: &Url) -> Option<String> {
    let jar = jar.as_deref()?;
    let pairs: Vec<String> = jar.get_request_values(url).map(|(name, value)| format!("{name}={value}")).collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// Keeps the cookies an answer from `url` sets (`headers`: its head, name and value).
pub(super) fn store(jar: &mut Jar, headers: &[(&[u8], &[u8])], url: &Url) {
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(b"set-cookie") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(value) else { continue };
        // A cookie the rules refuse (another domain, a bad attribute) is not kept, as a
        // browser would not keep it.
        let _ = jar.get_or_insert_with(Default::default).parse(text, url);
    }
}

/// `headers` with the jar's `Cookie` for `url` merged in: after a `Cookie` the plan sets itself,
/// or as a header of its own.
pub(super) fn with_cookies(headers: &mut Vec<(String, String)>, jar: &Jar, url: &Url) {
    let Some(cookies) = header_for(jar, url) else { return };
    match headers.iter_mut().find(|(name, _)| name.eq_ignore_ascii_case("cookie")) {
        Some((_, value)) => {
            value.push_str("; ");
            value.push_str(&cookies);
        }
        None => headers.push(("Cookie".to_string(), cookies)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::resolve("http://127.0.0.1:8090/").expect("a loopback target")
    }

    #[test]
    fn a_set_cookie_is_sent_back_where_its_path_matches() {
        let t = target();
        let login = url_of(&t, "/login").unwrap();
        let mut jar: Jar = None;
        assert_eq!(header_for(&jar, &login), None);
        store(
            &mut jar,
            &[(b"Set-Cookie", b"session=abc; Path=/; HttpOnly"), (b"Set-Cookie", b"cart=1; Path=/shop")],
            &login,
        );
        assert_eq!(header_for(&jar, &url_of(&t, "/me").unwrap()).as_deref(), Some("session=abc"));
        let shop = header_for(&jar, &url_of(&t, "/shop/items").unwrap()).unwrap();
        assert!(shop.contains("session=abc") && shop.contains("cart=1"), "{shop}");
    }

    #[test]
    fn expired_secure_and_foreign_cookies_are_not_sent() {
        // Not loopback: a browser (and the jar) treats loopback as a secure context.
        let t = Target::resolve("http://10.0.0.1:8090/").expect("an address, no lookup");
        let here = url_of(&t, "/").unwrap();
        let mut jar: Jar = None;
        store(
            &mut jar,
            &[
                (b"Set-Cookie", b"gone=1; Max-Age=0"),
                (b"Set-Cookie", b"tls=1; Secure"),
                (b"Set-Cookie", b"other=1; Domain=example.com"),
                (b"set-cookie", b"kept=1"),
            ],
            &here,
        );
        assert_eq!(header_for(&jar, &here).as_deref(), Some("kept=1"), "plain http sends no Secure cookie");
    }

    #[test]
    fn the_jar_joins_a_cookie_the_plan_sets() {
        let t = target();
        let here = url_of(&t, "/").unwrap();
        let mut jar: Jar = None;
        store(&mut jar, &[(b"Set-Cookie", b"session=abc")], &here);
        let mut headers = vec![("cookie".to_string(), "theme=dark".to_string())];
        with_cookies(&mut headers, &jar, &here);
        assert_eq!(headers, [("cookie".to_string(), "theme=dark; session=abc".to_string())]);
        let mut plain = Vec::new();
        with_cookies(&mut plain, &None, &here);
        assert!(plain.is_empty(), "no jar, no header");
    }
}
