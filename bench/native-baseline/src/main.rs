//! native-baseline: the seed's task API in plain Rust on hyper, with the tasks in memory. It
//! is the floor `cargo xtask bench` measures the wasm hosts against: what serving the same
//! routes costs with no WebAssembly, no key-value store and no per-request instance.
//!
//! The models and their validation are the component's own, from `task-api-model`; the
//! routes and the store are written again here, since task-api is a `cdylib` only, and making
//! it an `rlib` as well would cost the shipped task_api.wasm its link-time optimization
//! (34 KB, 8% larger). So the hot paths do what the component does: JSON in, validated by the
//! same code, JSON out, with the seed's shapes.
//!
//! - [`server`]: hyper's HTTP/1.1 on tokio. A request body is read whole, up to
//!   `--max-body`, and the answer is one JSON body.
//! - [`api`]: the routes (`/`, `/health`, `/tasks`, `/tasks/{task_id}`,
//!   `/tasks/{task_id}/complete`), their handlers and FastAPI's error answers.
//! - [`store`]: the tasks by id behind a read-write lock, as the seed keeps them in a list.
//!
//! It prints task-host's startup line, `listening on http://ADDR`, so that the bench starts
//! and finds it as it does every other server (`test_support::ServerChild`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use task_api_limits::DEFAULT_MAX_BODY;

mod api;
mod server;
mod store;

/// Serves the seed's task API natively, with the tasks in memory.
#[derive(Debug, Parser)]
#[command(name = "native-baseline", version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (the startup line says which).
    #[arg(long, env = "NATIVE_BASELINE_ADDR", default_value = "127.0.0.1:8000")]
    addr: SocketAddr,

    /// Largest request body accepted, in bytes; a larger one gets 413, as from task-api.
    #[arg(long, env = "NATIVE_BASELINE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.addr)
            .await
            .with_context(|| format!("cannot listen on {}", cli.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        println!("listening on http://{addr}");
        server::run(listener, Arc::default(), cli.max_body).await;
        Ok(())
    })
}
