//! `cargo xtask lint`: formatting, then clippy with warnings denied, on the host and for
//! wasm32-wasip2.

use crate::workspace::Workspace;
use crate::{cargo, wasm};

/// Formatting, then clippy with warnings denied: every target of the workspace on the host,
/// and every component for wasm32-wasip2.
pub(crate) fn run() -> anyhow::Result<()> {
    let workspace = Workspace::load()?;
    cargo::run("formatting", &["fmt", "--all", "--check"])?;
    cargo::run(
        "clippy (host)",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut wasm_clippy = vec!["clippy", "--target", wasm::TARGET];
    for component in workspace
        .components
        .iter()
        .chain(&workspace.test_components)
    {
        wasm_clippy.extend(["-p", component.package.as_str()]);
    }
    wasm_clippy.extend(["--", "-D", "warnings"]);
    cargo::run(&format!("clippy ({})", wasm::TARGET), &wasm_clippy)
}
