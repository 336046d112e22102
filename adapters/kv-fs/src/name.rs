//! Key and bucket names as file names: injective, and unable to escape their directory.
//!
//! Bytes in `[A-Za-z0-9_-]` stay; every other byte becomes `~XX` (upper-case hex). `/`, `.`,
//! NUL and non-ASCII therefore never reach the file system, and two different keys never
//! share a name. A kind prefix (`k` value, `l` lock, `x` lock-break guard, `b` bucket) keeps
//! the empty key valid and keeps our own temp files (which start with `.`) apart. Encoded
//! names longer than [`SEGMENT`] are split into directories named `+<chunk>`, so any key
//! length works.

use std::path::{Path, PathBuf};

/// Longest encoded chunk per path segment, well under every file system's 255-byte limit.
pub(crate) const SEGMENT: usize = 200;

/// What a name is for, and its one-letter prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A value file.
    Value,
    /// An `increment` lock.
    Lock,
    /// The guard taken while breaking a stale `increment` lock.
    LockBreak,
}

impl Kind {
    fn prefix(self) -> char {
        match self {
            Self::Value => 'k',
            Self::Lock => 'l',
            Self::LockBreak => 'x',
        }
    }
}

/// Encodes arbitrary bytes into `[A-Za-z0-9_~-]`.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if kept(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("~{byte:02X}"));
        }
    }
    out
}

/// Whether [`encode`] keeps `byte` as it is.
fn kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Reverses [`encode`]; `None` for anything `encode` cannot have produced.
pub(crate) fn decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'~' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            if hex.bytes().any(|b| b.is_ascii_lowercase()) {
                return None;
            }
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if kept(byte) {
                return None;
            }
            bytes.push(byte);
            rest = &tail[2..];
        } else if kept(first) {
            bytes.push(first);
            rest = tail;
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The path, relative to its bucket directory, of `key`'s file of `kind`.
pub(crate) fn key_path(key: &str, kind: Kind) -> PathBuf {
    let encoded = encode(key);
    let chunks: Vec<&str> = split_chunks(&encoded);
    let (last, dirs) = chunks
        .split_last()
        .map_or(("", &[][..]), |(last, dirs)| (*last, dirs));
    let mut path: PathBuf = dirs.iter().map(|chunk| format!("+{chunk}")).collect();
    path.push(format!("{}{last}", kind.prefix()));
    path
}

/// The key whose value file is at `relative`, if [`key_path`] puts one there: a name that
/// only decodes to a key (`k~41` for `kA`, a short directory segment) is not that key's.
pub(crate) fn key_of(relative: &Path) -> Option<String> {
    let mut encoded = String::new();
    let mut components = relative.iter().peekable();
    while let Some(component) = components.next() {
        let component = component.to_str()?;
        let chunk = match components.peek() {
            Some(_) => component.strip_prefix('+')?,
            None => component.strip_prefix(Kind::Value.prefix())?,
        };
        encoded.push_str(chunk);
    }
    decode(&encoded).filter(|key| key_path(key, Kind::Value) == relative)
}

/// The directory name of bucket `identifier`.
pub(crate) fn bucket_dir(identifier: &str) -> Option<String> {
    let encoded = encode(identifier);
    (encoded.len() < SEGMENT).then(|| format!("b{encoded}"))
}

fn split_chunks(encoded: &str) -> Vec<&str> {
    if encoded.is_empty() {
        return vec![""];
    }
    // `encode` output is ASCII, so byte offsets are char boundaries.
    encoded
        .as_bytes()
        .chunks(SEGMENT)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use std::path::Component;

    use super::*;

    /// Keys a file name could be fooled by; also the fuzz target's seeds.
    pub(super) const HOSTILE: &[&str] = &[
        "",
        ".",
        "..",
        "../../etc/passwd",
        "/abs",
        "a/b",
        "a\\b",
        "nul\0byte",
        "ünïcödé",
        "日本",
        "~41",
        "A",
        "a",
        "k",
        "+x",
        ".tmp-1",
        "con",
        "with space",
        "tab\t",
        "newline\n",
    ];

    #[test]
    fn hostile_keys_map_to_plain_single_segment_names() {
        for key in HOSTILE {
            let path = key_path(key, Kind::Value);
            let components: Vec<Component<'_>> = path.components().collect();
            assert_eq!(components.len(), 1, "{key:?} -> {path:?}");
            assert!(
                matches!(components[0], Component::Normal(_)),
                "{key:?} -> {path:?}"
            );
            let name = path.to_string_lossy();
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-~".contains(&b)),
                "{key:?} -> {name}"
            );
        }
    }

    #[test]
    fn distinct_keys_never_collide_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for key in HOSTILE {
            let path = key_path(key, Kind::Value);
            assert!(seen.insert(path.clone()), "{key:?} collides at {path:?}");
            assert_eq!(key_of(&path).as_deref(), Some(*key));
        }
    }

    #[test]
    fn case_differences_stay_distinct() {
        assert_ne!(key_path("A", Kind::Value), key_path("a", Kind::Value));
        assert_ne!(encode("~41"), encode("A"));
    }

    #[test]
    fn long_keys_split_into_directories_and_round_trip() {
        let key = "é".repeat(300);
        let path = key_path(&key, Kind::Value);
        assert!(path.components().count() > 1);
        assert!(path.iter().all(|part| part.len() <= SEGMENT + 1));
        assert_eq!(key_of(&path), Some(key));
    }

    #[test]
    fn locks_and_temp_files_are_not_keys() {
        assert_eq!(key_of(&key_path("x", Kind::Lock)), None);
        assert_eq!(key_of(Path::new(".tmp-123")), None);
        assert_eq!(decode("~zz"), None);
        assert_eq!(decode("~4a"), None, "only upper-case hex is produced");
        assert_eq!(key_of(Path::new("k~41")), None, "`A` is never escaped");
        assert_eq!(
            key_of(Path::new("+ab/kcd")),
            None,
            "directory segments are full"
        );
    }

    #[test]
    fn buckets_are_prefixed_and_bounded() {
        assert_eq!(bucket_dir("").as_deref(), Some("b"));
        assert_eq!(bucket_dir("../x").as_deref(), Some("b~2E~2E~2Fx"));
        assert_eq!(bucket_dir(&"x".repeat(500)), None);
    }
}
