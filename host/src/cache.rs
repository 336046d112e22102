//! The compile cache: components compiled once by Cranelift are kept on disk, so that a
//! restart, or a swap back to a version served before, loads machine code in milliseconds
//! instead of compiling it again.
//!
//! An entry is keyed by the component's sha256 and the engine's compatibility hash
//! ([`Engine::precompile_compatibility_hash`]): another wasmtime, another CPU feature set or
//! another engine configuration makes another key. Loading an entry is
//! [`Component::deserialize`], which is `unsafe`: wasmtime runs the machine code it is given.
//! So the cache trusts only what this host wrote itself:
//!
//! - the directory is created `0700`, and one that another user owns or can write to is not
//!   used at all;
//! - entries are written to a `0600` temporary file and renamed into place, so no reader
//!   sees half an entry;
//! - every entry carries a header with its key and the sha256 of the artifact, and is
//!   deserialized only once all of it checks out. A corrupt, truncated or foreign entry is
//!   logged, compiled afresh and rewritten; it is never handed to wasmtime.
//!
//! ```text
//!  "task-host-cwasm\0" | format u32 | component sha256 | engine hash | artifact len u64
//!                      | artifact sha256 | artifact (Component::serialize)
//! ```
//!
//! The cache is an accelerator, never a requirement: a directory that cannot be created or
//! written (read-only, full) is a warning, and the component is served compiled.

