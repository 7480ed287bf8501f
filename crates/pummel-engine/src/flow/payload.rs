//! Random request bodies for upload tests, made once per size and shared.
//!
//! Object-store tests send bodies of a given size (`--object-size 1MiB`). Generating random
//! bytes, or hashing them for SigV4, per request would measure pummel rather than the target,
//! so each size is generated and hashed once per process and every request and shard shares the
//! same bytes through an `Arc`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rand::RngCore;

use crate::flow::sigv4::sha256_hex;

/// The largest body [`parse_size`] accepts: 1 GiB.
pub const MAX_PAYLOAD_SIZE: usize = 1 << 30;

/// A request body and its SHA-256, both shared (cloning copies two pointers, not the bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The body.
    pub bytes: Arc<[u8]>,
    /// Lowercase hex SHA-256 of `bytes`, as SigV4's `x-amz-content-sha256` wants it.
    pub sha256_hex: Arc<str>,
}

/// Random bytes of `size`, generated (and hashed) on the first call for that size in this
/// process; later calls, from any thread, get the same bytes.
pub fn random_payload(size: usize) -> Payload {
    static CACHE: OnceLock<Mutex<HashMap<usize, Payload>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    let mut map = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(size).or_insert_with(|| generate(size)).clone()
}

fn generate(size: usize) -> Payload {
    let mut bytes = vec![0u8; size];
    rand::rng().fill_bytes(&mut bytes);
    let sha256_hex = sha256_hex(&bytes).into();
    Payload { bytes: bytes.into(), sha256_hex }
}

/// Parses a body size: a plain byte count (`1024`), binary units (`4k`, `64KiB`, `1MiB`, `1GiB`;
/// `k`/`m`/`g` alone are binary too) or decimal ones (`1KB`, `1MB` = 10^6, `1GB`). At most 1 GiB.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(format!("invalid size {text:?}: expected a number of bytes, e.g. 1024, 64KiB, 1MiB, 1MB"));
    }
    let number: u64 = digits.parse().map_err(|_| format!("invalid size {text:?}: number too large"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!("invalid size {text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"));
        }
    };
    let bytes = number.checked_mul(multiplier).filter(|&b| b <= MAX_PAYLOAD_SIZE as u64);
    match bytes {
        Some(bytes) => Ok(bytes as usize),
        None => Err(format!("invalid size {text:?}: at most 1GiB")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_generated_once_per_size_and_shared() {
        let first = random_payload(4096 + 17);
        let again = random_payload(4096 + 17);
        assert!(Arc::ptr_eq(&first.bytes, &again.bytes));
        assert!(Arc::ptr_eq(&first.sha256_hex, &again.sha256_hex));
        let other = random_payload(4096 + 18);
        assert_eq!(other.bytes.len(), 4096 + 18);
        assert!(!Arc::ptr_eq(&first.bytes, &other.bytes));
    }

    #[test]
    fn payload_is_shared_across_threads() {
        let here = random_payload(3333);
        let there = std::thread::spawn(|| random_payload(3333)).join().unwrap();
        assert!(Arc::ptr_eq(&here.bytes, &there.bytes));
    }

    #[test]
    fn hash_matches_the_bytes_and_bytes_look_random() {
        let payload = random_payload(64 * 1024);
        assert_eq!(payload.bytes.len(), 64 * 1024);
        assert_eq!(&*payload.sha256_hex, sha256_hex(&payload.bytes));
        let mut seen = [false; 256];
        payload.bytes.iter().for_each(|&b| seen[b as usize] = true);
        assert!(seen.iter().filter(|&&s| s).count() > 250, "64 KiB of random bytes cover nearly every value");
    }

    #[test]
    fn empty_payload_hashes_to_the_empty_sha256() {
        let payload = random_payload(0);
        assert!(payload.bytes.is_empty());
        assert_eq!(&*payload.sha256_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("2 kb"), Ok(2000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in ["", "KiB", "-1", "1.5MiB", "1TiB", "2GiB", "1025MiB", "99999999999999999999", "12 parsecs"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
