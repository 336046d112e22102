//! # task-host
//!
//! A wasmtime host that serves any `wasi:http/proxy` component over HTTP/1.1 and gives it a
//! `wasi:keyvalue` store that every request shares and that survives restarts.
//!
//! ## How the pieces fit
//!
//! ```text
//!  cli ──► server::Server::bind ──► kv::StoreSpec::open ─────────────► Arc<dyn kv::Backend>
//!              │                      runtime::{engine, linker, load} ─► ProxyPre (built once)
//!              ▼
//!       server::Server::run ── accept ─► hyper http1 ─► handler::Handler::handle (per request)
//!              │                                          │ new Store<state::HostState>
//!              │                                          │ body limit, epoch deadline, memory cap
//!              ▼                                          ▼
//!       signal::Signals ── graceful drain       guest ──► kv::KvView ──► Backend (memory | redb)
//!       reload::Reloader ── file watch / SIGHUP ─► compile, check, probe ─► Handler::swap
//!                                                 └─ stdout/stderr ──► guest_log (tagged lines)
//! ```
//!
//! - [`cli`]: flags and environment variables.
//! - [`runtime`]: the engine (pooling allocator, epoch interruption), loading a component with
//!   readable errors, and the linker (WASI, wasi:http, wasi:keyvalue).
//! - [`imports`]: what the host provides, and `task-host check`.
//! - [`handler`]: one request, every failure mapped to a JSON answer; [`request_body`]: the
//!   body limit, and draining a refused body so the client sees the 413.
//! - [`server`]: accept loop and graceful drain; [`signal`]: SIGTERM/SIGINT.
//! - [`reload`]: swapping the component on a file change or SIGHUP, validated first.
//! - [`kv`]: the wasi:keyvalue host and its backends.
//! - [`state`]: the per-request store data; [`guest_log`]: guest output as log lines.
//! - [`healthcheck`]: the probe for curl-less images, over [`client`]; [`telemetry`]: logging.

pub mod cli;
pub mod client;
mod connection;
mod failure;
pub mod guest_log;
pub mod handler;
pub mod healthcheck;
pub mod imports;
pub mod kv;
mod pool;
pub mod reload;
pub mod request_body;
mod response;
pub mod runtime;
pub mod server;
pub mod signal;
pub mod state;
pub mod telemetry;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{CheckArgs, Command, EchoArgs, HealthcheckArgs, ServeArgs};

/// Runs one subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => tokio_runtime()?.block_on(serve(args)),
        Command::Healthcheck(args) => tokio_runtime()?.block_on(healthcheck(args)),
        Command::Check(args) => check(&args),
        Command::Whoami => whoami(),
        Command::Echo(args) => echo(&args),
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let signals = signal::Signals::install()?;
    let server = server::Server::bind(&args).await?;
    let addr = server.local_addr()?;
    // The one startup line on stdout; tests and scripts parse it for the real port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    drop(stdout);
    server.run(signals.first_then_force()).await;
    tracing::info!("stopped; the store is closed");
    Ok(ExitCode::SUCCESS)
}

async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let url = match args.url {
        Some(url) => url,
        None => healthcheck::default_url()?,
    };
    let status = healthcheck::probe(&url, args.timeout).await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read component {}", args.file.display()))?;
    let shape = pool::Shape::of(&bytes).map_err(|error| {
        anyhow::anyhow!("{} is not a WebAssembly file: {error}", args.file.display())
    })?;
    // The serving engine's configuration, for one instance: what compiles and links here
    // compiles and links in `serve`.
    let (engine, _) = runtime::engine(cli::DEFAULT_MAX_MEMORY, pool::Capacity::new(1, shape))?;
    let component = runtime::compile_bytes(&engine, &args.file, &bytes)?;
    print!("{}", imports::Report::of(&engine, &component).render());
    runtime::link(&engine, &runtime::linker(&engine)?, &args.file, &component)?;
    println!("ok: task-host can serve {}", args.file.display());
    Ok(ExitCode::SUCCESS)
}

/// `whoami` for the production image, which has no shell and no coreutils: the seed's
/// checklist runs `docker run --rm task-api:prod whoami` and expects `appuser`.
fn whoami() -> anyhow::Result<ExitCode> {
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.get(2).and_then(|id| id.parse().ok()) == Some(uid))
        .and_then(|fields| fields.first().map(|name| (*name).to_owned()))
        .with_context(|| format!("cannot find a name for user ID {uid}"))?;
    println!("{name}");
    Ok(ExitCode::SUCCESS)
}

/// `echo` for the production image: the seed's checklist times
/// `docker run --rm task-api:prod echo "Container started"`.
fn echo(args: &EchoArgs) -> anyhow::Result<ExitCode> {
    println!("{}", args.words.join(" "));
    Ok(ExitCode::SUCCESS)
}
