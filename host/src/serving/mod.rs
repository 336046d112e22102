//! The served component, in one room: how a version is read and loaded ([`candidate`]), run
//! ([`version`], [`instance`]), admitted ([`pool`]) and swapped ([`Serving`]), and what the
//! host gives it ([`runtime`], [`imports`], [`host_state`]).
//!
//! ```text
//!  candidate::Candidate::read(path) ── bytes, sha256, pool::Shape
//!        │ load(linker, cache): cache::CompileCache, or compile; check imports; link
//!        ▼
//!  version::Version ──► Serving (the slot every request reads and a swap writes, the gate)
//!        │
//!        └─ call(request): an idle instance or a new one (instance), a yielding epoch
//!                          deadline, the guest in its own task (guest::RunningGuest)
//! ```
//!
//! - [`Serving`]: the version being served, the [`pool::Gate`] that admits requests to it,
//!   and the probe and swap of a candidate. The HTTP front calls it for every request; the
//!   reloader probes and swaps through it.
//! - [`candidate`]: a component file read, identified and checked, then loaded as a
//!   [`version::Version`]; [`digest`]: how versions are named.
//! - [`version`]: one request on one version; [`instance`]: a guest instance and its reuse;
//!   [`guest`]: the guest's task after the head, and how a guest fails.
//! - [`pool`]: how many instances fit, and the gate; [`limiter`]: each instance's memory
//!   cap.
//! - [`runtime`]: the engine, the compiler for other targets, and the linker; [`imports`]:
//!   what the host provides, and `task-host check`; [`host_state`]: the store data of one
//!   instance; [`outgoing`]: the outgoing-HTTP policy; [`guest_log`]: guest output as log
//!   lines.
//! - [`cache`]: compiled components on disk, a leaf that knows digests and bytes only.

pub(crate) mod cache;
pub(crate) mod candidate;
pub(crate) mod digest;
pub(crate) mod guest;
pub(crate) mod guest_log;
pub(crate) mod host_state;
pub(crate) mod imports;
pub(crate) mod instance;
pub(crate) mod limiter;
pub(crate) mod outgoing;
pub(crate) mod pool;
pub(crate) mod runtime;
pub(crate) mod version;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::ops::metrics::Metrics;
use guest::{GuestFailure, RunningGuest};
use instance::GuestEnv;
use pool::{Capacity, Gate};
use version::Version;

/// Serves requests with the current version of the component. The version can be swapped
/// at any time: each request takes the version current when it starts and keeps it to the
/// end, so in-flight requests finish on the old one.
pub(crate) struct Serving {
    served: Slot,
    env: GuestEnv,
    capacity: Capacity,
    gate: Gate,
    /// How long a candidate has to answer its probe.
    probe_timeout: Duration,
    next_request_id: AtomicU64,
}

impl Serving {
    /// Serves `version` with `env`, admitting as many requests at once as `capacity` holds
    /// of it, each waiting up to `queue_timeout` for a slot; a candidate's probe has
    /// `probe_timeout`, or the request timeout if that is shorter.
    pub(crate) fn new(
        version: Version,
        env: GuestEnv,
        capacity: Capacity,
        queue_timeout: Duration,
        probe_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gate = Gate::new(capacity.fits(version.shape), queue_timeout, metrics);
        let probe_timeout = probe_timeout.min(env.request_timeout);
        Self {
            served: Slot::new(version),
            env,
            capacity,
            gate,
            probe_timeout,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// How many requests may run the guest at once.
    pub(crate) fn instance_slots(&self) -> u32 {
        self.gate.size()
    }

    /// The sha256 of the version being served.
    pub(crate) fn digest(&self) -> String {
        self.served.current().digest.clone()
    }

    /// A new request id: every request, and every probe, has its own.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `request`, its body read whole, on the version being served once a slot is
    /// free. Returns the response head, with the guest still writing the body.
    pub(crate) async fn call(
        &self,
        request_id: u64,
        request: Request<Bytes>,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), GuestFailure> {
        let slot = self.gate.enter().await.ok_or(GuestFailure::Busy)?;
        self.served
            .current()
            .call(
                &self.env,
                request_id,
                request,
                slot,
                self.env.request_timeout,
            )
            .await
    }

    /// Sends `GET path` to `candidate` in a new instance, under the same limits and
    /// with the same store as real requests, and returns the status within the probe
    /// timeout, or why there was none.
    pub(crate) async fn probe(
        &self,
        candidate: &Version,
        path: &str,
    ) -> Result<StatusCode, String> {
        // Idle instances hold pool slots the gate does not count: free them, so that the
        // candidate's instance finds room in a pool sized for the gate.
        self.served.current().shed_idle();
        candidate
            .probe(
                &self.env,
                &self.gate,
                self.next_request_id(),
                path,
                self.probe_timeout,
            )
            .await
    }

    /// Serves `version` to every request from now on, with the gate resized to what the
    /// pool holds of it; returns the version it replaces.
    pub(crate) fn swap(&self, version: Version) -> Arc<Version> {
        let slots = self.capacity.fits(version.shape);
        if slots != self.gate.size() {
            tracing::info!(
                slots,
                "the new version's shape changes how many instances run at once"
            );
            self.gate.resize(slots);
        }
        let old = self.served.swap(version);
        // Instances that were serving the old version when it was replaced are not reused.
        old.retire();
        old
    }
}

/// The version every new request is served by. Requests take the current one and keep it
/// to the end, so a swap never disturbs a request in flight.
struct Slot(RwLock<Arc<Version>>);

impl Slot {
    fn new(version: Version) -> Self {
        Self(RwLock::new(Arc::new(version)))
    }

    /// The version being served.
    fn current(&self) -> Arc<Version> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `version` from now on; returns the one it replaces.
    fn swap(&self, version: Version) -> Arc<Version> {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut current, Arc::new(version))
    }
}
