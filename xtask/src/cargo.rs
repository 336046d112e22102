//! Running cargo: the cargo that runs xtask, so that the pinned toolchain builds everything,
//! always from the workspace root.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::root::workspace_root;

/// Runs cargo with `args` as one step: a `==>` header, then cargo's own output, and an error
/// naming the step if it fails.
pub(crate) fn run(step: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> {step}: cargo {}", args.join(" "));
    let status = command()
        .args(args)
        .status()
        .with_context(|| format!("{step}: cannot run cargo"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// The cargo running us (so the pinned toolchain is used), in the workspace root.
pub(crate) fn command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}
