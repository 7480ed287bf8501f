//! `multipart/form-data` bodies (RFC 7578): the form uploads of a browser, a text field or a
//! file per part.
//!
//! Files are read once, when the plan is loaded, and shared by every request. A form whose
//! fields are all fixed is encoded once too and sent as is; one with templated fields is
//! rendered per request as pieces ([`render_pieces`]): its fields and the parts' heads are
//! encoded anew, its files' bytes are shared pieces of every body, never copied.

use std::sync::Arc;

use crate::flow::body_bytes::BodyBytes;
use crate::flow::template::{Template, Vars};

/// The boundary between parts: fixed, so a form can be encoded once; long and unlikely enough
/// not to occur in an upload.
pub const BOUNDARY: &str = "pummel-form-8f3a1c9e2d7b4056a1e7";

/// The `Content-Type` of a multipart body.
pub const CONTENT_TYPE: &str = "multipart/form-data; boundary=pummel-form-8f3a1c9e2d7b4056a1e7";

/// One part of a form.
#[derive(Debug, Clone)]
pub enum Part {
    /// A text field whose value is a template.
    Field {
        /// The field's name.
        name: String,
        /// Its value.
        value: Template,
    },
    /// A file, read once.
    File {
        /// The field's name.
        name: String,
        /// The file name sent (the file's own name unless the plan says otherwise).
        filename: String,
        /// Its `Content-Type` (`application/octet-stream` unless the plan says otherwise).
        content_type: String,
        /// Its bytes.
        bytes: Arc<[u8]>,
    },
}

impl Part {
    /// True when the part is the same in every request.
    pub fn is_static(&self) -> bool {
        match self {
            Part::Field { value, .. } => value.is_static(),
            Part::File { .. } => true,
        }
    }
}

/// The body of `parts` in one buffer, their fields rendered for `vars`: a form encoded once.
pub fn render(parts: &[Part], vars: &Vars) -> Result<Vec<u8>, String> {
    render_pieces(parts, vars).map(|body| body.to_vec())
}

/// The body of `parts`, their fields rendered for `vars`, as pieces: what is rendered (the
/// fields, each part's head) between the files' own bytes, which are shared, not copied.
pub fn render_pieces(parts: &[Part], vars: &Vars) -> Result<BodyBytes, String> {
    let mut pieces: Vec<Arc<[u8]>> = Vec::with_capacity(2 * parts.len() + 1);
    let mut text = Vec::with_capacity(256);
    for part in parts {
        match part {
            Part::Field { name, value } => {
                let rendered = value.render_to_string(vars).map_err(|e| format!("multipart field {name}: {e}"))?;
                push_head(&mut text, name, None, None);
                text.extend_from_slice(rendered.as_bytes());
            }
            Part::File { name, filename, content_type, bytes } => {
                push_head(&mut text, name, Some(filename), Some(content_type));
                pieces.push(Arc::from(std::mem::take(&mut text)));
                pieces.push(bytes.clone());
            }
        }
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    pieces.push(Arc::from(text));
    Ok(BodyBytes::of_pieces(pieces))
}

/// A part's boundary line and head, up to its content.
fn push_head(body: &mut Vec<u8>, name: &str, filename: Option<&str>, content_type: Option<&str>) {
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"", quoted(name)).as_bytes(),
    );
    if let Some(filename) = filename {
        body.extend_from_slice(format!("; filename=\"{}\"", quoted(filename)).as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    if let Some(content_type) = content_type {
        body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
}

/// A name inside a quoted-string, as browsers send it: `"`, CR and LF percent-encoded.
fn quoted(text: &str) -> String {
    text.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::template::Globals;

    fn vars() -> Vars {
        Vars::new(Arc::new(Globals::new(&Default::default())), 7)
    }

    #[test]
    fn fields_and_files_are_encoded_as_a_browser_does() {
        let parts = [
            Part::Field { name: "title".into(), value: Template::compile("photo of user {{ user }}").unwrap() },
            Part::File {
                name: "file".into(),
                filename: "a\"b.jpg".into(),
                content_type: "image/jpeg".into(),
                bytes: Arc::from(&b"\xff\xd8\x00binary\r\n"[..]),
            },
        ];
        let pieces = render_pieces(&parts, &vars()).unwrap();
        let Part::File { bytes: file, .. } = &parts[1] else { unreachable!() };
        assert!(pieces.pieces().iter().any(|p| Arc::ptr_eq(p, file)), "the file's bytes are shared, not copied");
        let body = render(&parts, &vars()).unwrap();
        assert_eq!(body, pieces.to_vec());
        let expected = [
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nphoto of user 7\r\n").into_bytes(),
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .into_bytes(),
            b"\xff\xd8\x00binary\r\n\r\n".to_vec(),
            format!("--{BOUNDARY}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(body, expected);
        assert!(!parts[0].is_static() && parts[1].is_static());
        assert!(CONTENT_TYPE.ends_with(BOUNDARY));
    }
}
