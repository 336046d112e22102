//! # task-host
//!
//! A wasmtime host that serves any `wasi:http/proxy` component over HTTP/1.1 and gives it a
//! `wasi:keyvalue` store that every request shares and that survives restarts.
//!
//! ## How the pieces fit
//!
//! ```text
//!  cli::ServeArgs ─► config::Config ─► http::server::Server::new(listener, config)
//!                                        │ kv::StoreSpec::open ───────────────► Arc<dyn kv::Backend>
//!                                        │ serving::candidate::Candidate::read ► serving::pool::Shape
//!                                        │ serving::runtime::{engine, linker} ─► serving::version::Version
//!                                        │   (read back by serving::cache::CompileCache, or compiled)
//!                                        ▼
//!  Server::run ── accept ─► http::connection (cap, head timeout, drain) ─► hyper http1
//!        │                                                     │
//!        │            http::handler::Handler::handle ◄─────────┘  (per request)
//!        │              │ Host check, http::request_body
//!        │              ▼
//!        │            serving::Serving::call ── pool::Gate, then Version::call: an idle or
//!        │              │                        new instance, a yielding epoch deadline;
//!        │              ▼                        guest ─► kv::wit::KvView ─► Backend
//!        │            http::response::ResponseBody ── cut off on a late failure, access log
//!        ▼
//!  ops::signal::Signals ── drain       reload::Reloader ── file watch / SIGHUP
//!                                        ─► Candidate ─► Serving::probe ─► Serving::swap
//! ```
//!
//! - [`cli`]: flags and environment variables; [`config`]: what `serve` runs with, and
//!   every default.
//! - `http`: the front: the accept loop and the drain, connections, one request's path,
//!   its body, its answer, and every early failure as a JSON answer.
//! - `serving`: the served component, in one room: loaded, identified, run, admitted,
//!   probed and swapped, and the compile cache beside it.
//! - `reload`: when to try a new version: a changed file, or SIGHUP.
//! - [`kv`]: the wasi:keyvalue host and its backends.
//! - [`ops`]: the admin listener, metrics, logging, signals and `task-host healthcheck`.

pub mod cli;
pub mod config;
mod http;
pub mod kv;
pub mod ops;
mod reload;
mod serving;

pub use http::server::Server;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{CheckArgs, Command, EchoArgs, HealthcheckArgs, PrecompileArgs, ServeArgs};
use crate::serving::cache::precompiled;
use crate::serving::candidate::Candidate;
use crate::serving::imports::Report;
use crate::serving::pool::{Capacity, Shape};
use crate::serving::runtime;

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
    let listener =
        http::connection::listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let server = Server::new(listener, args.into()).await?;
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
    let candidate = Candidate::read(&args.file)?;
    // The serving engine's configuration, for one instance: what compiles and links here
    // compiles and links in `serve`.
    let engine = runtime::engine(Capacity::new(1, candidate.shape))?;
    let compiled = candidate.compile(&engine)?;
    print!("{}", Report::of(&engine, &compiled).render());
    let Shape {
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
    let arch = target.split('-').next().unwrap_or_default();
    let candidate = Candidate::read(&args.file)?;
    let compiler = runtime::compiler(&target)?;
    let artifact = candidate.precompile(&compiler)?;
    let path = precompiled::write(&args.out_dir, arch, &candidate.digest, &artifact)?;
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
