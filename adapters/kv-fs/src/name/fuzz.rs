//! Fuzzing the key-to-file-name mapping with proptest: every key and bucket name maps to
//! relative paths of plain, safe segments that stay inside their directory, and the mapping
//! is one to one: a key comes back from its path, no two keys or kinds share a path or nest
//! in one another's, and only the path a key maps to reads back as that key.

use std::collections::HashSet;
use std::path::{Component, Path};

use proptest::prelude::*;

use super::*;

const KINDS: [Kind; 3] = [Kind::Value, Kind::Lock, Kind::LockBreak];

/// Keys on an edge: what a path could be fooled by (`..`, separators, NUL), escapes of bytes
/// that need none, and lengths around [`SEGMENT`], where an escape can straddle two segments.
fn seed_keys() -> Vec<String> {
    let mut keys: Vec<String> = super::tests::HOSTILE
        .iter()
        .map(|&key| key.to_owned())
        .collect();
    for len in [SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT] {
        keys.push("a".repeat(len));
        keys.push(format!("{}/", "a".repeat(len - 1)));
        keys.push(format!("{}é", "a".repeat(len - 2)));
    }
    keys.extend(["~", "~~", "~4", "+", "+a", "b", "l", "x", "-", "_"].map(String::from));
    keys
}

/// Relative paths that look like what [`key_path`] makes but are not: escapes of bytes that
/// are kept as they are, lower-case hex, short directory segments, stray prefixes.
const NON_CANONICAL: &[&str] = &[
    "", "k~41", "k~2d", "k~5F", "+ab/kcd", "+/k", "kab/kcd", "+a", "k~", "k~4", "kA~", "k.",
    ".tmp-1",
];

/// `path` is relative and every segment a plain name of safe bytes.
fn plain_segments(path: &Path) -> Result<(), TestCaseError> {
    prop_assert!(path.components().count() >= 1, "{path:?}");
    for component in path.components() {
        let Component::Normal(segment) = component else {
            return Err(TestCaseError::fail(format!("{path:?} has {component:?}")));
        };
        let segment = segment.to_string_lossy();
        prop_assert!((1..=SEGMENT + 1).contains(&segment.len()), "{path:?}");
        prop_assert!(
            segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-~+".contains(&b)),
            "{path:?}"
        );
    }
    Ok(())
}

/// Everything that must hold of one key.
fn maps_safely(key: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(decode(&encode(key)), Some(key.to_owned()));
    let mut paths = HashSet::new();
    for kind in KINDS {
        let path = key_path(key, kind);
        plain_segments(&path)?;
        prop_assert!(paths.insert(path.clone()), "two kinds share {path:?}");
        let expected = (kind == Kind::Value).then(|| key.to_owned());
        prop_assert_eq!(key_of(&path), expected, "{:?}", path);
    }
    Ok(())
}

/// Two different keys, or one key as two kinds, never share a path, and neither path is a
/// directory on the way to the other.
fn apart(first: &str, second: &str) -> Result<(), TestCaseError> {
    for (a, b) in KINDS
        .iter()
        .flat_map(|a| KINDS.iter().map(move |b| (*a, *b)))
    {
        if first == second && a == b {
            continue;
        }
        let (one, other) = (key_path(first, a), key_path(second, b));
        prop_assert!(
            one != other,
            "{first:?} {a:?} and {second:?} {b:?} share {one:?}"
        );
        prop_assert!(
            !other.starts_with(&one),
            "{one:?} would be a directory of {other:?}"
        );
    }
    if first != second
        && let (Some(one), Some(other)) = (bucket_dir(first), bucket_dir(second))
    {
        prop_assert_ne!(one, other);
    }
    Ok(())
}

/// Keys of any characters, short and long enough to span directories.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => "[a-zA-Z0-9_~+./-]{0,12}",
        1 => prop::collection::vec(any::<char>(), SEGMENT / 3..SEGMENT * 2)
            .prop_map(String::from_iter),
    ]
}

/// Two keys that are often near each other: equal, one the other's encoding, a prefix, or
/// differing in case.
fn key_pair() -> impl Strategy<Value = (String, String)> {
    (key(), key(), 0..5_u8).prop_map(|(first, other, relation)| {
        let second = match relation {
            0 => first.clone(),
            1 => encode(&first),
            2 => first.chars().take(first.chars().count() / 2).collect(),
            3 => first.to_ascii_uppercase(),
            _ => other,
        };
        (first, second)
    })
}

/// Relative paths made of segments like [`key_path`]'s, and of any text.
fn lookalike_path() -> impl Strategy<Value = PathBuf> {
    let segment = prop_oneof!["[+klxb.][A-Za-z0-9_~+-]{0,6}", any::<String>()];
    prop::collection::vec(segment, 1..4).prop_map(PathBuf::from_iter)
}

proptest! {
    #[test]
    fn any_key_maps_to_plain_segments_and_back(key in key()) {
        maps_safely(&key)?;
    }

    #[test]
    fn distinct_keys_and_kinds_never_share_or_nest_paths((first, second) in key_pair()) {
        apart(&first, &second)?;
    }

    #[test]
    fn only_the_path_a_key_maps_to_reads_back_as_that_key(path in lookalike_path()) {
        if let Some(key) = key_of(&path) {
            prop_assert_eq!(key_path(&key, Kind::Value), path);
        }
    }

    #[test]
    fn any_bucket_name_is_one_plain_segment(identifier in key()) {
        if let Some(dir) = bucket_dir(&identifier) {
            plain_segments(Path::new(&dir))?;
            prop_assert!(dir.starts_with('b'));
            prop_assert_eq!(Path::new(&dir).components().count(), 1);
        }
    }
}

#[test]
fn the_seed_corpus_maps_safely_and_apart() {
    let keys = seed_keys();
    for first in &keys {
        if let Err(error) = maps_safely(first) {
            panic!("{first:?}: {error}");
        }
        for second in &keys {
            if let Err(error) = apart(first, second) {
                panic!("{first:?} and {second:?}: {error}");
            }
        }
    }
}

#[test]
fn paths_that_no_key_maps_to_read_back_as_no_key() {
    for path in NON_CANONICAL {
        assert_eq!(key_of(Path::new(path)), None, "{path}");
    }
}
