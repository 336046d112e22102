//! Swapping the served component while running: on a change to the component file (an
//! in-place write, an atomic rename, a symlink flip) or on SIGHUP, the candidate is compiled,
//! checked to be a component whose imports this host provides, and probed with `GET
//! --probe-path` in an instance of its own. Only a candidate that answers 2xx replaces the
//! running one; anything else is logged as one "reload rejected" line and the old version
//! keeps serving.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use tokio::signal::unix::Signal;
use wasmtime::component::Linker;

use crate::ops::metrics::Metrics;
use crate::serving::Serving;
use crate::serving::cache::CompileCache;
use crate::serving::candidate::Candidate;
use crate::serving::digest::short;
use crate::serving::host_state::HostState;

/// How often the component file is looked at.
const POLL: Duration = Duration::from_millis(100);
/// A changed file is tried once it has stayed the same this long, so that a half-written
/// file is never compiled.
const SETTLE: Duration = Duration::from_millis(200);

/// Reloads one component path into the served component.
pub(crate) struct Reloader {
    /// The file as it was when the served version was read; a change from it is a reload.
    loaded_from: Option<Fingerprint>,
    /// Candidates are compiled with this linker's engine, the one requests run on.
    linker: Arc<Linker<HostState>>,
    /// Where candidates seen before are found compiled.
    cache: Arc<CompileCache>,
    path: PathBuf,
    probe_path: String,
    serving: Arc<Serving>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// A reloader for the component at `path`, served by `serving`. `loaded_from` must be
    /// taken before the served bytes were read, so that no replacement can slip in between.
    pub(crate) fn new(
        loaded_from: Option<Fingerprint>,
        linker: Arc<Linker<HostState>>,
        cache: Arc<CompileCache>,
        path: PathBuf,
        probe_path: String,
        serving: Arc<Serving>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            loaded_from,
            linker,
            cache,
            path,
            probe_path,
            serving,
            metrics,
        }
    }

    /// Tries the file now; logs the swap, or why it was rejected.
    pub(crate) async fn reload(&self, trigger: &str) {
        match self.try_reload().await {
            Ok(None) => {
                self.metrics.reloaded("unchanged");
                tracing::info!(trigger, "reload skipped: the component file is unchanged");
            }
            Ok(Some(swap)) => {
                self.metrics.reloaded("swapped");
                self.metrics.serving(&swap.new);
                tracing::info!(
                trigger,
                old = %short(&swap.old),
                new = %short(&swap.new),
                validate_ms = swap.validated.as_secs_f64() * 1000.0,
                switch_us = swap.switched.as_secs_f64() * 1e6,
                "component swapped",
                );
            }
            Err(reason) => {
                self.metrics.reloaded("rejected");
                let reason = format!("{reason:#}")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::warn!(trigger, "reload rejected: {reason}");
            }
        }
    }

    async fn try_reload(&self) -> anyhow::Result<Option<Swap>> {
        let started = Instant::now();
        let path = self.path.clone();
        let candidate = tokio::task::spawn_blocking(move || Candidate::read(&path))
            .await
            .context("the read task failed")??;
        if candidate.digest == self.serving.digest() {
            return Ok(None);
        }
        let linker = Arc::clone(&self.linker);
        let cache = Arc::clone(&self.cache);
        // Compiling takes a while and blocks: keep it off the threads that serve requests.
        let version = tokio::task::spawn_blocking(move || candidate.load(&linker, &cache))
            .await
            .context("the compile task failed")??;
        match self.serving.probe(&version, &self.probe_path).await {
            Ok(status) if status.is_success() => {}
            Ok(status) => bail!(
                "the candidate answered GET {} with {status}",
                self.probe_path
            ),
            Err(reason) => bail!("the candidate failed GET {}: {reason}", self.probe_path),
        }
        let validated = started.elapsed();
        let switch = Instant::now();
        let new = version.digest.clone();
        let compiled = version.compiled();
        let old = self.serving.swap(version);
        let switched = switch.elapsed();
        // Only now that it is served is it worth a cache entry: a rejected candidate would
        // take room, and could evict the entry of the version being served. Writing it is
        // disk work, kept off the threads that serve requests.
        if let Some(component) = compiled {
            let (cache, digest) = (Arc::clone(&self.cache), new.clone());
            if let Err(error) =
                tokio::task::spawn_blocking(move || cache.keep(&component, &digest)).await
            {
                tracing::warn!("the compile cache write task failed: {error}");
            }
        }
        Ok(Some(Swap {
            old: old.digest.clone(),
            new,
            validated,
            switched,
        }))
    }

    /// Watches the component file until the task is dropped.
    pub(crate) async fn watch(self: Arc<Self>) {
        // Starting from the load-time fingerprint, a change made before the watcher started
        // is still seen on the first poll.
        let mut seen = self.loaded_from.clone();
        let mut changed_at: Option<Instant> = None;
        loop {
            tokio::time::sleep(POLL).await;
            let now = Fingerprint::of(&self.path);
            if now != seen {
                seen = now;
                changed_at = Some(Instant::now());
            } else if changed_at.is_some_and(|at| at.elapsed() >= SETTLE) {
                changed_at = None;
                if seen.is_some() {
                    self.reload("file changed").await;
                }
            }
        }
    }

    /// Reloads on every SIGHUP `hangups` delivers, until the task is dropped.
    pub(crate) async fn on_sighup(self: Arc<Self>, mut hangups: Signal) {
        while hangups.recv().await.is_some() {
            self.reload("SIGHUP").await;
        }
    }
}

/// What a swap replaced, and how long it took.
struct Swap {
    old: String,
    new: String,
    validated: Duration,
    switched: Duration,
}

/// What identifies one version of the file at a path: following symlinks, so that a flip of
/// a link (Kubernetes ConfigMap volumes) shows up, and with the inode, so that a rename over
/// the path does too, even with the same size and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    target: Option<PathBuf>,
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Fingerprint {
    /// The fingerprint of the file at `path` now, or `None` if there is none.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            target: std::fs::canonicalize(path).ok(),
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_see_writes_renames_and_symlink_flips() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, b, link) = (
            dir.path().join("a.wasm"),
            dir.path().join("b.wasm"),
            dir.path().join("current.wasm"),
        );
        std::fs::write(&a, b"one")?;
        std::fs::write(&b, b"two")?;
        std::os::unix::fs::symlink(&a, &link)?;
        let first = Fingerprint::of(&link);
        assert!(first.is_some());

        let flip = dir.path().join("next.wasm");
        std::os::unix::fs::symlink(&b, &flip)?;
        std::fs::rename(&flip, &link)?;
        let flipped = Fingerprint::of(&link);
        assert_ne!(first, flipped, "a symlink flip");

        std::fs::write(&b, b"three!")?;
        assert_ne!(flipped, Fingerprint::of(&link), "an in-place write");

        let renamed = Fingerprint::of(&a);
        let replacement = dir.path().join("a.tmp");
        std::fs::write(&replacement, b"one")?;
        std::fs::rename(&replacement, &a)?;
        assert_ne!(
            renamed,
            Fingerprint::of(&a),
            "a rename with the same content"
        );
        assert_eq!(Fingerprint::of(&dir.path().join("missing")), None);
        Ok(())
    }
}
