//! The targets `rust-toolchain.toml` names, added before anything is built. rustup installs
//! a toolchain file's targets only together with the toolchain: on a machine that already had
//! the pinned toolchain, the first wasm build would fail with `E0463 can't find crate for
//! std`. Asking rustup which targets are installed is local and quick, so this runs every time.

use std::io::ErrorKind;
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::root::workspace_root;

/// `rust-toolchain.toml`, the parts read here.
#[derive(Deserialize)]
struct ToolchainFile {
    toolchain: Toolchain,
}

#[derive(Deserialize)]
struct Toolchain {
    channel: String,
    #[serde(default)]
    targets: Vec<String>,
}

/// Adds the targets of `rust-toolchain.toml` that the toolchain running us lacks. Without
/// rustup (in a container whose image installed the targets) it says so and does nothing.
pub(crate) fn ensure_targets() -> anyhow::Result<()> {
    let path = workspace_root().join("rust-toolchain.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let Toolchain { channel, targets } = toml::from_str::<ToolchainFile>(&text)
        .with_context(|| format!("parsing {}", path.display()))?
        .toolchain;
    // rustup's proxies name the toolchain they run in RUSTUP_TOOLCHAIN: the file's channel,
    // unless `cargo +other` or an override chose another one, which is then the one to fix.
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or(channel);
    let installed = match Command::new("rustup")
        .args(["target", "list", "--installed", "--toolchain", &toolchain])
        .output()
    {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Ok(output) => bail!(
            "rustup target list failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            eprintln!(
                "==> targets: no rustup here; {} must already be installed",
                targets.join(", ")
            );
            return Ok(());
        }
        Err(error) => return Err(error).context("cannot run rustup"),
    };
    let missing = missing(&targets, &installed);
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("==> targets: rustup target add {}", missing.join(" "));
    let status = Command::new("rustup")
        .args(["target", "add", "--toolchain", &toolchain])
        .args(&missing)
        .status()
        .context("cannot run rustup")?;
    if !status.success() {
        bail!("rustup target add failed ({status})");
    }
    Ok(())
}

/// The `wanted` targets absent from `installed`, rustup's one-per-line list.
fn missing<'a>(wanted: &'a [String], installed: &str) -> Vec<&'a str> {
    wanted
        .iter()
        .map(String::as_str)
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{ToolchainFile, missing, workspace_root};

    #[test]
    fn only_targets_rustup_does_not_list_are_missing() {
        let wanted = [
            "wasm32-wasip2".to_owned(),
            "x86_64-unknown-linux-musl".to_owned(),
        ];
        let installed = "x86_64-unknown-linux-gnu\nwasm32-wasip2\n";
        assert_eq!(missing(&wanted, installed), ["x86_64-unknown-linux-musl"]);
        assert!(missing(&wanted, "wasm32-wasip2\nx86_64-unknown-linux-musl\n").is_empty());
    }

    #[test]
    fn the_toolchain_file_names_a_channel_and_the_wasm_target() {
        let text = std::fs::read_to_string(workspace_root().join("rust-toolchain.toml"))
            .expect("rust-toolchain.toml is readable");
        let file: ToolchainFile = toml::from_str(&text).expect("rust-toolchain.toml parses");
        assert!(!file.toolchain.channel.is_empty());
        assert!(
            file.toolchain
                .targets
                .iter()
                .any(|target| target == crate::wasm::TARGET),
            "{:?}",
            file.toolchain.targets
        );
    }
}
