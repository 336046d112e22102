//! Which directories and files the cache trusts: what is loaded from them runs as machine
//! code, so they must be writable by no one but this user (or, for precompiled artifacts,
//! root, who also owns the binary). As sshd's StrictModes does, the check covers the whole
//! path: another user who can write to any directory above the cache could rename it away
//! and put one of their own in its place, unless that directory's sticky bit (as on /tmp)
//! keeps them from renaming what is not theirs.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Creates `dir` (`0700`) if need be, and checks that only this user can write to it, and
/// that no one else can replace it ([`no_one_else_can_replace`]).
pub(super) fn prepare(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    writable_only_by(dir, &[rustix::process::geteuid().as_raw()])?;
    no_one_else_can_replace(dir)
}

/// Checks every directory above `path` (symlinks resolved): each belongs to root or this
/// user, and no other user can write to it unless its sticky bit is set.
pub(super) fn no_one_else_can_replace(path: &Path) -> anyhow::Result<()> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let owners = [0, rustix::process::geteuid().as_raw()];
    for ancestor in path.ancestors().skip(1) {
        let metadata = std::fs::metadata(ancestor)
            .with_context(|| format!("cannot read {}", ancestor.display()))?;
        anyhow::ensure!(
            owners.contains(&metadata.uid()),
            "{} belongs to user {}, who could replace {} (only {owners:?} may own the path)",
            ancestor.display(),
            metadata.uid(),
            path.display()
        );
        let sticky = metadata.mode() & 0o1000 != 0;
        anyhow::ensure!(
            sticky || metadata.mode() & 0o022 == 0,
            "{} can be written by other users (mode {:o}), who could replace {}",
            ancestor.display(),
            metadata.mode() & 0o7777,
            path.display()
        );
    }
    Ok(())
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
