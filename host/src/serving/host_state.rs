//! `HostState`, the data of one instance's `wasmtime::Store`: WASI, wasi:http and
//! wasi:keyvalue contexts over a single resource table, the current request's `list-keys`
//! cursors, the [`Limiter`], and the outgoing-HTTP policy ([`DenyOutgoing`]). An instance
//! may serve several requests one after another; [`HostState::begin`] starts each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use task_api_limits::MAX_BODY_ENV;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guest_log::GuestOutput;
use super::limiter::Limiter;
use super::outgoing::DenyOutgoing;
use crate::kv::Backend;
use crate::kv::cursor::Cursors;
use crate::kv::wit::{KvView, StoreOutage};

/// Store data for one instance.
pub(crate) struct HostState {
    /// The request being served, for the guest's output lines.
    request_id: Arc<AtomicU64>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    kv: Arc<dyn Backend>,
    outgoing: DenyOutgoing,
    outage: StoreOutage,
    /// The `list-keys` cursors handed to the current request.
    cursors: Cursors,
    /// The store's limiter: the cap on the guest's linear memory.
    pub(crate) limits: Limiter,
}

impl HostState {
    /// Fresh state for an instance. The guest's environment holds only its body limit,
    /// `max_body` (in [`MAX_BODY_ENV`]); it sees no arguments, no files and no network. Its
    /// stdout and stderr become log lines tagged with the id of the request being served.
    pub(crate) fn new(kv: Arc<dyn Backend>, max_memory: usize, max_body: usize) -> Self {
        let request_id = Arc::new(AtomicU64::new(0));
        let wasi = WasiCtx::builder()
            .env(MAX_BODY_ENV, max_body.to_string())
            .stdout(GuestOutput::new(Arc::clone(&request_id), "stdout"))
            .stderr(GuestOutput::new(Arc::clone(&request_id), "stderr"))
            .build();
        Self {
            request_id,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            kv,
            outgoing: DenyOutgoing,
            outage: StoreOutage::default(),
            cursors: Cursors::default(),
            limits: Limiter::new(max_memory),
        }
    }

    /// Starts serving request `request_id`, whose store calls that find the store
    /// unavailable are marked in `outage`.
    pub(crate) fn begin(&mut self, request_id: u64, outage: StoreOutage) {
        self.request_id.store(request_id, Ordering::Relaxed);
        self.outage = outage;
        // A cursor is the request's that was handed it, never the next one's on this instance.
        self.cursors = Cursors::default();
    }

    /// Whether a store call of the current request found the store unavailable.
    pub(crate) fn outage_seen(&self) -> bool {
        self.outage.seen()
    }

    /// The keyvalue view the linker hands to host functions.
    pub(crate) fn kv(&mut self) -> KvView<'_> {
        KvView::new(&self.kv, &mut self.table, &mut self.cursors, &self.outage)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}
