//! Which directories and files the cache trusts: what is loaded from them runs as machine
//! code, so they must be writable by no one but this user (or, for precompiled artifacts,
//! root, who also owns the binary).

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Creates `dir` (`0700`) if need be, and checks that only this user can write to it.
pub(super) fn prepare(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    writable_only_by(dir, &[rustix::process::geteuid().as_raw()])
}

/// Checks that `path` (a precompiled directory or artifact) exists and that only root or
/// this user can change it.
pub(super) fn trusted(path: &Path) -> anyhow::Result<()> {
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
