//! One loaded version of the component, and one request on it: an idle instance or a new
//! one ([`super::instance`]), a yielding epoch deadline, the guest in its own task, and the
//! probe a candidate version must pass before it is served.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use wasmtime::component::Component;

use super::cache::Source;
use super::guest::{GuestFailure, MemoryRefused, RunningGuest, guest_body};
use super::host_state::HostState;
use super::instance::{GuestEnv, Idle, Instance};
use super::pool::{Admission, Gate, Shape};
use crate::kv::wit::StoreOutage;

/// One loaded version of the component, ready to instantiate, and its idle instances.
pub(crate) struct Version {
    pre: ProxyPre<HostState>,
    /// Instances that served a request cleanly and may serve another.
    idle: Arc<Idle>,
    /// Hex sha256 of the file it came from.
    pub(crate) digest: String,
    /// What one instance takes from the pool.
    pub(crate) shape: Shape,
    /// Where its machine code came from.
    source: Source,
}

impl Version {
    /// The version linked as `pre`, from a file with sha256 `digest`, its machine code from
    /// `source`.
    pub(crate) fn new(
        pre: ProxyPre<HostState>,
        digest: String,
        shape: Shape,
        source: Source,
    ) -> Self {
        Self {
            pre,
            idle: Arc::new(Idle::default()),
            digest,
            shape,
            source,
        }
    }

    /// The compiled component, if Cranelift compiled it for this version rather than the
    /// cache or a precompiled artifact supplying it: what the cache should keep once this
    /// version is served (`CompileCache::keep`).
    pub(crate) fn compiled(&self) -> Option<Component> {
        (self.source == Source::Compiled).then(|| self.pre.instance_pre().component().clone())
    }

    /// Runs `request` in an idle instance of this version, or a new one, holding `slot`
    /// until the guest is done. Returns the response head, with the guest still writing the
    /// body. The guest yields every epoch tick and is interrupted `timeout` after it starts
    /// ([`Instance::begin`]).
    ///
    /// A guest that fails, or answers 5xx, after a store call found the store unavailable is
    /// answered 503 by the host instead ([`StoreOutage`] says why).
    pub(crate) async fn call(
        &self,
        env: &GuestEnv,
        request_id: u64,
        request: Request<Bytes>,
        slot: Admission,
        timeout: Duration,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), GuestFailure> {
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
        let (incoming, outparam) =
            match http.new_incoming_request(Scheme::Http, request.map(guest_body)) {
                Ok(incoming) => (
                    incoming,
                    http.new_response_outparam(sender)
                        .map_err(GuestFailure::Fault)?,
                ),
                Err(error) => return Err(GuestFailure::Fault(error)),
            };
        // The guest runs in its own task so it can keep streaming the body after it has
        // handed over the response head. The task owns the instance: an aborted task (a
        // deadline, a client gone) drops it, and only a clean return offers it for reuse.
        let idle = Arc::clone(&self.idle);
        let reuse = env.instance_reuse;
        let task = tokio::spawn(async move {
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
        let mut guest = RunningGuest::new(task, deadline, timeout);

        let answer = match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(response))) => Ok((response, guest)),
            Ok(Ok(Err(code))) => Err(GuestFailure::fault(format_args!(
                "the guest answered with error {code:?}"
            ))),
            // The guest dropped the outparam without answering: its task says why.
            Ok(Err(_)) => match std::future::poll_fn(|cx| guest.poll_end(cx)).await {
                Ok(()) => Err(GuestFailure::fault("the guest returned without a response")),
                Err(failure) => Err(failure),
            },
            Err(_) => {
                guest.abort();
                Err(GuestFailure::Timeout(timeout))
            }
        };
        match answer {
            Ok((response, guest)) if response.status().is_server_error() && outage.seen() => {
                guest.abort();
                Err(GuestFailure::StoreUnavailable)
            }
            Err(_) if outage.seen() => Err(GuestFailure::StoreUnavailable),
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
    /// goes on to be served), with the same store and limits as real requests and a slot
    /// from `gate`, and returns the status within `timeout`, or why there was none.
    pub(crate) async fn probe(
        &self,
        env: &GuestEnv,
        gate: &Gate,
        request_id: u64,
        path: &str,
        timeout: Duration,
    ) -> Result<StatusCode, String> {
        // wasi:http requests carry an authority; a probe has no client, so it names the host.
        let request = Request::get(path)
            .header(HOST, "localhost")
            .body(Bytes::new())
            .map_err(|error| format!("invalid probe path {path:?}: {error}"))?;
        let slot = gate
            .enter()
            .await
            .ok_or_else(|| GuestFailure::Busy.describe())?;
        match self.call(env, request_id, request, slot, timeout).await {
            Ok((response, _guest)) => Ok(response.status()),
            Err(failure) => Err(failure.describe()),
        }
    }
}
