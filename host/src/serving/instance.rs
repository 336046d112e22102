//! Guest instances and their reuse. An [`Instance`] is a `Store` with the component
//! instantiated in it; it serves one request at a time, and up to `--instance-reuse` of
//! them one after another. Between requests it waits in its version's [`Idle`] list.
//!
//! Reuse skips instantiation (the pool slot, the guest's start-up code), but the guest's
//! globals live on from one request to the next. So an instance goes back to the list only
//! if its request ended cleanly: the guest returned without a trap, within its deadline,
//! without being refused memory, without finding the store unavailable, and while its
//! version was still the one served. Anything else drops it.
//!
//! `wasmtime_wasi_http::handler::ProxyHandler` does this too, but runs guests inside
//! `Store::run_concurrent`, which needs the engine's component-model-async support and,
//! by its own docs, can neither be relied on for timeouts nor applies backpressure. Guests
//! here are p2 components that serve one request at a time, and every request already
//! runs in its own task under the host's deadline, gate and limiter, so a list of idle
//! instances is all reuse takes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::Resource;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::http::types::{IncomingRequest, ResponseOutparam};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::host_state::HostState;
use crate::kv::Backend;
use crate::kv::wit::StoreOutage;
use crate::ops::metrics::Metrics;

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

/// A store, and the component instantiated in it once its first request runs.
pub(crate) struct Instance {
    /// The store every request of this instance runs in.
    pub(crate) store: Store<HostState>,
    proxy: Option<Proxy>,
    /// Requests begun in this instance.
    served: u32,
}

impl Instance {
    /// A store for a new instance, with the limits of `env`. The component is instantiated
    /// by the first [`Instance::handle`], in the request's own task.
    pub(crate) fn new(pre: &ProxyPre<HostState>, env: &GuestEnv) -> Self {
        let mut store = Store::new(
            pre.engine(),
            HostState::new(Arc::clone(&env.kv), env.max_memory, env.max_body),
        );
        store.limiter(|state| &mut state.limits);
        Self {
            store,
            proxy: None,
            served: 0,
        }
    }

    /// Starts request `request_id`, which must be answered by `deadline`.
    ///
    /// Guests run on tokio's worker threads, so a guest that computes without pause would
    /// hold a worker until its deadline, and two of them would stall a 2-core host. Every
    /// epoch tick the guest therefore yields to the scheduler; only once its deadline has
    /// passed is it interrupted.
    pub(crate) fn begin(&mut self, request_id: u64, outage: StoreOutage, deadline: Instant) {
        self.served += 1;
        self.store.data_mut().begin(request_id, outage);
        self.store.set_epoch_deadline(1);
        self.store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                // tokio's own yield, as wasmtime advises for tokio: it defers the wake-up
                // until the worker has polled its other tasks and the I/O driver.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
    }

    /// Runs the guest's `handle` on the request begun last, instantiating the component
    /// first if this is the instance's first request.
    pub(crate) async fn handle(
        &mut self,
        pre: &ProxyPre<HostState>,
        request: Resource<IncomingRequest>,
        outparam: Resource<ResponseOutparam>,
    ) -> wasmtime::Result<()> {
        let proxy = match self.proxy.take() {
            Some(proxy) => proxy,
            None => pre.instantiate_async(&mut self.store).await?,
        };
        let result = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut self.store, request, outparam)
            .await;
        self.proxy = Some(proxy);
        result
    }
}

/// The idle instances of one version.
#[derive(Default)]
pub(crate) struct Idle {
    instances: Mutex<Vec<Instance>>,
    /// Set once the version is swapped out: its instances are dropped from then on.
    retired: AtomicBool,
}

impl Idle {
    /// An idle instance, the one that ran last, while its caches are warm.
    pub(crate) fn take(&self) -> Option<Instance> {
        self.lock().pop()
    }

    /// Keeps `instance`, whose request returned cleanly, for another request if it has
    /// served fewer than `reuse` and finished by `deadline`; drops it otherwise.
    pub(crate) fn put_back(&self, instance: Instance, reuse: u32, deadline: Instant) {
        let state = instance.store.data();
        let reusable = instance.served < reuse
            && instance.proxy.is_some()
            && Instant::now() < deadline
            && !state.limits.memory_refused()
            && !state.outage_seen();
        if !reusable {
            return;
        }
        let mut idle = self.lock();
        // Under the lock, so that no instance slips in after `retire` emptied the list.
        if !self.retired.load(Ordering::Relaxed) {
            idle.push(instance);
        }
    }

    /// Drops every idle instance, giving their pool slots back: before a probe instantiates
    /// a candidate, so that idle instances cannot crowd it out of the pool.
    pub(crate) fn shed(&self) {
        drop(std::mem::take(&mut *self.lock()));
    }

    /// Drops every idle instance, and every instance that finishes from now on.
    pub(crate) fn retire(&self) {
        let instances = {
            let mut idle = self.lock();
            self.retired.store(true, Ordering::Relaxed);
            std::mem::take(&mut *idle)
        };
        drop(instances);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Instance>> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
