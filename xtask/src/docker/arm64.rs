//! The linux/arm64 production image: cross-built without QEMU, it must be an arm64 image
//! whose task-host is an AArch64 binary.

use std::path::Path;

use anyhow::ensure;

use super::harness::{Container, docker};

/// Checks the architecture of `tag` and of the task-host inside it.
pub(super) fn check(tag: &str, work: &Path) -> anyhow::Result<()> {
    let arch = docker(&["image", "inspect", "-f", "{{.Architecture}}", tag])?;
    ensure!(arch.trim() == "arm64", "{tag} is {arch}");
    let container = Container::create(tag)?;
    let binary = work.join("task-host-arm64");
    docker(&[
        "cp",
        &format!("{}:/usr/local/bin/task-host", container.id),
        &binary.to_string_lossy(),
    ])?;
    let header = std::fs::read(&binary)?;
    // ELF e_machine, little-endian at offset 18: 0xB7 is AArch64.
    ensure!(
        header.get(..4) == Some(b"\x7fELF".as_slice())
            && header.get(18..20) == Some([0xB7, 0].as_slice()),
        "task-host in {tag} is not an AArch64 ELF"
    );
    eprintln!("    {tag}: arm64 image, task-host is an AArch64 ELF");
    Ok(())
}
