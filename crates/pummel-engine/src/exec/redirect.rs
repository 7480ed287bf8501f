//! Following redirects as a browser or k6 does: a `301`, `302`, `303`, `307` or `308` with a
//! `Location` leads to the next request of the chain, on the same target only.
//!
//! The method follows the rules clients agree on (RFC 9110 §15.4): `303` turns anything but
//! `HEAD` into a `GET`, and so do `301` and `302` for a `POST`; `307` and `308` repeat the
//! request as it was, body included. A body that is dropped takes its `Content-Type` with it.
//! A `Location` on a host or scheme the plan does not load is not followed: the request fails
//! as `redirect_off_target`, since pummel sends load only where it was pointed. Past the
//! plan's limit (`redirects = N`) the request fails as `too_many_redirects`.

use pummel_results::error_kind::ErrorKind;

use crate::dial::TransportError;
use crate::flow::body_bytes::BodyBytes;
use crate::plan::Target;
use crate::proto::http1::encode_head;

/// A status that redirects to its `Location`.
pub(super) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request a redirect leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NextRequest {
    /// The host it goes to (index of `Plan::target_of`): a redirect may lead to another of the
    /// plan's targets.
    pub target: usize,
    /// Its method.
    pub method: String,
    /// Its path and query on the target.
    pub path: String,
    /// Its header fields (as in `head`, for an HTTP/2 request).
    pub headers: Vec<(String, String)>,
    /// Its head, encoded.
    pub head: Vec<u8>,
    /// Its body, when it keeps one.
    pub body: Option<BodyBytes>,
}

/// What a chain's request was: enough to build the next one.
#[derive(Debug, Clone)]
pub(super) struct Hop<'a> {
    /// The method sent.
    pub method: &'a str,
    /// The path and query sent.
    pub path: &'a str,
    /// The headers sent (without `Host`, `Content-Length`, `Connection`: those are encoded).
    pub headers: &'a [(String, String)],
    /// The body sent, if any.
    pub body: Option<&'a BodyBytes>,
}

/// The next request of a chain: `hop` answered `status` with `location`. `cookies_for` gives
/// the user's `Cookie` header for a path, `None` when the plan keeps no cookies: the next
/// request then sends those, not the ones the last one sent.
pub(super) fn follow(
    targets: &[&Target],
    from: usize,
    keep_alive: &[bool],
    hop: &Hop<'_>,
    status: u16,
    location: &[u8],
    cookies_for: &dyn Fn(usize, &str) -> Option<Option<String>>,
) -> Result<NextRequest, TransportError> {
    let location = std::str::from_utf8(location)
        .map_err(|_| TransportError::new(ErrorKind::MalformedResponse, "a Location header that is not text"))?
        .trim();
    let source = targets[from];
    let base = url::Url::parse(&format!("{}://{}{}", scheme_of(source), source.host_header, hop.path))
        .map_err(|e| TransportError::other(format!("redirect from {}: {e}", hop.path)))?;
    let next = base
        .join(location)
        .map_err(|e| TransportError::new(ErrorKind::MalformedResponse, format!("Location {location:?}: {e}")))?;
    let is = |target: &Target| {
        next.scheme() == scheme_of(target)
            && next.host_str().is_some_and(|h| h.trim_matches(['[', ']']).eq_ignore_ascii_case(&target.host))
            && next.port_or_known_default() == Some(target.port)
    };
    // The request's own host first, then the plan's other targets.
    let Some(to) = std::iter::once(from).chain(0..targets.len()).find(|&i| is(targets[i])) else {
        return Err(TransportError::new(
            ErrorKind::RedirectOffTarget,
            format!(
                "a redirect to {next}, a host no target names (from {}://{})",
                scheme_of(source),
                source.host_header
            ),
        ));
    };
    let target = targets[to];
    let path = match next.query() {
        Some(query) => format!("{}?{query}", next.path()),
        None => next.path().to_string(),
    };
    let keeps_method = matches!(status, 307 | 308)
        || hop.method.eq_ignore_ascii_case("HEAD")
        || (status != 303 && !hop.method.eq_ignore_ascii_case("POST"));
    let (method, body) =
        if keeps_method { (hop.method.to_string(), hop.body.cloned()) } else { ("GET".to_string(), None) };
    let cookies = cookies_for(to, &path);
    let mut headers: Vec<(String, String)> = hop
        .headers
        .iter()
        .filter(|(name, _)| body.is_some() || !name.eq_ignore_ascii_case("content-type"))
        // Credentials stay with their host, as browsers and curl do.
        .filter(|(name, _)| to == from || !name.eq_ignore_ascii_case("authorization"))
        .filter(|(name, _)| cookies.is_none() || !name.eq_ignore_ascii_case("cookie"))
        .cloned()
        .collect();
    if let Some(Some(cookie)) = cookies {
        headers.push(("Cookie".to_string(), cookie));
    }
    let head = encode_head(
        &method,
        &path,
        &target.host_header,
        &headers,
        body.as_ref().map_or(0, |b| b.len()),
        keep_alive.get(to).copied().unwrap_or(true),
    )
    .map_err(|e| TransportError::other(format!("redirect to {path}: {e}")))?;
    Ok(NextRequest { target: to, method, path, headers, head, body })
}

