//! `cargo xtask`: the workspace's build and test commands, in Rust so they run the same on
//! every machine and in CI. This file is the command line and its dispatch; each command
//! lives in the module named after it.
//!
//! - `cargo xtask build` builds every shipped artifact in release ([`release`]): the
//!   components for wasm32-wasip2 that `[workspace.metadata.task-api]` lists ([`workspace`]),
//!   the composed `task_api_standalone.wasm` ([`standalone`]), and the `task-host` binary.
//! - `cargo xtask wasm` builds just the components, in any profile, and can copy them into one
//!   directory: the Dockerfile builds them this way ([`wasm`]).
//! - `cargo xtask compose` redoes just the composition.
//! - `cargo xtask lint`: formatting, the module graph's shape ([`module_graph`]: no circles,
//!   no imports up the tree, the host's size limits), and clippy on the host and wasm
//!   targets, warnings denied ([`lint`]).
//! - `cargo xtask test` runs every check there is ([`suite`]): hadolint on the Dockerfile,
//!   kubernetes-validate on `deploy/k8s` (offline, [`kubernetes::VERSION`]), the lints, all
//!   tests (component unit tests, [`test_run::FUZZ_CASES`] cases of each fuzz target, host
//!   unit and integration tests, the crash trials, the fault suite, the stock `wasmtime serve`
//!   tests), then [`docker::e2e`]: every Dockerfile target built and checked against the real
//!   engine. The integration tests serve components this step builds first; `cargo test` finds
//!   them through [`test_support::COMPONENTS_ENV`] and never calls back into xtask.
//!   `--unit` is the Docker `test` stage's share: formatting, clippy and the tests of the unit
//!   scope ([`unit_scope`]: every package that needs neither wasmtime nor a server), with no
//!   component built first, no hadolint and no Docker.
//! - `cargo xtask unit-scope` prints that scope as cargo's `-p` arguments, which the
//!   Dockerfile's `dev-deps` stage builds the dependencies of.
//! - `cargo xtask faults` runs just the fault suite (`host/tests/faults`): the real
//!   task-host binary under guest, client, store, Redis and crash faults, printed as a table.
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
//! stops at the first failure. What the commands share sits below them, each in a module of
//! its own: the workspace's root directory ([`root`]), running cargo ([`cargo`]) and
//! `cargo test` with its totals ([`test_run`]), the other tools a command needs ([`tool`]),
//! the sizes of built files ([`size`]), and the servers that `bench` and `soak` load
//! ([`load`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::root::workspace_root;
use crate::workspace::Workspace;

mod bench;
mod cargo;
mod docker;
mod kubernetes;
mod lint;
mod load;
mod module_graph;
mod release;
mod root;
mod size;
mod soak;
mod standalone;
mod suite;
mod test_run;
mod tool;
mod toolchain;
mod unit_scope;
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
    /// Check formatting and the module graph, and run clippy on the host and wasm32-wasip2,
    /// warnings denied.
    Lint,
    /// Run the lints and every test, then the Docker end-to-end check.
    Test {
        /// Skip the Docker end-to-end check (it needs a Docker engine and builds every image).
        #[arg(long)]
        no_docker: bool,
        /// Only the unit scope, for the Docker `test` stage: formatting, clippy and the tests
        /// of every package that needs neither wasmtime nor a server (see `unit-scope`).
        #[arg(long, conflicts_with = "no_docker")]
        unit: bool,
    },
    /// Print the packages `test --unit` checks, as cargo's arguments (`-p NAME …`).
    ///
    /// Every workspace package but those that depend on wasmtime or whose tests start
    /// servers (a dev-dependency on test-support). The Dockerfile's dev-deps stage builds
    /// their dependencies.
    UnitScope,
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
        Task::Build => release::build(),
        Task::Wasm {
            profile,
            test_components,
            out,
        } => toolchain::ensure_targets()
            .and_then(|()| wasm::run(&profile, test_components, out.as_deref())),
        Task::Lint => toolchain::ensure_targets().and_then(|()| lint::run()),
        Task::Test { unit: true, .. } => suite::unit(),
        Task::Test { no_docker, .. } => suite::run(no_docker),
        Task::UnitScope => unit_scope::cargo_args().map(|args| println!("{}", args.join(" "))),
        Task::Compose { dir } => Workspace::load().and_then(|workspace| {
            let dir = dir.unwrap_or_else(|| wasm::dir(&workspace, "release"));
            standalone::compose(&workspace_root().join(dir))
        }),
        Task::Faults => wasm::build_for_tests().and_then(|components| {
            test_run::cargo_test(
                &["test", "-p", "task-host", "--test", "faults"],
                Some(&components),
            )
        }),
        Task::Docker => docker::e2e(),
        Task::Bench { seconds } => release::build().and_then(|()| {
            tool::require("wrk", "apt-get install wrk")?;
            bench::run(seconds)
        }),
        Task::Soak {
            seconds,
            connections,
        } => tool::require("wrk", "apt-get install wrk")
            .and_then(|()| soak::run(seconds, connections)),
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
