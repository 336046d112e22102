//! The sizes of built files, printed one per line after a build, so that growth shows.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::root::workspace_root;

/// Prints each file's size and path, failing on one that was not built.
pub(crate) fn print(files: &[PathBuf]) -> anyhow::Result<()> {
    let root = workspace_root();
    for file in files {
        let size = std::fs::metadata(file)
            .with_context(|| format!("{} was not built", file.display()))?
            .len();
        println!(
            "{:>10}  {}",
            format_size(size),
            file.strip_prefix(&root).unwrap_or(file).display()
        );
    }
    Ok(())
}

fn format_size(bytes: u64) -> String {
    match bytes {
        0..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}
