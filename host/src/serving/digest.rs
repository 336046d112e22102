//! How the host names component versions and cache entries: sha256 in lowercase hex, cut to
//! its first 12 digits in log lines.

use sha2::{Digest as _, Sha256};

/// Hex sha256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` in lowercase hex, as digests are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The 32 bytes of a hex sha256, or `None` for text that is not one.
pub(crate) fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    if text.len() != 64 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The first 12 hex digits of a digest: how log lines name a version.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(unhex(&digest).map(|bytes| hex(&bytes)), Some(digest));
        assert_eq!(unhex("xyz"), None);
    }

    #[test]
    fn short_digests_are_twelve_digits() {
        assert_eq!(short(&"ab".repeat(32)), "abababababab");
        assert_eq!(short("abc"), "abc");
    }
}
