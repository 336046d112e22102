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
//! written (read-only, full) is a warning, and the component is served compiled. It keeps to
//! a budget in bytes: after each write, the entries used least recently are removed until
//! the rest fit (a hit renews an entry's modification time, so that is when it was last
//! used).
//!
//! Precompiled artifacts are the same entries, made ahead of time by `task-host precompile`
//! for a target triple rather than for this engine: the production image ships one for
//! its own architecture. The cache's own key cannot find them, since this engine's
//! compatibility hash covers the CPU features it found on this machine, and a precompiled
//! artifact assumes none. So they are keyed by architecture instead (`{sha256}-{arch}.cwasm`,
//! the arch as Rust names it), and wasmtime's own check on loading decides whether this
//! engine can run one; where it cannot, the component is compiled. They are trusted the way
//! the binary is: a directory, and files, that only root or this user can write.
//!
//! Lookup order: the cache (code for this very CPU), then a precompiled artifact, then
//! Cranelift, whose result goes to the cache.

use std::fs::DirBuilder;
use std::hash::{Hash as _, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::component::{Candidate, hex, short};
use crate::ops::metrics::Metrics;

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
    /// The most bytes of entries it keeps.
    max_size: u64,
    /// Where precompiled artifacts are looked for, if anywhere.
    precompiled: Option<PathBuf>,
    /// The engine's compatibility hash, as a sha256.
    engine: [u8; 32],
    metrics: Arc<Metrics>,
}

