//! `cargo xtask wasm`: the components of `[workspace.metadata.task-api]` built for
//! wasm32-wasip2 in one cargo profile, with `task_api_standalone.wasm` composed from them.
//! `cargo xtask build` and the Dockerfile's `component-builder` both build components this
//! way, so neither spells out the packages.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::workspace::Workspace;
use crate::{cargo, standalone};

/// The target every component is built for.
pub(crate) const TARGET: &str = "wasm32-wasip2";

/// Builds the shipped components (and with `test_components` the fixtures too) in `profile`,
/// composes the standalone component, and returns every file built, composition last.
pub(crate) fn build(
    workspace: &Workspace,
    profile: &str,
    test_components: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut components = workspace.components.iter().collect::<Vec<_>>();
    if test_components {
        components.extend(&workspace.test_components);
    }
    let mut args = vec!["build", "--profile", profile, "--target", TARGET];
    for component in &components {
        args.extend(["-p", component.package.as_str()]);
    }
    cargo(&format!("components for {TARGET} ({profile})"), &args)?;
    let dir = workspace.wasm_dir(profile);
    standalone::compose(&dir)?;
    Ok(components
        .iter()
        .map(|component| component.file.as_str())
        .chain([standalone::FILE])
        .map(|file| dir.join(file))
        .collect())
}

/// Copies `files` into `out`, created if need be, and returns the copies.
pub(crate) fn copy_to(files: &[PathBuf], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    files
        .iter()
        .map(|file| {
            let copy = out.join(file.file_name().context("a built file has no name")?);
            std::fs::copy(file, &copy)
                .with_context(|| format!("copying {} to {}", file.display(), out.display()))?;
            Ok(copy)
        })
        .collect()
}
