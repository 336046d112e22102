//! `cargo xtask build`: every shipped artifact built in release (the components, the composed
//! standalone component and the `task-host` binary), with their sizes. `bench` and `soak`
//! build this way before they measure.

use crate::workspace::Workspace;
use crate::{cargo, size, toolchain, wasm};

/// Builds every shipped artifact in release and prints their sizes.
pub(crate) fn build() -> anyhow::Result<()> {
    toolchain::ensure_targets()?;
    let workspace = Workspace::load()?;
    let mut artifacts = wasm::build(&workspace, "release", false)?;
    cargo::run("task-host", &["build", "--release", "-p", "task-host"])?;
    artifacts.push(workspace.target_dir.join("release/task-host"));
    size::print(&artifacts)
}
