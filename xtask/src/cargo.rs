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

/// Runs cargo with `args` quietly and returns what it printed to stdout, or an error with
/// what it printed to stderr: for cargo's answers, such as `cargo metadata`.
pub(crate) fn stdout(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = command()
        .args(args)
        .output()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "cargo {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// The cargo running us (so the pinned toolchain is used), in the workspace root.
pub(crate) fn command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}