use std::fs::DirBuilder;
use std::hash::{Hash as _, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::component::{hex, short};
use crate::metrics::Metrics;

/// What every entry starts with.
const MAGIC: &[u8; 16] = b"task-host-cwasm\0";
/// The layout of the header below; a change to it is a new number.
const FORMAT: u32 = 1;
/// Magic, format, component sha256, engine hash, artifact length, artifact sha256.
const HEADER_LEN: usize = 16 + 4 + 32 + 32 + 8 + 32;

/// The compile cache of one engine.
pub(crate) struct CompileCache {
    /// `None` when the cache is off, by choice or because its directory is unusable.
    dir: Option<PathBuf>,
    /// The engine's compatibility hash, as a sha256.
    engine: [u8; 32],
    metrics: Arc<Metrics>,
}

/// How a component came to be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Read from a verified cache entry.
    Cache,
    /// Compiled by Cranelift.
    Compiled,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`; `None` turns it off. A directory
    /// that cannot be made, or that is not this user's alone to write, turns it off with a
    /// warning.
    pub(crate) fn open(dir: Option<&Path>, engine: &Engine, metrics: Arc<Metrics>) -> Self {
        let dir = dir.and_then(|dir| match prepare(dir) {
            Ok(()) => Some(dir.to_owned()),
            Err(error) => {
                tracing::warn!("compile cache off: {error:#}");
                None
            }
        });
        Self {
            dir,
            engine: engine_hash(engine),
            metrics,
        }
    }

    /// The directory entries are kept in, if the cache is on.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The component with sha256 `digest` compiled for `engine`: from the cache if a valid
    /// entry is there, else from `compile`, whose result is then written to the cache. One
    /// log line says which, and how long it took.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<(Component, Source)> {
        let started = Instant::now();
        let short = short(digest);
        let path = self.path(digest);
        let cache = match &path {
            None => "off",
            Some(path) => match self.read(engine, path, digest) {
                Ok(Some(component)) => {
                    self.metrics.compile_cache_lookup("hit");
                    tracing::info!(
                        sha256 = %short,
                        cache = %"hit",
                        took_ms = started.elapsed().as_secs_f64() * 1000.0,
                        "component loaded from the compile cache"
                    );
                    return Ok((component, Source::Cache));
                }
                Ok(None) => {
                    self.metrics.compile_cache_lookup("miss");
                    "miss"
                }
                Err(reason) => {
                    self.metrics.compile_cache_lookup("invalid");
                    tracing::warn!(
                        sha256 = %short,
                        "compile cache entry {} refused, compiling instead: {reason:#}",
                        path.display()
                    );
                    "invalid"
                }
            },
        };
        let component = compile()?;
        tracing::info!(
            sha256 = %short,
            cache = %cache,
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "component compiled"
        );
        if let Some(path) = path
            && let Err(error) = self.write(&component, &path, digest)
        {
            self.metrics.compile_cache_write_failed();
            tracing::warn!(
                "cannot write the compile cache entry {}: {error:#}",
                path.display()
            );
        }
        Ok((component, Source::Compiled))
    }

    /// Where the entry for `digest` lives. Both halves of the key are in the name, so that
    /// engines of different wasmtime builds sharing a directory do not overwrite each other.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        // The digest is our own hex, but a name must never climb out of the directory.
        if digest.is_empty() || !digest.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        Some(dir.join(format!(
            "{digest}-{}.cwasm",
            hex(self.engine.get(..8).unwrap_or(&self.engine))
        )))
    }

    /// The verified entry at `path`: `Ok(None)` if there is none, `Err` if there is one that
    /// must not be trusted.
    #[expect(
        unsafe_code,
        reason = "deserializing machine code this host wrote and verified"
    )]
    fn read(
        &self,
        engine: &Engine,
        path: &Path,
        digest: &str,
    ) -> anyhow::Result<Option<Component>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).context("cannot read it"),
        };
        let artifact = verify(&bytes, &self.key(digest)?)?;
        // SAFETY: `verify` checked that these are exactly the bytes this host's
        // `Component::serialize` produced for this component on an engine with this
        // compatibility hash, and wrote into a directory only this user can write to.
        let component = unsafe { Component::deserialize(engine, artifact) }
            .map_err(anyhow::Error::from)
            .context("wasmtime refused it")?;
        Ok(Some(component))
    }

    /// Serializes `component` into a temporary file beside `path` and renames it into place.
    fn write(&self, component: &Component, path: &Path, digest: &str) -> anyhow::Result<()> {
        let artifact = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("cannot serialize the component")?;
        let entry = encode(&self.key(digest)?, &artifact);
        let dir = path.parent().context("an entry path has a directory")?;
        // tempfile creates it 0600 under a name no other writer picks.
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        file.write_all(&entry).context("cannot write the entry")?;
        file.persist(path).context("cannot rename the entry")?;
        Ok(())
    }

    /// The binary key of the component with hex sha256 `digest`.
    fn key(&self, digest: &str) -> anyhow::Result<Key> {
        Ok(Key {
            component: unhex(digest).context("the component digest is not sha256 hex")?,
            engine: self.engine,
        })
    }
}

/// What an entry must say it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    component: [u8; 32],
    engine: [u8; 32],
}

/// An entry: header, then the artifact.
fn encode(key: &Key, artifact: &[u8]) -> Vec<u8> {
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

/// Creates `dir` (`0700`) if need be, and checks that only this user can write to it.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let metadata =
        std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    anyhow::ensure!(
        metadata.uid() == me,
        "{} belongs to user {}, not to this one ({me})",
        dir.display(),
        metadata.uid()
    );
    anyhow::ensure!(
        metadata.mode() & 0o022 == 0,
        "{} can be written by other users (mode {:o})",
        dir.display(),
        metadata.mode() & 0o777
    );
    Ok(())
}

/// The engine's compatibility hash, folded through sha256 so that it has a fixed width and
/// does not depend on std's hasher.
fn engine_hash(engine: &Engine) -> [u8; 32] {
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

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    if text.len() != 64 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
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

    /// The empty component (wasmtime here parses binaries only, not text), to go through
    /// wasmtime's compiler and loader.
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> anyhow::Result<Engine> {
        Ok(Engine::default())
    }

    #[test]
    fn a_second_load_is_a_hit_and_a_corrupt_entry_is_rewritten() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache_dir = dir.path().join("cache");
        let engine = engine()?;
        let cache = CompileCache::open(Some(&cache_dir), &engine, Arc::default());
        let digest = "ab".repeat(32);
        let compile = || Component::new(&engine, COMPONENT);
        let (_, first) = cache.load(&engine, &digest, compile)?;
        assert_eq!(first, Source::Compiled);
        let (_, second) = cache.load(&engine, &digest, compile)?;
        assert_eq!(second, Source::Cache);

        let mode = std::fs::metadata(&cache_dir)?.mode() & 0o777;
        assert_eq!(mode, 0o700, "the directory is the user's alone");
        let path = cache.path(&digest).context("the cache is on")?;
        assert_eq!(std::fs::metadata(&path)?.mode() & 0o777, 0o600);

        let mut entry = std::fs::read(&path)?;
        if let Some(last) = entry.last_mut() {
            *last ^= 1;
        }
        std::fs::write(&path, &entry)?;
        let (_, corrupt) = cache.load(&engine, &digest, compile)?;
        assert_eq!(
            corrupt,
            Source::Compiled,
            "a corrupt entry is compiled afresh"
        );
        let (_, rewritten) = cache.load(&engine, &digest, compile)?;
        assert_eq!(rewritten, Source::Cache, "and rewritten");
        Ok(())
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        let cache = CompileCache::open(Some(dir.path()), &engine()?, Arc::default());
        assert_eq!(cache.dir(), None);
        Ok(())
    }

    #[test]
    fn an_entry_that_cannot_be_read_or_written_still_compiles() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let cache = CompileCache::open(Some(dir.path()), &engine, Arc::default());
        let digest = "cd".repeat(32);
        // A directory where the entry belongs: neither a read nor a rename over it can
        // succeed, whoever runs the test (root ignores permission bits).
        std::fs::create_dir(cache.path(&digest).context("the cache is on")?)?;
        let compile = || Component::new(&engine, COMPONENT);
        assert_eq!(cache.load(&engine, &digest, compile)?.1, Source::Compiled);
        assert_eq!(cache.load(&engine, &digest, compile)?.1, Source::Compiled);
        Ok(())
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(unhex(&digest).map(|bytes| hex(&bytes)), Some(digest));
        assert_eq!(unhex("xyz"), None);
    }
}
