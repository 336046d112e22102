//! The standalone component, `task_api_standalone.wasm`: task_api.wasm with its
//! `wasi:keyvalue` imports plugged by the kv-fs adapter, composed with `wac-graph`, so stock
//! `wasmtime serve -S cli --dir` can give it durable state. The result imports only what
//! wasmtime serves.

use std::path::Path;

use anyhow::{Context as _, ensure};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// The component whose `wasi:keyvalue` imports are plugged.
pub(crate) const SOCKET: &str = "task_api.wasm";
/// The kv-fs adapter, which exports `wasi:keyvalue`.
pub(crate) const PLUG: &str = "kv_fs.wasm";
/// The composition, for stock `wasmtime serve`.
pub(crate) const FILE: &str = "task_api_standalone.wasm";

/// Composes [`FILE`] from [`SOCKET`] and [`PLUG`], all in `dir`.
pub(crate) fn compose(dir: &Path) -> anyhow::Result<()> {
    eprintln!("==> compose: {SOCKET} + {PLUG} -> {FILE}");
    plug(&dir.join(SOCKET), &dir.join(PLUG), &dir.join(FILE))
}

/// Plugs every import of `socket` that `plug` exports, and writes the composition to `out`.
fn plug(socket: &Path, plug: &Path, out: &Path) -> anyhow::Result<()> {
    let mut graph = CompositionGraph::new();
    let socket_package = Package::from_file("task-api:app", None, socket, graph.types_mut())
        .with_context(|| format!("reading {}", socket.display()))?;
    let socket_id = graph.register_package(socket_package)?;
    let plug_package = Package::from_file("task-api:kv-fs", None, plug, graph.types_mut())
        .with_context(|| format!("reading {}", plug.display()))?;
    let plug_id = graph.register_package(plug_package)?;
    wac_graph::plug(&mut graph, vec![plug_id], socket_id)
        .with_context(|| format!("plugging {} into {}", plug.display(), socket.display()))?;
    let bytes = graph
        .encode(EncodeOptions::default())
        .context("encoding the composition")?;
    ensure!(!bytes.is_empty(), "the composition is empty");
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}
