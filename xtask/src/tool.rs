//! The tools besides cargo that a command runs: each is checked before the command starts, so
//! that a missing one fails at once, saying how to install it, not halfway through a run.

use std::process::Command;

use anyhow::bail;

/// Fails with `hint` unless `tool` can be started (`wrk --version` exits 1, so only
/// starting counts).
pub(crate) fn require(tool: &str, hint: &str) -> anyhow::Result<()> {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("`{tool}` is not on PATH: {hint}"),
    }
}
