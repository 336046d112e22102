//! `cargo xtask`: the workspace's build and test commands, in Rust so they run the same on
//! every machine and in CI.
//!
//! - `cargo xtask build` builds every shipped artifact in release: the components for
//!   wasm32-wasip2 and the `task-host` binary.
//! - `cargo xtask test` runs every check there is: formatting, clippy on the host and wasm
//!   targets, and all tests (component unit tests, host unit and integration tests, the
//!   stock `wasmtime serve` tests).
//!
//! Each step prints a `==>` header and the whole run stops at the first failure.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// Components built for wasm32-wasip2: what ships, and the fixtures tests serve.
const COMPONENTS: &[&str] = &[
    "task-api",
    "hello-component",
    "faulty-component",
    "unprovided-import",
];
/// The components that ship (the others are test fixtures).
const SHIPPED_COMPONENTS: &[(&str, &str)] = &[
    ("task-api", "task_api"),
    ("hello-component", "hello_component"),
];

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
    /// Run formatting, lints and every test.
    Test,
}

fn main() -> ExitCode {
    let started = Instant::now();
    let result = match Cli::parse().task {
        Task::Build => build(),
        Task::Test => test(),
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
    let mut components = vec!["build", "--release", "--target", "wasm32-wasip2"];
    components.extend(
        SHIPPED_COMPONENTS
            .iter()
            .flat_map(|(package, _)| ["-p", *package]),
    );
    cargo("components for wasm32-wasip2", &components)?;
    cargo("task-host", &["build", "--release", "-p", "task-host"])?;
    let root = workspace_root();
    let mut artifacts: Vec<PathBuf> = SHIPPED_COMPONENTS
        .iter()
        .map(|(_, file)| root.join(format!("target/wasm32-wasip2/release/{file}.wasm")))
        .collect();
    artifacts.push(root.join("target/release/task-host"));
    for artifact in artifacts {
        let size = std::fs::metadata(&artifact)
            .with_context(|| format!("{} was not built", artifact.display()))?
            .len();
        println!(
            "{:>10}  {}",
            format_size(size),
            artifact.strip_prefix(&root).unwrap_or(&artifact).display()
        );
    }
    Ok(())
}

fn test() -> anyhow::Result<()> {
    require(
        "wasmtime",
        "run ../shared/tools/install-wasmtime-cli.sh (the stock `wasmtime serve` tests need it)",
    )?;
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
    let mut wasm_clippy = vec!["clippy", "--target", "wasm32-wasip2"];
    wasm_clippy.extend(COMPONENTS.iter().flat_map(|package| ["-p", *package]));
    wasm_clippy.extend(["--", "-D", "warnings"]);
    cargo("clippy (wasm32-wasip2)", &wasm_clippy)?;
    cargo_test(&["test", "--workspace"])
}

/// Runs `cargo test`, passing its output through, and closes with the totals over every test
/// binary: cargo's own last line is often a doc-test run of zero tests, which says nothing.
fn cargo_test(args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> tests: cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
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

/// Runs cargo (the one running us, so the pinned toolchain is used) from the workspace root.
fn cargo(step: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> {step}: cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("{step}: cannot run cargo"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// Fails with `hint` unless `tool --version` runs.
fn require(tool: &str, hint: &str) -> anyhow::Result<()> {
    match Command::new(tool).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => bail!("`{tool}` is not on PATH: {hint}"),
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
