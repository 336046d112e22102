//! Each server's command line, listening on an ephemeral port of 127.0.0.1: the startup
//! line says which port the kernel picked, so tests run side by side.

use std::path::Path;
use std::process::Command;

/// Loopback, on a port the kernel picks.
const EPHEMERAL_ADDR: &str = "127.0.0.1:0";

/// `wasmtime serve` arguments for the plain task_api.wasm: `-S keyvalue` is wasmtime's own
/// store, in memory and fresh for every request; `-S cli` provides what the Rust standard
/// library imports.
pub const PLAIN_SERVE_ARGS: &[&str] = &["serve", "-S", "cli", "-S", "keyvalue"];

/// The `-O` value of the README's `wasmtime serve` command for task_api_standalone.wasm.
///
/// wasmtime serve instantiates the component once per request, from a pooling allocator
/// sized by default for 1,000 core instances, 1,000 memories and 1,000 tables in all. One
/// instance of the composed component takes 7 core instances, 2 memories and 4 tables (the
/// smallest totals that still serve a request), so the defaults hold only 142 requests at
/// once, and the next one got an HTML 500 ("maximum concurrent limit of 1000 for core
/// instances reached"). These totals hold 1,000 at once, the default limit on component
/// instances, as the defaults do for a one-module component.
pub const STANDALONE_POOL: &str =
    "pooling-total-core-instances=7000,pooling-total-memories=2000,pooling-total-tables=4000";

/// `wasmtime serve` arguments for task_api_standalone.wasm, exactly as the README gives them:
/// the kv-fs adapter keeps the state in `./data`, and [`STANDALONE_POOL`] sizes the pool.
pub const STANDALONE_SERVE_ARGS: &[&str] = &[
    "serve",
    "-S",
    "cli",
    "--dir",
    "./data::/data",
    "-O",
    STANDALONE_POOL,
];

/// `wasmtime serve` with [`PLAIN_SERVE_ARGS`] for `component`.
pub fn wasmtime_serve(component: &Path) -> Command {
    wasmtime_serve_with(&[], component)
}

/// [`wasmtime_serve`] with more `flags` (such as `--env NAME=VALUE`), which must come before
/// the component.
pub fn wasmtime_serve_with(flags: &[&str], component: &Path) -> Command {
    let mut command = wasmtime(PLAIN_SERVE_ARGS, flags);
    command.arg(component);
    command
}

/// `wasmtime serve` with [`STANDALONE_SERVE_ARGS`] for `component`, run in `dir`: the state
/// goes to `dir/data`, which must exist.
pub fn wasmtime_serve_standalone(component: &Path, dir: &Path) -> Command {
    let mut command = wasmtime(STANDALONE_SERVE_ARGS, &[]);
    command.arg(component).current_dir(dir);
    command
}

/// `task-host serve`, for a command that runs the task-host binary; the caller adds the
/// component and the store.
pub fn task_host_serve(mut task_host: Command) -> Command {
    task_host.args(["serve", "--addr", EPHEMERAL_ADDR]);
    task_host
}

/// `wasmtime` with `args`, an ephemeral port and `flags`, to be followed by the component.
fn wasmtime(args: &[&str], flags: &[&str]) -> Command {
    let mut command = Command::new("wasmtime");
    command
        .args(args)
        .args(["--addr", EPHEMERAL_ADDR])
        .args(flags);
    command
}
