//! # task-host
//!
//! A wasmtime host that serves any `wasi:http/proxy` component over HTTP/1.1 and gives it a
//! `wasi:keyvalue` store that every request shares and that survives restarts.
//!
//! ## How the pieces fit
//!
//! ```text
//!  cli::ServeArgs ─► config::Config ─► server::Server::new(listener, config)
//!                                        │ kv::StoreSpec::open ──────────► Arc<dyn kv::Backend>
//!                                        │ component::Candidate::read ─► pool::Shape
//!                                        │ runtime::{engine, linker} ──► component::Version
//!                                        │   (read back by cache::CompileCache from its
//!                                        │    cache or a precompiled artifact, or compiled)
//!                                        ▼
//!  server::Server::run ── accept ─► connection (cap, head timeout, drain) ─► hyper http1
//!        │                                                     │
//!        │                handler::Handler::handle ◄───────────┘  (per request)
//!        │                  │ Host check, request_body, pool::Gate (slots, queue)
//!        │                  ▼
//!        │                component::Version::call ── instance::Instance (idle or new),
//!        │                  │                          yielding epoch deadline
//!        │                  ▼                          guest ─► kv::wit::KvView ─► Backend
//!        │                response::ResponseBody ── cut off on a late failure, access log
//!        ▼
//!  ops::signal::Signals ── drain        reload::Reloader ── file watch / SIGHUP
//!                                    ─► Candidate ─► Version::probe ─► Handler::swap
//! ```
//!
//! - [`cli`]: flags and environment variables; [`config`]: what `serve` runs with, and
//!   every default.
//! - [`server`]: the accept loop and the drain; `connection`: one client connection, the
//!   connection cap and the head timeout; `signal`: SIGTERM/SIGINT.
//! - `handler`: one request; `request_body`: the body limit, and draining a refused body so
//!   the client sees the 413; `response`: the answer's body and its access-log line;
//!   `failure`: every early failure as a JSON answer.
//! - `component`: the served component, loaded, identified, swapped, run and probed;
//!   `instance`: a guest instance, and its reuse for the next request; `reload`: when to
//!   try a new version; `pool`: how many instances fit, and the gate;
//!   `cache`: compiled components on disk, the cache's own and those `task-host precompile`
//!   made ahead of time, verified before wasmtime loads them.
//! - `runtime`: the engine, the compiler for other targets, and the linker; `imports`: what the host provides, and
//!   `task-host check`; `state`: the per-request store data; `guest_log`: guest output as
//!   log lines.
//! - [`kv`]: the wasi:keyvalue host and its backends.
//! - `healthcheck`: the probe for curl-less images, over [`client`]; [`telemetry`]: logging.

mod cache;
pub mod cli;
mod component;
pub mod config;
mod connection;
mod failure;
mod guest_log;
mod handler;
mod imports;
mod instance;
pub mod kv;
mod limiter;
pub mod ops;
mod pool;
mod reload;
mod request_body;
mod response;
mod runtime;
pub mod server;
mod state;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{CheckArgs, Command, EchoArgs, HealthcheckArgs, PrecompileArgs, ServeArgs};

/// Runs one subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => tokio_runtime()?.block_on(serve(*args)),
        Command::Healthcheck(args) => tokio_runtime()?.block_on(healthcheck(args)),
        Command::Check(args) => check(&args),
        Command::Precompile(args) => precompile(&args),
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
    let signals = ops::signal::Signals::install()?;
    let addr = args.addr;
    let listener = connection::listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let server = server::Server::new(listener, args.into()).await?;
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
        None => ops::healthcheck::default_url()?,
    };
    let status = ops::healthcheck::probe(&url, args.timeout.into()).await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let candidate = component::Candidate::read(&args.file)?;
    // The serving engine's configuration, for one instance: what compiles and links here
    // compiles and links in `serve`.
    let engine = runtime::engine(pool::Capacity::new(1, candidate.shape))?;
    let compiled = candidate.compile(&engine)?;
    print!("{}", imports::Report::of(&engine, &compiled).render());
    let pool::Shape {
        core_instances,
        memories,
        tables,
    } = candidate.shape;
    println!(
        "pool shape: {memories} memories, {tables} tables and {core_instances} core instances per \
         instance (plus the adapters wasmtime adds between nested components)"
    );
    candidate.link(&runtime::linker(&engine)?, &compiled)?;
    println!("ok: task-host can serve {}", args.file.display());
    Ok(ExitCode::SUCCESS)
}

fn precompile(args: &PrecompileArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.clone().unwrap_or_else(|| {
        format!(
            "{}-unknown-{}",
            std::env::consts::ARCH,
            std::env::consts::OS
        )
    });
    let candidate = component::Candidate::read(&args.file)?;
    let compiler = runtime::compiler(&target)?;
    let path = cache::precompile(&compiler, &target, &candidate, &args.out_dir)?;
    println!("{}", path.display());
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
