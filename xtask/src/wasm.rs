//! `cargo xtask wasm`: the components of `[workspace.metadata.task-api]` built for
//! wasm32-wasip2 in one cargo profile, with `task_api_standalone.wasm` composed from them.
//! `cargo xtask build`, `cargo xtask test` and the Dockerfile's `component-builder` all build
//! components this way, so none of them spells out the packages.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::root::workspace_root;
use crate::workspace::{Workspace, profile_dir};
use crate::{cargo, size, standalone};

/// The target every component is built for.
pub(crate) const TARGET: &str = "wasm32-wasip2";

/// The `wasm` command: builds the components in `profile` (with `test_components` the
/// fixtures too), copies them into `out` if given, and prints their sizes.
pub(crate) fn run(profile: &str, test_components: bool, out: Option<&Path>) -> anyhow::Result<()> {
    let workspace = Workspace::load()?;
    let built = build(&workspace, profile, test_components)?;
    match out {
        Some(out) => size::print(&copy_to(&built, &workspace_root().join(out))?),
        None => size::print(&built),
    }
}

/// Builds every component, fixtures included, in release and composes
/// task_api_standalone.wasm, then copies them into a directory of the tests' own: the
/// workspace's `target/test-components`, even when `CARGO_TARGET_DIR` is shared with other
/// checkouts, so that no other build replaces a component mid-run.
pub(crate) fn build_for_tests() -> anyhow::Result<PathBuf> {
    let workspace = Workspace::load()?;
    let built = build(&workspace, "release", true)?;
    let dir = workspace_root().join("target/test-components");
    copy_to(&built, &dir)?;
    Ok(dir)
}

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
    cargo::run(&format!("components for {TARGET} ({profile})"), &args)?;
    let dir = dir(workspace, profile);
    standalone::compose(&dir)?;
    Ok(components
        .iter()
        .map(|component| component.file.as_str())
        .chain([standalone::FILE])
        .map(|file| dir.join(file))
        .collect())
}

/// The directory cargo writes `profile`'s wasm32-wasip2 output to.
pub(crate) fn dir(workspace: &Workspace, profile: &str) -> PathBuf {
    workspace.target_dir.join(TARGET).join(profile_dir(profile))
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::workspace::Workspace;

    #[test]
    fn each_profile_writes_to_its_directory_under_the_wasm_target() {
        let workspace = Workspace {
            target_dir: PathBuf::from("/tmp/target"),
            components: Vec::new(),
            test_components: Vec::new(),
            wasm_libraries: Vec::new(),
            members: Vec::new(),
        };
        assert_eq!(
            super::dir(&workspace, "dev"),
            Path::new("/tmp/target/wasm32-wasip2/debug")
        );
        assert_eq!(
            super::dir(&workspace, "release"),
            Path::new("/tmp/target/wasm32-wasip2/release")
        );
    }
}
