//! Bodies sent compressed (`Content-Encoding: gzip`, `deflate`, `br`, `zstd`), decoded for the
//! checks and extraction that read them — and only for those: a body nothing reads is never
//! decoded, so asking for compression costs no CPU beyond the bytes it saves.
//!
//! Decoding uses well-kept crates (flate2 for gzip and deflate, brotli-decompressor for br,
//! ruzstd for zstd; all pure Rust). What is decoded is bounded: a small body that inflates to
//! gigabytes (a decompression bomb) stops at the same limit as any captured body.

use std::borrow::Cow;
use std::io::Read;

/// Why a body could not be decoded: it counts as `malformed_response`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A coding pummel does not know.
    #[error("unknown Content-Encoding {0:?}")]
    Unknown(String),
    /// The bytes are not valid in the coding the answer claimed.
    #[error("the body is not valid {coding}: {message}")]
    Invalid {
        /// The coding.
        coding: &'static str,
        /// What the decoder said.
        message: String,
    },
}

/// What `Accept-Encoding` offers when compression is asked for (`--compressed`).
pub const ALL: &[&str] = &["gzip", "deflate", "br", "zstd"];

/// The body as sent before `content_encoding` was applied: the codings are undone last to
/// first, at most `limit` bytes are kept. `complete` is false when the body was cut at the
/// capture limit: then a decoder that runs out of input is not an error, what it gave is kept.
pub fn decode<'a>(
    content_encoding: &[u8],
    body: &'a [u8],
    limit: usize,
    complete: bool,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let text = String::from_utf8_lossy(content_encoding);
    let codings: Vec<String> =
        text.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty() && c != "identity").collect();
    let mut current: Cow<'a, [u8]> = Cow::Borrowed(body);
    for coding in codings.iter().rev() {
        let name: &'static str = match coding.as_str() {
            "gzip" | "x-gzip" => "gzip",
            "deflate" => "deflate",
            "br" => "br",
            "zstd" => "zstd",
            other => return Err(DecodeError::Unknown(other.to_string())),
        };
        current = Cow::Owned(undo(name, &current, limit, complete)?);
    }
    Ok(current)
}

/// Undoes one coding.
fn undo(coding: &'static str, input: &[u8], limit: usize, complete: bool) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let result = match coding {
        "gzip" => read_bounded(flate2::read::MultiGzDecoder::new(input), limit, &mut out),
        // `deflate` is meant as zlib-wrapped; some servers send it raw: try both.
        "deflate" => read_bounded(flate2::read::ZlibDecoder::new(input), limit, &mut out).or_else(|_| {
            out.clear();
            read_bounded(flate2::read::DeflateDecoder::new(input), limit, &mut out)
        }),
        "br" => read_bounded(brotli_decompressor::Decompressor::new(input, 4096), limit, &mut out),
        _ => match ruzstd::decoding::StreamingDecoder::new(input) {
            Ok(decoder) => read_bounded(decoder, limit, &mut out),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        },
    };
    match result {
        Ok(()) => Ok(out),
        // A body cut at the capture limit ends mid-stream: keep what decoded.
        Err(_) if !complete => Ok(out),
        Err(e) => Err(DecodeError::Invalid { coding, message: e.to_string() }),
    }
}

/// Reads `reader` into `out`, at most `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    reader.take(limit as u64).read_to_end(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"{\"items\": [1, 2, 3], \"name\": \"pummel pummel pummel pummel\"}";

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn raw_deflate(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    #[test]
    fn gzip_and_deflate_decode() {
        assert_eq!(decode(b"gzip", &gzip(TEXT), 1 << 20, true).unwrap().as_ref(), TEXT);
        assert_eq!(decode(b"x-gzip", &gzip(TEXT), 1 << 20, true).unwrap().as_ref(), TEXT);
        assert_eq!(decode(b"deflate", &zlib(TEXT), 1 << 20, true).unwrap().as_ref(), TEXT);
        assert_eq!(decode(b"Deflate", &raw_deflate(TEXT), 1 << 20, true).unwrap().as_ref(), TEXT, "raw deflate");
        assert_eq!(decode(b"identity", TEXT, 1 << 20, true).unwrap().as_ref(), TEXT);
        assert!(matches!(decode(b"", TEXT, 1 << 20, true), Ok(Cow::Borrowed(_))), "nothing to undo, nothing copied");
    }

    #[test]
    fn codings_are_undone_last_to_first() {
        let twice = gzip(&zlib(TEXT));
        assert_eq!(decode(b"deflate, gzip", &twice, 1 << 20, true).unwrap().as_ref(), TEXT);
    }

    #[test]
    fn brotli_and_zstd_decode() {
        // `{"a":1}` compressed by the reference tools (brotli -c, zstd -c).
        let br: &[u8] = &[0x0b, 0x03, 0x80, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d, 0x03];
        assert_eq!(decode(b"br", br, 1 << 20, true).unwrap().as_ref(), b"{\"a\":1}");
        let zstd: &[u8] = &[
            0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x39, 0x00, 0x00, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d, 0x8a, 0x9c,
            0x38, 0x1c,
        ];
        assert_eq!(decode(b"zstd", zstd, 1 << 20, true).unwrap().as_ref(), b"{\"a\":1}");
    }

    #[test]
    fn bad_bodies_and_unknown_codings_are_errors() {
        assert!(matches!(decode(b"gzip", b"not gzip at all", 1 << 20, true), Err(DecodeError::Invalid { .. })));
        assert!(matches!(decode(b"br", b"\xff\xff\xff\xff", 1 << 20, true), Err(DecodeError::Invalid { .. })));
        assert_eq!(decode(b"compress", TEXT, 1 << 20, true), Err(DecodeError::Unknown("compress".into())));
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_a_cut_body_keeps_its_start() {
        let zeros = gzip(&vec![0u8; 10 << 20]);
        assert!(zeros.len() < 64 << 10, "ten MiB of zeros compress to little");
        assert_eq!(decode(b"gzip", &zeros, 1 << 20, true).unwrap().len(), 1 << 20);
        let long: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let packed = gzip(&long);
        let cut = &packed[..packed.len() / 2];
        let start = decode(b"gzip", cut, 1 << 20, false).expect("a cut body keeps what decoded");
        assert!(!start.is_empty() && long.starts_with(&start), "{} bytes", start.len());
        assert!(decode(b"gzip", cut, 1 << 20, true).is_err(), "a complete body that ends early is malformed");
    }
}