fn scheme_of(target: &Target) -> &'static str {
    match target.scheme {
        crate::plan::Scheme::Http => "http",
        crate::plan::Scheme::Https => "https",
    }
}

/// Why a chain stops: it was longer than the plan allows.
pub(super) fn too_many(limit: u32) -> TransportError {
    TransportError::new(ErrorKind::TooManyRedirects, format!("more than {limit} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::resolve("http://127.0.0.1:8090/").expect("a loopback target")
    }

    fn hop<'a>(
        method: &'a str,
        path: &'a str,
        headers: &'a [(String, String)],
        body: Option<&'a BodyBytes>,
    ) -> Hop<'a> {
        Hop { method, path, headers, body }
    }

    /// No cookies kept.
    fn none(_: usize, _: &str) -> Option<Option<String>> {
        None
    }

    #[test]
    fn the_next_request_sends_the_cookies_of_its_own_path() {
        let t = target();
        let headers = vec![("Cookie".to_string(), "old=1".to_string())];
        let jar = |_: usize, path: &str| Some((path == "/home").then(|| "session=abc".to_string()));
        let next = follow(&[&t], 0, &[true], &hop("POST", "/login", &headers, None), 303, b"/home", &jar).unwrap();
        let head = String::from_utf8_lossy(&next.head).to_string();
        assert!(head.contains("Cookie: session=abc\r\n") && !head.contains("old=1"), "{head}");
        let kept = follow(&[&t], 0, &[true], &hop("GET", "/a", &headers, None), 302, b"/b", &none).unwrap();
        assert!(String::from_utf8_lossy(&kept.head).contains("Cookie: old=1"), "without a jar, the header stays");
    }

    #[test]
    fn relative_and_absolute_locations_on_the_target_are_followed() {
        let t = target();
        let next = follow(&[&t], 0, &[true], &hop("GET", "/a/b?x=1", &[], None), 302, b"c?y=2", &none).unwrap();
        assert_eq!((next.method.as_str(), next.path.as_str()), ("GET", "/a/c?y=2"));
        let next =
            follow(&[&t], 0, &[true], &hop("GET", "/a", &[], None), 301, b"http://127.0.0.1:8090/z", &none).unwrap();
        assert_eq!(next.path, "/z");
        assert!(String::from_utf8_lossy(&next.head).starts_with("GET /z HTTP/1.1\r\n"));
    }

    #[test]
    fn the_method_follows_the_status() {
        let t = target();
        let body = BodyBytes::from(b"{\"a\":1}".to_vec());
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let post = |status| {
            follow(&[&t], 0, &[true], &hop("POST", "/p", &headers, Some(&body)), status, b"/q", &none).unwrap()
        };
        for status in [301, 302, 303] {
            let next = post(status);
            assert_eq!((next.method.as_str(), next.body.is_none()), ("GET", true), "{status}");
            assert!(!String::from_utf8_lossy(&next.head).contains("Content-Type"), "{status}: no body, no type");
        }
        for status in [307, 308] {
            let next = post(status);
            assert_eq!(
                (next.method.as_str(), next.body.as_ref().map(BodyBytes::to_vec)),
                ("POST", Some(b"{\"a\":1}".to_vec())),
                "{status}"
            );
            assert!(String::from_utf8_lossy(&next.head).contains("Content-Length: 7"), "{status}");
        }
        let put = follow(&[&t], 0, &[true], &hop("PUT", "/p", &headers, Some(&body)), 302, b"/q", &none).unwrap();
        assert_eq!(put.method, "PUT", "302 keeps any method but POST");
        let head = follow(&[&t], 0, &[true], &hop("HEAD", "/p", &[], None), 303, b"/q", &none).unwrap();
        assert_eq!(head.method, "HEAD");
    }

    #[test]
    fn another_host_or_scheme_is_not_followed() {
        let t = target();
        for location in ["http://example.com/", "https://127.0.0.1:8090/", "http://127.0.0.1:9999/"] {
            let error =
                follow(&[&t], 0, &[true], &hop("GET", "/", &[], None), 302, location.as_bytes(), &none).unwrap_err();
            assert_eq!(error.kind, ErrorKind::RedirectOffTarget, "{location}");
        }
        assert_eq!(too_many(2).kind, ErrorKind::TooManyRedirects);
    }
}
