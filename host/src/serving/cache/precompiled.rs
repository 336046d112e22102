//! Precompiled artifacts: cache entries made ahead of time by `task-host precompile` for a
//! target triple rather than for this engine (the production image ships one for its own
//! architecture).
//!
//! The cache's own key cannot find them, since this engine's compatibility hash covers the
//! CPU features it found on this machine, and a precompiled artifact assumes none. So they
//! are keyed by architecture instead (`{sha256}-{arch}.cwasm`, the arch as Rust names it),
//! and wasmtime's own check on loading decides whether this engine can run one; where it
//! cannot, the component is compiled. They are trusted the way the binary is: a directory,
//! and files, that only root or this user can write.

use std::fs::DirBuilder;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::entry::{self, Key};
use super::trust::{no_one_else_can_replace, trusted};
use crate::serving::digest::short;

/// Writes `artifact`, the component with sha256 `digest` compiled for `arch` (the first
/// part of a target triple), to `dir`, as the precompiled artifact that
/// `serve --precompiled-dir` finds on a machine of that architecture. Returns the file
/// written.
pub(crate) fn write(
    dir: &Path,
    arch: &str,
    digest: &str,
    artifact: &[u8],
) -> anyhow::Result<PathBuf> {
    let path = entry::path(dir, digest, arch)
        .with_context(|| format!("cannot name an artifact for architecture {arch:?}"))?;
    let key = Key::new(digest, engine_key(arch))?;
    DirBuilder::new()
        .recursive(true)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, entry::encode(&key, artifact))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The artifact in `dir` for `digest` and this machine's architecture, if there is one
/// `engine` can load. One that is there but cannot be used is logged.
pub(super) fn find(dir: &Path, engine: &Engine, digest: &str) -> Option<Component> {
    let arch = std::env::consts::ARCH;
    let path = entry::path(dir, digest, arch)?;
    // No artifact is the common case (any component swapped in later): not a warning.
    if matches!(path.try_exists(), Ok(false)) {
        return None;
    }
    let read = trusted(&path)
        .and_then(|()| entry::read(engine, &path, &Key::new(digest, engine_key(arch))?));
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

/// Checks that `dir`, named with `--precompiled-dir`, is there and trusted. Unlike the
/// cache it is named on purpose, so one that is missing or that others can write to is an
/// error.
pub(super) fn check_dir(dir: &Path) -> anyhow::Result<()> {
    trusted(dir)
        .and_then(|()| no_one_else_can_replace(dir))
        .context("--precompiled-dir")
}

/// The engine half of a precompiled artifact's key: its architecture alone, since which
/// CPU features it assumes is for wasmtime to check.
fn engine_key(arch: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"task-host precompiled for ")
        .chain_update(arch)
        .finalize()
        .into()
}
