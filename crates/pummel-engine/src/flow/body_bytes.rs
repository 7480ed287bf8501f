//! A request body as it is sent: one buffer, or pieces sent one after the other. A multipart
//! form with templated fields is rendered as pieces: its fields are rendered per request, its
//! files' bytes (read once, when the plan is loaded) are shared by every request instead of
//! being copied into each body, so a large upload costs neither a copy nor memory per
//! request in flight.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

/// The bytes of a request body.
#[derive(Debug, Clone)]
pub enum BodyBytes {
    /// One buffer (shared: cloning it copies nothing).
    One(Arc<[u8]>),
    /// Pieces, in order (shared too).
    Pieces(Arc<[Arc<[u8]>]>),
}

impl BodyBytes {
    /// The body of `pieces` (one piece is [`BodyBytes::One`]).
    pub fn of_pieces(mut pieces: Vec<Arc<[u8]>>) -> BodyBytes {
        pieces.retain(|p| !p.is_empty());
        match pieces.len() {
            0 => BodyBytes::One(Arc::from(&[][..])),
            1 => BodyBytes::One(pieces.swap_remove(0)),
            _ => BodyBytes::Pieces(Arc::from(pieces)),
        }
    }

    /// Its pieces, in order.
    pub fn pieces(&self) -> &[Arc<[u8]>] {
        match self {
            BodyBytes::One(bytes) => std::slice::from_ref(bytes),
            BodyBytes::Pieces(pieces) => pieces,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.len()).sum()
    }

    /// True when it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.pieces().iter().all(|p| p.is_empty())
    }

    /// Its bytes in one buffer: for what needs them whole (a dry run's text, tests), never on
    /// the way to the target.
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces().concat()
    }

    /// Its SHA-256.
    pub fn sha256(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for piece in self.pieces() {
            hasher.update(piece);
        }
        hasher.finalize().into()
    }
}

/// Equal when their bytes are, however they are cut into pieces.
impl PartialEq for BodyBytes {
    fn eq(&self, other: &BodyBytes) -> bool {
        self.len() == other.len() && self.to_vec() == other.to_vec()
    }
}

impl Eq for BodyBytes {}

impl From<Vec<u8>> for BodyBytes {
    fn from(bytes: Vec<u8>) -> BodyBytes {
        BodyBytes::One(Arc::from(bytes))
    }
}

impl From<Arc<[u8]>> for BodyBytes {
    fn from(bytes: Arc<[u8]>) -> BodyBytes {
        BodyBytes::One(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_read_as_their_concatenation() {
        let file: Arc<[u8]> = Arc::from(&b"file bytes"[..]);
        let body = BodyBytes::of_pieces(vec![
            Arc::from(&b"head "[..]),
            file.clone(),
            Arc::from(&b""[..]),
            Arc::from(&b" tail"[..]),
        ]);
        assert_eq!(body.to_vec(), b"head file bytes tail");
        assert_eq!(body.len(), 20);
        assert_eq!(body.pieces().len(), 3, "an empty piece is dropped");
        assert!(Arc::ptr_eq(&body.pieces()[1], &file), "the file is shared, not copied");
        assert_eq!(body.sha256(), <[u8; 32]>::from(Sha256::digest(b"head file bytes tail")));
        assert!(matches!(BodyBytes::of_pieces(vec![file]), BodyBytes::One(_)));
        assert!(BodyBytes::of_pieces(Vec::new()).is_empty());
    }
}
