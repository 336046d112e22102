//! The compile cache: components compiled once by Cranelift are kept on disk, so that a
//! restart, or a swap back to a version served before, loads machine code in milliseconds
//! instead of compiling it again. It knows components only by digest and bytes, and is a
//! leaf: nothing in it knows how a component is read or served.
//!
//! An entry is keyed by the component's sha256 and the engine's compatibility hash
//! ([`Engine::precompile_compatibility_hash`]): another wasmtime, another CPU feature set or
//! another engine configuration makes another key. Loading an entry is
//! [`Component::deserialize`], which is `unsafe`: wasmtime runs the machine code it is given.
//! So the cache trusts only what this host wrote itself:
//!
//! - the directory is created `0700`, and one that another user owns or can write to is not
//!   used at all ([`trust`]);
//! - entries are written to a `0600` temporary file and renamed into place, so no reader
//!   sees half an entry;
//! - every entry carries a header with its key and the sha256 of the artifact, and is
//!   deserialized only once all of it checks out ([`entry`]). A corrupt, truncated or
//!   foreign entry is logged, compiled afresh and rewritten; it is never handed to wasmtime.
//!
//! The cache is an accelerator, never a requirement: a directory that cannot be created or
//! written (read-only, full) is a warning, and the component is served compiled. It keeps to
//! a budget in bytes ([`prune`]). Only versions that are served are written
//! ([`CompileCache::keep`]): a candidate that is rejected neither takes room nor evicts the
//! entry of the version being served.
//!
//! Lookup order: the cache (code for this very CPU), then an artifact `task-host precompile`
//! made ahead of time ([`precompiled`]), then Cranelift, whose result goes to the cache.

mod entry;
pub(crate) mod precompiled;
mod prune;
mod trust;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::ops::metrics::Metrics;
use crate::serving::digest::{hex, short};
use entry::Key;

