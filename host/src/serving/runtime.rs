//! The wasmtime side of serving: one [`Engine`] configured for many short-lived instances,
//! the clock that lets guests be made to yield and stopped, and the [`Linker`] with every
//! interface the host provides.

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Result};

use super::host_state::HostState;
use super::pool::Capacity;
use crate::kv;

/// How often the epoch advances. A guest yields to other tasks once per tick and overruns
/// its deadline by at most one.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine, with epoch interruption and a pooling allocator sized for `capacity`.
/// A pool reserves its address space up front; where that space is short (a low
/// `ulimit -v`, a small VM), instances are allocated on demand instead, as `wasmtime serve`
/// also decides, with one log line, rather than failing to start.
pub(crate) fn engine(capacity: Capacity) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    capacity.configure(&mut pool);
    let mut config = compilation();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(
                "the address space cannot hold a pool of {} instances ({error:#}); allocating \
                 instances on demand instead",
                capacity.instances()
            );
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config).context("configuring wasmtime")
        }
    }
}

/// An engine that only compiles, for `target` (a triple such as
/// `aarch64-unknown-linux-musl`), with the serving engine's settings but none of the CPU
/// features of the machine it runs on: its artifacts load on any machine of that
/// architecture and operating system. `task-host precompile` uses it.
pub(crate) fn compiler(target: &str) -> Result<Engine> {
    let mut config = compilation();
    config
        .target(target)
        .with_context(|| format!("unknown target {target:?}"))?;
    Engine::new(&config).with_context(|| {
        format!(
            "this task-host cannot compile for {target} (it is built with Cranelift's \
             backend for {} only; the `cross-compile` feature adds the others)",
            std::env::consts::ARCH
        )
    })
}

/// The settings compiled code depends on, and so which engines can load an artifact: the
/// one place both the serving engine and [`compiler`] take them from.
fn compilation() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] on a background thread, for the life of
/// the process. A thread, not a tokio task, so a busy runtime cannot starve it.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("starting the epoch ticker")?;
    Ok(())
}

/// The linker every component is served with: WASI, wasi:http and wasi:keyvalue.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    // Rust std guests import wasi:cli (environment, exit, terminal-*), which the proxy-only
    // linker lacks, so link all of WASI and add only the HTTP interfaces on top.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    kv::wit::add_to_linker(&mut linker, HostState::kv)?;
    Ok(linker)
}
