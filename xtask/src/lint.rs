//! `cargo xtask lint`: formatting, the module graph, then clippy with warnings denied, on
//! the host and for wasm32-wasip2. `cargo xtask test --unit` runs formatting and clippy on
//! the unit scope.

use crate::workspace::Workspace;
use crate::{cargo, module_graph, wasm};

/// Formatting, the module graph ([`module_graph`]), then clippy with warnings denied: every
/// target of the workspace on the host, and every component and the workspace libraries
/// built into them for wasm32-wasip2.
pub(crate) fn run() -> anyhow::Result<()> {
    let workspace = Workspace::load()?;
    format()?;
    module_graph::check(&workspace)?;
    clippy("clippy (host)", &["--workspace"])?;
    let mut wasm_clippy = vec!["clippy", "--target", wasm::TARGET];
    for component in workspace
        .components
        .iter()
        .chain(&workspace.test_components)
    {
        wasm_clippy.extend(["-p", component.package.as_str()]);
    }
    for library in &workspace.wasm_libraries {
        wasm_clippy.extend(["-p", library.as_str()]);
    }
    wasm_clippy.extend(["--", "-D", "warnings"]);
    cargo::run(&format!("clippy ({})", wasm::TARGET), &wasm_clippy)
}

/// Fails on any file rustfmt would change, in every package.
pub(crate) fn format() -> anyhow::Result<()> {
    cargo::run("formatting", &["fmt", "--all", "--check"])
}

/// Clippy on the host, warnings denied, for every target of the packages cargo's `packages`
/// arguments select (`--workspace`, or `-p NAME …`).
pub(crate) fn clippy(step: &str, packages: &[&str]) -> anyhow::Result<()> {
    let args = [
        &["clippy"],
        packages,
        &["--all-targets", "--", "-D", "warnings"],
    ]
    .concat();
    cargo::run(step, &args)
}