/// The compile cache of one engine.
pub(crate) struct CompileCache {
    /// `None` when the cache is off, by choice or because its directory is unusable.
    dir: Option<PathBuf>,
    /// Set once the directory, trusted at startup, no longer is: the cache is off from then
    /// on ([`Self::trusted_dir`]).
    distrusted: AtomicBool,
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
        let dir = dir.and_then(|dir| match trust::prepare(dir) {
            Ok(()) => Some(dir.to_owned()),
            Err(error) => {
                tracing::warn!("compile cache off: {error:#}");
                None
            }
        });
        if let Some(precompiled) = precompiled {
            precompiled::check_dir(precompiled)?;
        }
        Ok(Self {
            dir,
            distrusted: AtomicBool::new(false),
            max_size,
            precompiled: precompiled.map(Path::to_owned),
            engine: entry::engine_hash(engine),
            metrics,
        })
    }

    /// The directory entries are kept in, if the cache is on.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The component with sha256 `digest` compiled for `engine`: from the cache if a valid
    /// entry is there, else from `compile`. One log line says which, and how long it took.
    /// A compiled one is written to the cache only once it is served ([`Self::keep`]).
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
                    prune::touch(path);
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
        let precompiled = self.precompiled.as_deref();
        if let Some(component) = precompiled.and_then(|dir| precompiled::find(dir, engine, digest))
        {
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
        Ok((component, Source::Compiled))
    }

    /// Writes `component`, with sha256 `digest`, to the cache, now that it is served, and
    /// removes the entries used least recently past the budget (never this one). A failure
    /// is a warning: the cache is only an accelerator.
    pub(crate) fn keep(&self, component: &Component, digest: &str) {
        let Some(path) = self.path(digest) else {
            return;
        };
        match self.write(component, &path, digest) {
            Ok(size) => prune::prune(&path, size, self.max_size),
            Err(error) => {
                self.metrics.compile_cache_write_failed();
                tracing::warn!(
                    "cannot write the compile cache entry {}: {error:#}",
                    path.display()
                );
            }
        }
    }

    /// Where the entry for `digest` lives. Both halves of the key are in the name, so that
    /// engines of different wasmtime builds sharing a directory do not overwrite each other.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        entry::path(
            self.trusted_dir()?,
            digest,
            &hex(self.engine.get(..8).unwrap_or(&self.engine)),
        )
    }

    /// The cache directory, if the cache is on and the directory is still trusted: checked
    /// again before every read and write, since a mode or an owner on the path can change
    /// while the host runs. One that no longer is turns the cache off, with one warning.
    fn trusted_dir(&self) -> Option<&Path> {
        let dir = self.dir.as_deref()?;
        if self.distrusted.load(Ordering::Relaxed) {
            return None;
        }
        match trust::prepare(dir) {
            Ok(()) => Some(dir),
            Err(error) => {
                if !self.distrusted.swap(true, Ordering::Relaxed) {
                    tracing::warn!("compile cache off: {error:#}");
                }
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
        entry::read(engine, path, &self.key(digest)?)
    }

    /// Serializes `component` into a temporary file beside `path` and renames it into place.
    /// Returns the entry's size.
    fn write(&self, component: &Component, path: &Path, digest: &str) -> anyhow::Result<u64> {
        let artifact = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("cannot serialize the component")?;
        let entry = entry::encode(&self.key(digest)?, &artifact);
        let dir = path.parent().context("an entry path has a directory")?;
        // tempfile creates it 0600 under a name no other writer picks.
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        file.write_all(&entry).context("cannot write the entry")?;
        file.persist(path).context("cannot rename the entry")?;
        Ok(entry.len() as u64)
    }

    /// The binary key of the component with hex sha256 `digest`.
    fn key(&self, digest: &str) -> anyhow::Result<Key> {
        Key::new(digest, self.engine)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::time::SystemTime;

    use super::*;

    /// The empty component (wasmtime here parses binaries only, not text), to go through
    /// wasmtime's compiler and loader.
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> anyhow::Result<Engine> {
        Ok(Engine::default())
    }

    /// Loads the component as a reload does, and keeps it as serving it does.
    fn serve(
        cache: &CompileCache,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> anyhow::Result<Source> {
        let (component, source) = cache.load(engine, digest, compile)?;
        if source == Source::Compiled {
            cache.keep(&component, digest);
        }
        Ok(source)
    }

    #[test]
    fn a_second_load_is_a_hit_and_a_corrupt_entry_is_rewritten() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache_dir = dir.path().join("cache");
        let engine = engine()?;
        let cache = CompileCache::open(Some(&cache_dir), u64::MAX, None, &engine, Arc::default())?;
        let digest = "ab".repeat(32);
        let compile = || Component::new(&engine, COMPONENT);
        let first = serve(&cache, &engine, &digest, compile)?;
        assert_eq!(first, Source::Compiled);
        let second = serve(&cache, &engine, &digest, compile)?;
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
        let corrupt = serve(&cache, &engine, &digest, compile)?;
        assert_eq!(
            corrupt,
            Source::Compiled,
            "a corrupt entry is compiled afresh"
        );
        let rewritten = serve(&cache, &engine, &digest, compile)?;
        assert_eq!(rewritten, Source::Cache, "and rewritten");
        Ok(())
    }

    #[test]
    fn a_component_is_written_only_when_kept() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let cache = CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
        let digest = "ef".repeat(32);
        let compile = || Component::new(&engine, COMPONENT);
        let (_, source) = cache.load(&engine, &digest, compile)?;
        assert_eq!(source, Source::Compiled);
        let path = cache.path(&digest).context("the cache is on")?;
        assert!(!path.exists(), "a candidate not yet served is not written");
        let (component, _) = cache.load(&engine, &digest, compile)?;
        cache.keep(&component, &digest);
        assert!(path.exists(), "a served one is");
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
    fn a_directory_under_a_parent_others_can_write_is_not_used() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let cache_dir = dir.path().join("cache");
        let engine = engine()?;
        // Another user could rename the cache directory away and plant one of their own.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        let cache = CompileCache::open(Some(&cache_dir), u64::MAX, None, &engine, Arc::default())?;
        assert_eq!(cache.dir(), None, "a parent others can write");
        // With the sticky bit, as /tmp has, they cannot rename what is not theirs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))?;
        let cache = CompileCache::open(Some(&cache_dir), u64::MAX, None, &engine, Arc::default())?;
        assert_eq!(cache.dir(), Some(cache_dir.as_path()), "a sticky parent");
        Ok(())
    }

    #[test]
    fn a_directory_that_stops_being_trusted_is_not_used_from_then_on() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let cache_dir = dir.path().join("cache");
        let engine = engine()?;
        let cache = CompileCache::open(Some(&cache_dir), u64::MAX, None, &engine, Arc::default())?;
        let compile = || Component::new(&engine, COMPONENT);
        let digest = "ab".repeat(32);
        assert_eq!(serve(&cache, &engine, &digest, compile)?, Source::Compiled);
        assert_eq!(serve(&cache, &engine, &digest, compile)?, Source::Cache);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        assert_eq!(
            serve(&cache, &engine, &digest, compile)?,
            Source::Compiled,
            "the entry is not read from a directory others could have replaced"
        );
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
        assert_eq!(serve(&cache, &engine, &digest, compile)?, Source::Compiled);
        assert_eq!(serve(&cache, &engine, &digest, compile)?, Source::Compiled);
        Ok(())
    }

    #[test]
    fn a_write_over_the_budget_removes_the_older_entry() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let compile = || Component::new(&engine, COMPONENT);
        let (first, second) = ("ab".repeat(32), "cd".repeat(32));
        let unbounded =
            CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
        serve(&unbounded, &engine, &first, compile)?;
        let size = std::fs::metadata(unbounded.path(&first).context("on")?)?.len();

        // Room for one entry and a half: writing the second leaves no room for the first.
        let cache = CompileCache::open(
            Some(dir.path()),
            size * 3 / 2,
            None,
            &engine,
            Arc::default(),
        )?;
        assert_eq!(serve(&cache, &engine, &first, compile)?, Source::Cache);
        assert_eq!(serve(&cache, &engine, &second, compile)?, Source::Compiled);
        assert!(
            !cache.path(&first).context("on")?.exists(),
            "the first is removed"
        );
        assert_eq!(serve(&cache, &engine, &second, compile)?, Source::Cache);
        Ok(())
    }

    #[test]
    fn a_hit_marks_its_entry_as_used_now() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let engine = engine()?;
        let compile = || Component::new(&engine, COMPONENT);
        let cache = CompileCache::open(Some(dir.path()), u64::MAX, None, &engine, Arc::default())?;
        let digest = "ab".repeat(32);
        serve(&cache, &engine, &digest, compile)?;
        let path = cache.path(&digest).context("the cache is on")?;
        let long_ago = SystemTime::UNIX_EPOCH;
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(long_ago)?;
        assert_eq!(serve(&cache, &engine, &digest, compile)?, Source::Cache);
        let used = std::fs::metadata(&path)?.modified()?;
        assert!(
            used.duration_since(long_ago)?.as_secs() > 86_400,
            "{used:?}"
        );
        Ok(())
    }
}
