//! Request names grouped by path pattern: `/items/42` and `/items/43` are both
//! `GET /items/:id`, so their statistics and thresholds are one line, not one per id.
//!
//! A path segment is an id when it is a number, a UUID (with or without dashes), or a long
//! hexadecimal string with a digit in it (object ids, hashes). Other segments stay as they are.

/// `METHOD /path/with/:id`, the query left out.
pub fn request_name(method: &str, path: &str) -> String {
    format!("{} {}", method.to_ascii_uppercase(), path_pattern(path))
}

/// The path with its id-like segments replaced by `:id`.
pub fn path_pattern(path: &str) -> String {
    let pattern: Vec<&str> = path.split('/').map(|segment| if is_id(segment) { ":id" } else { segment }).collect();
    match pattern.join("/") {
        empty if empty.is_empty() => "/".to_string(),
        joined => joined,
    }
}

/// Whether a path segment looks like an id.
pub fn is_id(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    is_uuid(segment) || is_long_hex(segment)
}

/// `6f1c2d3e-...` (8-4-4-4-12 hexadecimal digits).
fn is_uuid(segment: &str) -> bool {
    let groups: Vec<&str> = segment.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// 16 or more hexadecimal digits with at least one digit: object ids, hashes, UUIDs without
/// dashes (a word such as `deadbeefcafebabe` alone has no digit and stays).
fn is_long_hex(segment: &str) -> bool {
    segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit()) && segment.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_a_pattern() {
        let cases = [
            ("/items/42", "/items/:id"),
            ("/users/7/orders/1001", "/users/:id/orders/:id"),
            ("/items/6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f/edit", "/items/:id/edit"),
            ("/items/6F1C2D3E4B5A4C6D8E9F0A1B2C3D4E5F", "/items/:id"),
            ("/objects/507f1f77bcf86cd799439011", "/objects/:id"),
            ("/", "/"),
            ("", "/"),
            ("/api/v2/items", "/api/v2/items"),
            ("/static/app.3f2a.js", "/static/app.3f2a.js"),
            ("/words/deadbeefcafebabe", "/words/deadbeefcafebabe"),
            ("/items/", "/items/"),
        ];
        for (path, pattern) in cases {
            assert_eq!(path_pattern(path), pattern, "{path}");
        }
    }

    #[test]
    fn names_are_method_and_pattern_without_the_query() {
        assert_eq!(request_name("get", "/items/42"), "GET /items/:id");
        assert_eq!(request_name("POST", "/login"), "POST /login");
    }
}
