//! The build cache: the component and the host are built in stages that do not depend on each
//! other, so an edit to the component (or to the host's tests) must leave the host's build
//! step cached, and still rebuild the component.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, ensure};

use super::harness::{build_command, copy_tree, docker};

/// Rebuilds production from an edited copy of the workspace, tagged `tag`, and reads BuildKit's
/// log for which steps ran.
pub(super) fn check(tag: &str, work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("cache-tree"))?;
    // The release host is built from host/src alone; its tests are not part of it.
    // A line no earlier run wrote: the same edit twice would hit BuildKit's cache for the
    // component too, and the check could no longer tell the two stages apart.
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    for edited in ["component/src/lib.rs", "host/tests/integration/main.rs"] {
        let file = tree.join(edited);
        let source = std::fs::read_to_string(&file)?;
        std::fs::write(&file, format!("{source}\n// a one-line change ({nonce})\n"))?;
    }
    let output = build_command(&tree, &["--progress=plain", "-t", tag]).output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "the rebuild failed:\n{log}");
    let cached = |stage: &str, command: &str| -> anyhow::Result<bool> {
        let step = log
            .lines()
            .find(|line| line.contains(stage) && line.contains(command))
            .and_then(|line| line.split_whitespace().next())
            .with_context(|| format!("no {stage} step in the build log"))?;
        Ok(log.lines().any(|line| line == format!("{step} CACHED")))
    };
    ensure!(
        cached("[host-builder", "cargo zigbuild")?,
        "the host build step was not CACHED:\n{log}"
    );
    ensure!(
        !cached("[component-builder", "xtask wasm")?,
        "the component was not rebuilt:\n{log}"
    );
    docker(&["rmi", tag])?;
    Ok(())
}
