//! The wasmtime side of serving: one [`Engine`] configured for many short-lived instances,
//! the component loaded and checked with readable errors, and the linker that turns it into
//! a [`ProxyPre`] that every request instantiates from.

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Result, bail};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::imports::{HANDLER_EXPORT, Report};
use crate::kv;
use crate::pool::Capacity;
use crate::state::HostState;

/// How often the epoch advances. Request deadlines are counted in these ticks, so a guest
/// overruns its timeout by at most one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// A compiled, linked component, ready to instantiate once per request.
#[derive(Clone)]
pub struct Runtime {
    /// The pre-instantiated component.
    pub pre: ProxyPre<HostState>,
}

/// Builds the engine: a pooling allocator with room for `capacity` and `max_memory` per
/// memory, and epoch interruption so that guests can be made to yield and stopped. If the
/// address space cannot hold that many slots (a low `ulimit -v`, a 32-bit-like VM), the pool
/// is halved until it fits, with one log line, rather than failing to start.
pub(crate) fn engine(max_memory: usize, capacity: Capacity) -> Result<(Engine, Capacity)> {
    let mut capacity = capacity;
    loop {
        let mut pool = PoolingAllocationConfig::default();
        capacity.configure(&mut pool);
        pool.max_memory_size(max_memory);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match (Engine::new(&config), capacity.halved()) {
            (Ok(engine), _) => return Ok((engine, capacity)),
            (Err(error), Some(half)) => {
                tracing::warn!(
                    "the address space cannot hold {} instances ({error}); trying {}",
                    capacity.instances(),
                    half.instances()
                );
                capacity = half;
            }
            (Err(error), None) => return Err(error.context("configuring wasmtime")),
        }
    }
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] on a background thread, for the life of
/// the process. A thread, not a tokio task, so a busy runtime cannot starve it.
pub fn start_epoch_ticker(engine: &Engine) -> Result<()> {
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
pub fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    // Rust std guests import wasi:cli (environment, exit, terminal-*), which the proxy-only
    // linker lacks, so link all of WASI and add only the HTTP interfaces on top.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    kv::add_to_linker(&mut linker, HostState::kv)?;
    Ok(linker)
}

/// Compiles, checks and links the bytes of the component file at `path`, with the linker's
/// engine. Every failure is one sentence that names the file and the problem.
pub fn load(linker: &Linker<HostState>, path: &Path, bytes: &[u8]) -> Result<Runtime> {
    let engine = linker.engine();
    link(engine, linker, path, &compile_bytes(engine, path, bytes)?)
}

/// Checks that the host can serve `component` (read from `path`) and links it.
pub fn link(
    engine: &Engine,
    linker: &Linker<HostState>,
    path: &Path,
    component: &Component,
) -> Result<Runtime> {
    let report = Report::of(engine, component);
    if let Some(sentence) = report.missing_sentence() {
        bail!("{}: {sentence}", path.display());
    }
    if !report.serves_http() {
        bail!(
            "{}: component does not export {HANDLER_EXPORT}@0.2.x, so it cannot serve HTTP",
            path.display()
        );
    }
    let instance_pre = linker
        .instantiate_pre(component)
        .with_context(|| format!("{}: cannot link the component", path.display()))?;
    let pre = ProxyPre::new(instance_pre)
        .with_context(|| format!("{}: not a wasi:http/proxy component", path.display()))?;
    Ok(Runtime { pre })
}

/// Reads and compiles a component, telling apart a missing file, a core module and garbage.
pub fn compile(engine: &Engine, path: &Path) -> Result<Component> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    compile_bytes(engine, path, &bytes)
}

/// Compiles the bytes of the component file at `path` (named in errors).
pub fn compile_bytes(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Component> {
    match wasm_kind(bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => bail!(
            "{} is a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
            path.display()
        ),
        WasmKind::NotWasm => bail!("{} is not a WebAssembly file", path.display()),
    }
    Component::new(engine, bytes)
        .with_context(|| format!("cannot compile component {}", path.display()))
}

/// What a file's 8-byte preamble says it is.
#[derive(Debug, PartialEq, Eq)]
enum WasmKind {
    Component,
    CoreModule,
    NotWasm,
}

fn wasm_kind(bytes: &[u8]) -> WasmKind {
    // Magic `\0asm`, then a version field whose last two bytes are the layer: 0 for a core
    // module, 1 for a component.
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => WasmKind::CoreModule,
        _ => WasmKind::NotWasm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preamble_tells_components_from_modules() {
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0rest"), WasmKind::Component);
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0rest"), WasmKind::CoreModule);
        assert_eq!(wasm_kind(b"garbage!"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b"\0asm"), WasmKind::NotWasm);
    }
}
