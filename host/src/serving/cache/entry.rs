//! The entry format, shared by cache entries and precompiled artifacts: a header that says
//! what the artifact is for and carries its sha256, then the artifact. An entry is handed
//! to wasmtime only once all of it checks out.
//!
//! ```text
//!  "task-host-cwasm\0" | format u32 | component sha256 | engine hash | artifact len u64
//!                      | artifact sha256 | artifact (Component::serialize)
//! ```

use std::hash::{Hash as _, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::serving::digest::unhex;

/// What every entry starts with.
const MAGIC: &[u8; 16] = b"task-host-cwasm\0";
/// The layout of the header below; a change to it is a new number.
const FORMAT: u32 = 1;
/// Magic, format, component sha256, engine hash, artifact length, artifact sha256.
const HEADER_LEN: usize = 16 + 4 + 32 + 32 + 8 + 32;

/// What an entry must say it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    component: [u8; 32],
    engine: [u8; 32],
}

impl Key {
    /// The key of the component with hex sha256 `digest` for `engine`.
    pub(super) fn new(digest: &str, engine: [u8; 32]) -> anyhow::Result<Self> {
        Ok(Self {
            component: unhex(digest).context("the component digest is not sha256 hex")?,
            engine,
        })
    }
}

/// `{digest}-{tag}.cwasm` in `dir`, or `None` for a name that could climb out of it.
pub(super) fn path(dir: &Path, digest: &str, tag: &str) -> Option<PathBuf> {
    let safe = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    };
    (safe(digest) && safe(tag)).then(|| dir.join(format!("{digest}-{tag}.cwasm")))
}

/// An entry: header, then the artifact.
pub(super) fn encode(key: &Key, artifact: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(HEADER_LEN + artifact.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&FORMAT.to_le_bytes());
    entry.extend_from_slice(&key.component);
    entry.extend_from_slice(&key.engine);
    entry.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    entry.extend_from_slice(&Sha256::digest(artifact));
    entry.extend_from_slice(artifact);
    entry
}

/// The artifact of `entry`, if the entry is whole and is for `key`; otherwise what is wrong.
fn verify<'a>(entry: &'a [u8], key: &Key) -> anyhow::Result<&'a [u8]> {
    let mut rest = entry;
    let mut take = |len: usize| -> anyhow::Result<&'a [u8]> {
        anyhow::ensure!(rest.len() >= len, "truncated: {} bytes", entry.len());
        let (head, tail) = rest.split_at(len);
        rest = tail;
        Ok(head)
    };
    anyhow::ensure!(take(MAGIC.len())? == MAGIC, "not a task-host cache entry");
    let format = take(4)?;
    anyhow::ensure!(
        format == FORMAT.to_le_bytes(),
        "written in another format ({format:?})"
    );
    anyhow::ensure!(take(32)? == key.component, "it is for another component");
    anyhow::ensure!(take(32)? == key.engine, "it is for another engine");
    let len = u64::from_le_bytes(take(8)?.try_into().context("eight bytes")?);
    let checksum = take(32)?;
    anyhow::ensure!(
        u64::try_from(rest.len()).ok() == Some(len),
        "its artifact should be {len} bytes, but {} follow the header",
        rest.len()
    );
    anyhow::ensure!(
        Sha256::digest(rest).as_slice() == checksum,
        "its artifact does not match its sha256"
    );
    Ok(rest)
}

/// The verified entry at `path` for `key`: `Ok(None)` if there is none, `Err` if there is
/// one that must not be trusted or that wasmtime cannot load.
#[expect(
    unsafe_code,
    reason = "deserializing machine code this host, or the image's build, wrote and verified"
)]
pub(super) fn read(engine: &Engine, path: &Path, key: &Key) -> anyhow::Result<Option<Component>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).context("cannot read it"),
    };
    let artifact = verify(&bytes, key)?;
    // SAFETY: `verify` checked that these are exactly the bytes `Component::serialize` (or
    // `Engine::precompile_component`) produced for this component under this key, and the
    // directory is one only this user (or, for precompiled artifacts, root) can write to.
    // Whether this engine can run them is wasmtime's own check, which errs rather than
    // loading code built for another CPU or configuration.
    let component = unsafe { Component::deserialize(engine, artifact) }
        .map_err(anyhow::Error::from)
        .context("wasmtime refused it")?;
    Ok(Some(component))
}

/// The engine's compatibility hash, folded through sha256 so that it has a fixed width and
/// does not depend on std's hasher.
pub(super) fn engine_hash(engine: &Engine) -> [u8; 32] {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// A [`Hasher`] that feeds sha256; its `finish` is never what is used.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(
            digest
                .get(..8)
                .and_then(|bytes| bytes.try_into().ok())
                .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = Key {
        component: [1; 32],
        engine: [2; 32],
    };

    #[test]
    fn an_entry_reads_back_as_its_artifact() -> anyhow::Result<()> {
        let entry = encode(&KEY, b"machine code");
        assert_eq!(verify(&entry, &KEY)?, b"machine code");
        Ok(())
    }

    #[test]
    fn every_truncation_is_refused() {
        let entry = encode(&KEY, b"machine code");
        for len in 0..entry.len() {
            assert!(
                verify(entry.get(..len).unwrap_or_default(), &KEY).is_err(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let entry = encode(&KEY, b"machine code");
        for at in 0..entry.len() {
            let mut corrupt = entry.clone();
            if let Some(byte) = corrupt.get_mut(at) {
                *byte ^= 0x10;
            }
            assert!(verify(&corrupt, &KEY).is_err(), "byte {at}");
        }
    }

    #[test]
    fn an_entry_for_another_engine_or_component_is_refused() {
        let entry = encode(&KEY, b"machine code");
        let engine = Key {
            engine: [3; 32],
            ..KEY
        };
        let error = verify(&entry, &engine).expect_err("another engine");
        assert!(format!("{error}").contains("another engine"), "{error}");
        let component = Key {
            component: [3; 32],
            ..KEY
        };
        let error = verify(&entry, &component).expect_err("another component");
        assert!(format!("{error}").contains("another component"), "{error}");
    }

    #[test]
    fn a_foreign_file_and_trailing_bytes_are_refused() {
        assert!(verify(b"\0asm\x0d\0\x01\0 a raw component", &KEY).is_err());
        let mut entry = encode(&KEY, b"machine code");
        entry.push(0);
        assert!(verify(&entry, &KEY).is_err());
    }

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        let dir = Path::new("/cache");
        assert_eq!(
            path(dir, "ab12", "x86_64"),
            Some(PathBuf::from("/cache/ab12-x86_64.cwasm"))
        );
        assert_eq!(path(dir, "../ab", "x86_64"), None);
        assert_eq!(path(dir, "ab", "a/b"), None);
        assert_eq!(path(dir, "", "x86_64"), None);
    }
}
