//! The build context: what the daemon receives must stay small.

use std::path::Path;

use anyhow::ensure;

use super::harness::build;

/// The build context must stay under this many bytes: `.dockerignore` keeps `target/`, `.git/`
/// and local data out, and a context past this means something large slipped back in.
const MAX_CONTEXT_BYTES: u64 = 2_000_000;

/// Measures the context of `root` as a tar, written under `work`.
pub(super) fn check(root: &Path, work: &Path) -> anyhow::Result<()> {
    // What the daemon receives, after `.dockerignore`: copied whole into an empty image and
    // exported as a tar. BuildKit's own "transferring context" line only counts what changed
    // since the last build, so it cannot be used on a warm engine.
    let dockerfile = work.join("context.Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY . /\n")?;
    let tar = work.join("context.tar");
    let dockerfile_arg = dockerfile.display().to_string();
    let output_arg = format!("type=tar,dest={}", tar.display());
    build(root, &["-f", &dockerfile_arg, "--output", &output_arg])?;
    let bytes = std::fs::metadata(&tar)?.len();
    eprintln!("    context: {:.0} kB as a tar", bytes as f64 / 1e3);
    ensure!(
        bytes < MAX_CONTEXT_BYTES,
        "the build context is {bytes} bytes, over {MAX_CONTEXT_BYTES}: check .dockerignore"
    );
    Ok(())
}
