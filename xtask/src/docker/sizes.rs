//! The images' sizes, printed for the README, with a ceiling for the two that have one.

use anyhow::ensure;

use super::harness::docker;
use super::tags::Tags;

/// The production image must stay under this many bytes, uncompressed: the size the speed
/// issue set, with the precompiled component in it.
const MAX_PRODUCTION_BYTES: u64 = 20_000_000;
/// The development image must stay under this many bytes: the toolchain, the component's
/// prebuilt dependencies and the release task-host, never a debug wasmtime.
const MAX_DEVELOPMENT_BYTES: u64 = 1_500_000_000;

/// Prints every image's uncompressed size and checks the ceilings.
pub(super) fn print_and_check(tags: &Tags) -> anyhow::Result<()> {
    println!("image sizes (uncompressed, docker image inspect):");
    for (tag, ceiling) in [
        (&tags.prod, Some(MAX_PRODUCTION_BYTES)),
        (&tags.arm64, None),
        (&tags.dev, Some(MAX_DEVELOPMENT_BYTES)),
        (&tags.builder, None),
    ] {
        let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", tag])?
            .trim()
            .parse()?;
        println!("  {tag:<18} {:>8.1} MB", size as f64 / 1e6);
        if let Some(ceiling) = ceiling {
            ensure!(size <= ceiling, "{tag} is {size} bytes, over {ceiling}");
        }
    }
    Ok(())
}
