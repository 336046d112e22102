//! native-baseline: the seed's task API on hyper, with the tasks in memory. It is the floor
//! `cargo xtask bench` measures the wasm hosts against: the same API code, keeping tasks as
//! JSON under the same keys as the component does, but with no WebAssembly, no host call per
//! store operation and no per-request instance.
//!
//! Like the task-api component, it is a thin binding over `task-api-core`, which owns the
//! routes, handlers, validation, error answers and the tasks' layout in a store: both answer
//! alike down to the byte, and the bench compares the bindings, not two copies of the API.
//! (This crate once kept a copy of the routes because task-api was a `cdylib` only, and
//! making it an `rlib` too cost task_api.wasm 8% of its link-time optimization. The core is a
//! crate of its own instead, and costs the component about 0.5%.)
//!
//! - [`server`]: hyper's HTTP/1.1 on tokio. A request body is read whole, up to
//!   `--max-body`, and handed to the core's `api::handle`; the answer goes back as one JSON
//!   body with its length, a listing written out in memory first.
//! - [`store`]: the core's `Store` over a map behind a read-write lock.
//!
//! It prints task-host's startup line, `listening on http://ADDR`, so that the bench starts
//! and finds it as it does every other server (`test_support::ServerChild`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use task_api_limits::DEFAULT_MAX_BODY;

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