/// How a component came to be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Read from a verified cache entry.
    Cache,
    /// Read from a verified precompiled artifact.
    Precompiled,
    /// Compiled by Cranelift.
    Compiled,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`; `None` turns it off. A directory
    /// that cannot be made, or that is not this user's alone to write, turns it off with a
    /// warning.
    ///
    /// `precompiled` is a directory of artifacts made by `task-host precompile`. Unlike the
    /// cache it is named on purpose, so one that is missing or that others can write to is
    /// an error.
    pub(crate) fn open(
        dir: Option<&Path>,
        max_size: u64,
        precompiled: Option<&Path>,
        engine: &Engine,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let dir = dir.and_then(|dir| match prepare(dir) {
            Ok(()) => Some(dir.to_owned()),
            Err(error) => {
                tracing::warn!("compile cache off: {error:#}");
                None
            }
        });
        if let Some(precompiled) = precompiled {
            trusted(precompiled).context("--precompiled-dir")?;
        }
        Ok(Self {
            dir,
            max_size,
            precompiled: precompiled.map(Path::to_owned),
            engine: engine_hash(engine),
            metrics,
        })
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
                    touch(path);
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
        if let Some(component) = self.precompiled(engine, digest) {
            tracing::info!(
                sha256 = %short,
                cache = %cache,
                took_ms = started.elapsed().as_secs_f64() * 1000.0,
                "component loaded precompiled"
            );
            return Ok((component, Source::Precompiled));
        }
        let component = compile()?;
        tracing::info!(
            sha256 = %short,
            cache = %cache,
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "component compiled"
        );
        if let Some(path) = path {
            match self.write(&component, &path, digest) {
                Ok(size) => self.prune(&path, size),
                Err(error) => {
                    self.metrics.compile_cache_write_failed();
                    tracing::warn!(
                        "cannot write the compile cache entry {}: {error:#}",
                        path.display()
                    );
                }
            }
        }
        Ok((component, Source::Compiled))
    }

    /// Where the entry for `digest` lives. Both halves of the key are in the name, so that
    /// engines of different wasmtime builds sharing a directory do not overwrite each other.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        entry_path(
            self.dir.as_ref()?,
            digest,
            &hex(self.engine.get(..8).unwrap_or(&self.engine)),
        )
    }

    /// The precompiled artifact for `digest` and this machine's architecture, if there is
    /// one this engine can load. One that is there but cannot be used is logged.
    fn precompiled(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let arch = std::env::consts::ARCH;
        let path = entry_path(self.precompiled.as_ref()?, digest, arch)?;
        // No artifact is the common case (any component swapped in later): not a warning.
        if matches!(path.try_exists(), Ok(false)) {
            return None;
        }
        let read = trusted(&path)
            .and_then(|()| read(engine, &path, &Key::new(digest, precompiled_key(arch))?));
        match read {
            Ok(component) => component,
            Err(reason) => {
                tracing::warn!(
                    sha256 = %short(digest),
                    "precompiled artifact {} refused, compiling instead: {reason:#}",
                    path.display()
                );
                None
            }
        }
    }

    /// The verified entry at `path`: `Ok(None)` if there is none, `Err` if there is one that
    /// must not be trusted.
    fn read(
        &self,
        engine: &Engine,
        path: &Path,
        digest: &str,
    ) -> anyhow::Result<Option<Component>> {
        read(engine, path, &self.key(digest)?)
    }

    /// Serializes `component` into a temporary file beside `path` and renames it into place.
    /// Returns the entry's size.
    fn write(&self, component: &Component, path: &Path, digest: &str) -> anyhow::Result<u64> {
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
        Ok(entry.len() as u64)
    }

    /// Removes the entries used least recently until the cache fits its budget, sparing
    /// `written`, the entry just made, of `size` bytes. Only `.cwasm` files are entries.
    fn prune(&self, written: &Path, size: u64) {
        let Some(dir) = written.parent() else {
            return;
        };
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(error) => {
                tracing::warn!("cannot list the compile cache {}: {error}", dir.display());
                return;
            }
        };
        let others = listing.filter_map(|entry| {
            let path = entry.ok()?.path();
            let metadata = std::fs::symlink_metadata(&path).ok()?;
            let entry = path.extension()? == "cwasm" && metadata.is_file() && path != written;
            entry.then_some(Entry {
                used: metadata.modified().ok()?,
                size: metadata.len(),
                path,
            })
        });
        let budget = self.max_size.saturating_sub(size);
        for path in least_recently_used_over(others.collect(), budget) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(
                    "compile cache entry {} removed: the cache is over its {} bytes",
                    path.display(),
                    self.max_size
                ),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(
                    "cannot remove the compile cache entry {}: {error}",
                    path.display()
                ),
            }
        }
    }

    /// The binary key of the component with hex sha256 `digest`.
    fn key(&self, digest: &str) -> anyhow::Result<Key> {
        Key::new(digest, self.engine)
    }
}

/// Compiles `candidate` with `compiler` (a [`crate::runtime::compiler`] for `target`) and
/// writes it to `dir` as the precompiled artifact that `serve --precompiled-dir` finds on a
/// machine of the target's architecture. Returns the file written.
pub(crate) fn precompile(
    compiler: &Engine,
    target: &str,
    candidate: &Candidate,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let arch = target.split('-').next().unwrap_or_default();
    let path = entry_path(dir, &candidate.digest, arch)
        .with_context(|| format!("cannot name an artifact for target {target:?}"))?;
    let artifact = candidate.precompile(compiler)?;
    let key = Key::new(&candidate.digest, precompiled_key(arch))?;
    DirBuilder::new()
        .recursive(true)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, encode(&key, &artifact))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A cache entry, as pruning sees it.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    size: u64,
    /// Its modification time: when it was written, or last read back.
    used: SystemTime,
}

/// The entries to remove, least recently used first, so that the rest fit in `budget` bytes.
fn least_recently_used_over(mut entries: Vec<Entry>, budget: u64) -> Vec<PathBuf> {
    let mut total: u64 = entries.iter().map(|entry| entry.size).sum();
    entries.sort_by_key(|entry| entry.used);
    entries
        .into_iter()
        .take_while(|entry| {
            let over = total > budget;
            total = total.saturating_sub(entry.size);
            over
        })
        .map(|entry| entry.path)
        .collect()
}

/// Marks the entry at `path` as used now. A failure only makes it older to pruning.
fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
}

/// `{digest}-{tag}.cwasm` in `dir`, or `None` for a name that could climb out of it.
fn entry_path(dir: &Path, digest: &str, tag: &str) -> Option<PathBuf> {
    let safe = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    };
    (safe(digest) && safe(tag)).then(|| dir.join(format!("{digest}-{tag}.cwasm")))
}

/// The verified entry at `path` for `key`: `Ok(None)` if there is none, `Err` if there is
/// one that must not be trusted or that wasmtime cannot load.
#[expect(
    unsafe_code,
    reason = "deserializing machine code this host, or the image's build, wrote and verified"
)]
fn read(engine: &Engine, path: &Path, key: &Key) -> anyhow::Result<Option<Component>> {
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

/// The engine half of a precompiled artifact's key: its architecture alone, since which
/// CPU features it assumes is for wasmtime to check.
fn precompiled_key(arch: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"task-host precompiled for ")
        .chain_update(arch)
        .finalize()
        .into()
}

/// What an entry must say it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    component: [u8; 32],
    engine: [u8; 32],
}

impl Key {
    /// The key of the component with hex sha256 `digest` for `engine`.
    fn new(digest: &str, engine: [u8; 32]) -> anyhow::Result<Self> {
        Ok(Self {
            component: unhex(digest).context("the component digest is not sha256 hex")?,
            engine,
        })
    }
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
    writable_only_by(dir, &[rustix::process::geteuid().as_raw()])
}

/// Checks that `path` (a precompiled directory or artifact) exists and that only root or
/// this user can change it: what is loaded from there runs as machine code.
fn trusted(path: &Path) -> anyhow::Result<()> {
    writable_only_by(path, &[0, rustix::process::geteuid().as_raw()])
}

/// Checks that `path` belongs to one of `owners` and that no other user can write to it.
fn writable_only_by(path: &Path, owners: &[u32]) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        owners.contains(&metadata.uid()),
        "{} belongs to user {}, which may not write what this host runs (only {owners:?})",
        path.display(),
        metadata.uid()
    );
    anyhow::ensure!(
        metadata.mode() & 0o022 == 0,
        "{} can be written by other users (mode {:o})",
        path.display(),
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
        let cache = CompileCache::open(Some(&cache_dir), u64::MAX, None, &engine, Arc::default())?;
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
        let cache =
            CompileCache::open(Some(dir.path()), u64::MAX, None, &engine()?, Arc::default())?;
        assert_eq!(cache.dir(), None);
        Ok(())
    }

    #[test]
    fn an_entry_that_cannot_be_read_or_written_still_compiles() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let cache = CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
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
    fn a_precompiled_artifact_loads_on_an_engine_that_found_its_cpu() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("empty.wasm");
        std::fs::write(&file, COMPONENT)?;
        let candidate = Candidate::read(&file)?;
        let target = format!("{}-unknown-linux", std::env::consts::ARCH);
        let compiler = crate::runtime::compiler(&target)?;
        let precompiled = dir.path().join("precompiled");
        let artifact = precompile(&compiler, &target, &candidate, &precompiled)?;

        // The serving engine infers this CPU's features, so its own key differs, and the
        // cache (off here) could not have found the artifact.
        let capacity = crate::pool::Capacity::new(1, candidate.shape);
        let engine = crate::runtime::engine(capacity)?;
        let cache =
            CompileCache::open(None, u64::MAX, Some(&precompiled), &engine, Arc::default())?;
        let compile = || candidate.compile(&engine);
        let (_, source) = cache.load(&engine, &candidate.digest, compile)?;
        assert_eq!(source, Source::Precompiled);

        let mut entry = std::fs::read(&artifact)?;
        if let Some(byte) = entry.get_mut(HEADER_LEN + 1) {
            *byte ^= 1;
        }
        std::fs::write(&artifact, &entry)?;
        let (_, source) = cache.load(&engine, &candidate.digest, compile)?;
        assert_eq!(source, Source::Compiled, "a corrupt artifact is compiled");

        std::fs::set_permissions(&precompiled, std::fs::Permissions::from_mode(0o777))?;
        let error = CompileCache::open(None, u64::MAX, Some(&precompiled), &engine, Arc::default())
            .err()
            .context("a directory others can write is refused")?;
        assert!(
            format!("{error:#}").contains("written by other users"),
            "{error:#}"
        );
        Ok(())
    }

    #[test]
    fn pruning_removes_the_least_recently_used_until_the_rest_fit() {
        let at = |secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let entry = |name: &str, size, used| Entry {
            path: PathBuf::from(name),
            size,
            used: at(used),
        };
        let entries = || {
            vec![
                entry("new", 10, 30),
                entry("old", 10, 10),
                entry("middle", 10, 20),
            ]
        };
        let remove = |budget| least_recently_used_over(entries(), budget);
        assert_eq!(remove(30), Vec::<PathBuf>::new());
        assert_eq!(remove(29), [PathBuf::from("old")]);
        assert_eq!(remove(20), [PathBuf::from("old")]);
        assert_eq!(remove(15), [PathBuf::from("old"), PathBuf::from("middle")]);
        assert_eq!(remove(0).len(), 3);
    }

    #[test]
    fn a_write_over_the_budget_removes_the_older_entry() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let compile = || Component::new(&engine, COMPONENT);
        let (first, second) = ("ab".repeat(32), "cd".repeat(32));
        let unbounded =
            CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
        unbounded.load(&engine, &first, compile)?;
        let size = std::fs::metadata(unbounded.path(&first).context("on")?)?.len();

        // Room for one entry and a half: writing the second leaves no room for the first.
        let cache = CompileCache::open(
            Some(dir.path()),
            size * 3 / 2,
            None,
            &engine,
            Arc::default(),
        )?;
        assert_eq!(cache.load(&engine, &first, compile)?.1, Source::Cache);
        assert_eq!(cache.load(&engine, &second, compile)?.1, Source::Compiled);
        assert!(
            !cache.path(&first).context("on")?.exists(),
            "the first is removed"
        );
        assert_eq!(cache.load(&engine, &second, compile)?.1, Source::Cache);
        Ok(())
    }

    #[test]
    fn a_hit_marks_its_entry_as_used_now() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let compile = || Component::new(&engine, COMPONENT);
        let cache = CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
        let digest = "ab".repeat(32);
        cache.load(&engine, &digest, compile)?;
        let path = cache.path(&digest).context("the cache is on")?;
        let long_ago = SystemTime::UNIX_EPOCH;
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(long_ago)?;
        assert_eq!(cache.load(&engine, &digest, compile)?.1, Source::Cache);
        let used = std::fs::metadata(&path)?.modified()?;
        assert!(
            used.duration_since(long_ago)?.as_secs() > 86_400,
            "{used:?}"
        );
        Ok(())
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(unhex(&digest).map(|bytes| hex(&bytes)), Some(digest));
        assert_eq!(unhex("xyz"), None);
    }
}
