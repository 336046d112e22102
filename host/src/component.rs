//! The served component: loading a version of it from its file (read, digest, compile,
//! check, link), its identity, the slot that every request reads and a swap writes, running
//! one request on a version, and the probe a reload candidate must pass.
//!
//! ```text
//!  Candidate::read(path) ── bytes, sha256, pool shape
//!        │ load(linker, cache): compile with readable errors (or read the compile cache),
//!        │                      check imports and exports, link
//!        ▼
//!     Version ──► Slot (current version; requests take an Arc, swaps replace it)
//!        │
//!        └─ call(request): an idle instance or a new one (instance.rs), a yielding epoch
//!                          deadline, the guest in its own task
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Engine, bail};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::cache::CompileCache;
use crate::failure::{Failure, MemoryRefused};
use crate::imports::{HANDLER_EXPORT, Report};
use crate::instance::{Idle, Instance};
use crate::kv::Backend;
use crate::kv::wit::StoreOutage;
use crate::ops::metrics::Metrics;
use crate::pool::{Admission, Gate, Shape};
use crate::request_body::GuestBody;
use crate::response::RunningGuest;
use crate::state::HostState;

/// A component file, read and identified but not compiled yet.
pub(crate) struct Candidate {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Hex sha256 of the file: how the log names versions.
    pub(crate) digest: String,
    /// What one instance takes from the pool.
    pub(crate) shape: Shape,
}

impl Candidate {
    /// Reads the component file at `path`. A file that is not WebAssembly at all is refused
    /// here; whether it is a component is for [`Candidate::compile`] to say.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).map_err(|error| {
            anyhow::anyhow!("cannot read component {}: {error}", path.display())
        })?;
        let shape = Shape::of(&bytes).map_err(|error| {
            anyhow::anyhow!("{} is not a WebAssembly file: {error}", path.display())
        })?;
        Ok(Self {
            digest: digest(&bytes),
            path: path.to_owned(),
            bytes,
            shape,
        })
    }

    /// Compiles the component, telling a core module apart from a component.
    pub(crate) fn compile(&self, engine: &Engine) -> wasmtime::Result<Component> {
        self.ensure_component()?;
        Component::new(engine, &self.bytes)
            .with_context(|| format!("cannot compile component {}", self.path.display()))
    }

    /// Compiles the component for `compiler`'s target, into the bytes
    /// [`Component::deserialize`] loads there.
    pub(crate) fn precompile(&self, compiler: &Engine) -> wasmtime::Result<Vec<u8>> {
        self.ensure_component()?;
        compiler
            .precompile_component(&self.bytes)
            .with_context(|| format!("cannot compile component {}", self.path.display()))
    }

    /// Refuses a core module or a file that is not WebAssembly, with what to do about it.
    fn ensure_component(&self) -> wasmtime::Result<()> {
        let path = self.path.display();
        match wasm_kind(&self.bytes) {
            WasmKind::Component => Ok(()),
            WasmKind::CoreModule => bail!(
                "{path} is a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
            ),
            WasmKind::NotWasm => bail!("{path} is not a WebAssembly file"),
        }
    }

    /// Checks that the host can serve `component` (this candidate, compiled) and links it.
    /// Every failure is one sentence that names the file and the problem.
    pub(crate) fn link(
        &self,
        linker: &Linker<HostState>,
        component: &Component,
    ) -> wasmtime::Result<ProxyPre<HostState>> {
        let path = self.path.display();
        let report = Report::of(linker.engine(), component);
        if let Some(sentence) = report.missing_sentence() {
            bail!("{path}: {sentence}");
        }
        if !report.serves_http() {
            bail!(
                "{path}: component does not export {HANDLER_EXPORT}@0.2.x, so it cannot serve HTTP"
            );
        }
        let instance_pre = linker
            .instantiate_pre(component)
            .with_context(|| format!("{path}: cannot link the component"))?;
        ProxyPre::new(instance_pre)
            .with_context(|| format!("{path}: not a wasi:http/proxy component"))
    }

    /// Compiles (or finds in `cache`), checks and links the candidate with the linker's
    /// engine.
    pub(crate) fn load(
        self,
        linker: &Linker<HostState>,
        cache: &CompileCache,
    ) -> wasmtime::Result<Version> {
        let engine = linker.engine();
        let (component, _) = cache.load(engine, &self.digest, || self.compile(engine))?;
        let pre = self.link(linker, &component)?;
        Ok(Version {
            pre,
            idle: Arc::new(Idle::default()),
            digest: self.digest,
            shape: self.shape,
        })
    }
}

