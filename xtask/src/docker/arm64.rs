//! The linux/arm64 production image: cross-built without QEMU, it must be an arm64 image
//! whose task-host is an AArch64 binary and whose precompiled component is AArch64 code.

use std::path::Path;

use anyhow::{Context as _, ensure};

use super::harness::{Container, docker};

/// Checks the architecture of `tag`, of the task-host inside it and of its precompiled
/// component.
pub(super) fn check(tag: &str, work: &Path) -> anyhow::Result<()> {
    let arch = docker(&["image", "inspect", "-f", "{{.Architecture}}", tag])?;
    ensure!(arch.trim() == "arm64", "{tag} is {arch}");
    let container = Container::create(tag)?;
    let copy = |from: &str, to: &Path| {
        docker(&[
            "cp",
            &format!("{}:{from}", container.id),
            &to.to_string_lossy(),
        ])
    };
    let binary = work.join("task-host-arm64");
    copy("/usr/local/bin/task-host", &binary)?;
    ensure!(
        is_aarch64_elf(&std::fs::read(&binary)?),
        "task-host in {tag} is not an AArch64 ELF"
    );

    let precompiled = work.join("precompiled-arm64");
    copy("/app/precompiled", &precompiled)?;
    let artifacts: Vec<_> = std::fs::read_dir(&precompiled)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    let [artifact] = artifacts.as_slice() else {
        anyhow::bail!("{tag}: expected one precompiled artifact, found {artifacts:?}");
    };
    let name = artifact.file_name().unwrap_or_default().to_string_lossy();
    ensure!(name.ends_with("-aarch64.cwasm"), "{tag}: artifact {name}");
    // The artifact is wasmtime's ELF after task-host's header; the header is task-host's
    // business, so look for the ELF rather than skip a length copied from it.
    let bytes = std::fs::read(artifact)?;
    let elf = bytes
        .windows(4)
        .position(|window| window == b"\x7fELF")
        .and_then(|at| bytes.get(at..))
        .context("no ELF inside the precompiled artifact")?;
    ensure!(
        is_aarch64_elf(elf),
        "{tag}: the precompiled artifact is not AArch64 code"
    );
    eprintln!("    {tag}: arm64 image; task-host and {name} are AArch64");
    Ok(())
}

/// Whether `bytes` start an ELF file for AArch64 (e_machine, little-endian at offset 18,
/// is 0xB7).
fn is_aarch64_elf(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(b"\x7fELF".as_slice()) && bytes.get(18..20) == Some([0xB7, 0].as_slice())
}