/// Hex sha256 of `bytes`.
fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` in lowercase hex, as digests are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The first 12 hex digits of a digest: how log lines name a version.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
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

/// One loaded version of the component, ready to instantiate, and its idle instances.
pub(crate) struct Version {
    pre: ProxyPre<HostState>,
    /// Instances that served a request cleanly and may serve another.
    idle: Arc<Idle>,
    /// Hex sha256 of the file it came from.
    pub(crate) digest: String,
    /// What one instance takes from the pool.
    pub(crate) shape: Shape,
}

/// What every guest instance runs with.
#[derive(Clone)]
pub(crate) struct GuestEnv {
    /// The key-value store every request shares.
    pub(crate) kv: Arc<dyn Backend>,
    /// The deadline for a guest's whole answer, head and body, from its start.
    pub(crate) request_timeout: Duration,
    /// The cap on each of an instance's linear memories, in bytes.
    pub(crate) max_memory: usize,
    /// The largest request body, in bytes: the host refuses larger ones, and tells the
    /// guest so that it refuses the same.
    pub(crate) max_body: usize,
    /// How many requests one instance serves, one after another; 1 is a fresh instance
    /// for every request.
    pub(crate) instance_reuse: u32,
    /// Where each request's instance is counted: new, or reused.
    pub(crate) metrics: Arc<Metrics>,
}

impl Version {
    /// Runs `request` in an idle instance of this version, or a new one, holding `slot`
    /// until the guest is done. Returns the response head, with the guest still writing the
    /// body. The guest yields every epoch tick and is interrupted past its deadline
    /// ([`Instance::begin`]).
    ///
    /// A guest that fails, or answers 5xx, after a store call found the store unavailable is
    /// answered 503 by the host instead ([`StoreOutage`] says why).
    pub(crate) async fn call(
        &self,
        env: &GuestEnv,
        request_id: u64,
        request: Request<GuestBody>,
        slot: Admission,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), Failure> {
        let timeout = env.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let pre = self.pre.clone();
        let outage = StoreOutage::default();
        let (mut instance, reused) = match self.idle.take() {
            Some(instance) => (instance, true),
            None => (Instance::new(&pre, env), false),
        };
        env.metrics.guest_instance(reused);
        instance.begin(request_id, outage.clone(), deadline);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = instance.store.data_mut().http();
        let (incoming, outparam) = match http.new_incoming_request(Scheme::Http, request) {
            Ok(incoming) => (
                incoming,
                http.new_response_outparam(sender).map_err(Failure::Guest)?,
            ),
            Err(error) => return Err(Failure::Guest(error)),
        };
        // The guest runs in its own task so it can keep streaming the body after it has
        // handed over the response head. The task owns the instance: an aborted task (a
        // deadline, a client gone) drops it, and only a clean return offers it for reuse.
        let idle = Arc::clone(&self.idle);
        let reuse = env.instance_reuse;
        let mut task = tokio::spawn(async move {
            let _slot = slot;
            match instance.handle(&pre, incoming, outparam).await {
                // A guest refused memory usually fails as a plain trap (Rust aborts on a
                // failed allocation); the limiter's witness says it was the cap.
                Err(error) if instance.store.data().limits.memory_refused() => {
                    Err(error.context(MemoryRefused))
                }
                Err(error) => Err(error),
                Ok(()) => {
                    idle.put_back(instance, reuse, deadline);
                    Ok(())
                }
            }
        });

        let answer = match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(response))) => Ok((
                response,
                RunningGuest {
                    task,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout,
                },
            )),
            Ok(Ok(Err(code))) => Err(Failure::Guest(wasmtime::format_err!(
                "the guest answered with error {code:?}"
            ))),
            // The guest dropped the outparam without answering: its task says why.
            Ok(Err(_)) => match (&mut task).await {
                Ok(Ok(())) => Err(Failure::Guest(wasmtime::format_err!(
                    "the guest returned without a response"
                ))),
                Ok(Err(error)) => Err(Failure::of_guest(error, timeout)),
                Err(join) => Err(Failure::Guest(wasmtime::format_err!(
                    "the guest task failed: {join}"
                ))),
            },
            Err(_) => {
                task.abort();
                Err(Failure::Timeout(timeout))
            }
        };
        match answer {
            Ok((response, guest)) if response.status().is_server_error() && outage.seen() => {
                guest.task.abort();
                Err(Failure::StoreUnavailable)
            }
            Err(_) if outage.seen() => Err(Failure::StoreUnavailable),
            answer => answer,
        }
    }

    /// Drops this version's idle instances, giving their pool slots back.
    pub(crate) fn shed_idle(&self) {
        self.idle.shed();
    }

    /// Stops reusing this version's instances: it is no longer served.
    pub(crate) fn retire(&self) {
        self.idle.retire();
    }

    /// Sends `GET path` to this version in a new instance (kept for reuse if this version
    /// goes on to be served), with the same store and limits as real requests and a slot from `gate`, and returns the status, or why there
    /// was none.
    pub(crate) async fn probe(
        &self,
        env: &GuestEnv,
        gate: &Gate,
        request_id: u64,
        path: &str,
    ) -> Result<StatusCode, String> {
        // wasi:http requests carry an authority; a probe has no client, so it names the host.
        let request = Request::get(path)
            .header(HOST, "localhost")
            .body(crate::request_body::guest_body(Bytes::new()))
            .map_err(|error| format!("invalid probe path {path:?}: {error}"))?;
        let slot = gate.enter().await.ok_or_else(|| Failure::Busy.describe())?;
        match self.call(env, request_id, request, slot).await {
            Ok((response, _guest)) => Ok(response.status()),
            Err(failure) => Err(failure.describe()),
        }
    }
}

/// The version every new request is served by. Requests take the current one and keep it
/// to the end, so a swap never disturbs a request in flight.
pub(crate) struct Slot(RwLock<Arc<Version>>);

impl Slot {
    /// A slot serving `version`.
    pub(crate) fn new(version: Version) -> Self {
        Self(RwLock::new(Arc::new(version)))
    }

    /// The version being served.
    pub(crate) fn current(&self) -> Arc<Version> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `version` from now on; returns the one it replaces.
    pub(crate) fn swap(&self, version: Version) -> Arc<Version> {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut current, Arc::new(version))
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

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
