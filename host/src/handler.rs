//! One HTTP request, start to finish: check the head, read the body within its limits, wait
//! for an instance slot, run the served version of the component ([`crate::component`]),
//! and hand its answer to [`ResponseBody`], or turn the failure into a JSON answer
//! ([`Failure`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, StatusCode, Version as HttpVersion};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::component::{GuestEnv, Slot, Version};
use crate::failure::Failure;
use crate::ops::metrics::Metrics;
use crate::pool::{Capacity, Gate};
use crate::request_body::{self, BodyError, GuestBody};
use crate::response::{Exchange, Head, ResponseBody, RunningGuest};

/// Serves requests with the current version of the component. The version can be swapped
/// at any time: each request takes the version current when it starts and keeps it to the
/// end, so in-flight requests finish on the old one.
pub(crate) struct Handler {
    served: Slot,
    env: GuestEnv,
    capacity: Capacity,
    gate: Gate,
    /// The authority given to HTTP/1.0 requests that name none: the address served.
    authority: HeaderValue,
    metrics: Arc<Metrics>,
    next_request_id: AtomicU64,
}

impl Handler {
    /// A handler serving `version` with `env`, admitting as many requests at once as
    /// `capacity` holds of it, each waiting up to `queue_timeout` for a slot.
    pub(crate) fn new(
        version: Version,
        env: GuestEnv,
        capacity: Capacity,
        queue_timeout: Duration,
        authority: HeaderValue,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gate = Gate::new(
            capacity.fits(version.shape),
            queue_timeout,
            Arc::clone(&metrics),
        );
        Self {
            served: Slot::new(version),
            env,
            capacity,
            gate,
            authority,
            metrics,
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

    /// Answers `request`, always with a response. Its access-log line is written when the
    /// body is over.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let exchange = Exchange {
            _in_flight: self.metrics.request_started(),
            metrics: Arc::clone(&self.metrics),
            request_id: self.next_request_id(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        };
        let request_id = exchange.request_id;
        let mut response = match self.run_guest(request_id, request).await {
            Ok((response, guest)) => {
                let head = Head::of(&response);
                response.map(|body| ResponseBody::streamed(body, guest, exchange, head))
            }
            Err(failure) => {
                let response = failure.into_response(request_id, &self.metrics);
                let head = Head::of(&response);
                response.map(|body| ResponseBody::host(body, exchange, head))
            }
        };
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from(request_id));
        Ok(response)
    }

    async fn run_guest(
        &self,
        request_id: u64,
        mut request: Request<Incoming>,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), Failure> {
        self.check_host(&mut request)?;
        // A client that trickles its body would otherwise hold the connection and its buffer
        // forever; the guest's own deadline starts only once the body is in.
        let timeout = self.env.request_timeout;
        let request = tokio::time::timeout(timeout, self.read_body(request))
            .await
            .map_err(|_| Failure::SlowBody(timeout))??;
        let slot = self.gate.enter().await.ok_or(Failure::Busy)?;
        self.served
            .current()
            .call(&self.env, request_id, request, slot)
            .await
    }

    /// wasi:http gives every request an authority. HTTP/1.1 requires `Host`, so a request
    /// without one (or with one that is not text) is the client's error; HTTP/1.0 predates
    /// `Host`, and such a request is taken to name the address served.
    fn check_host(&self, request: &mut Request<Incoming>) -> Result<(), Failure> {
        if request.uri().authority().is_some() {
            return Ok(());
        }
        match request.headers().get(HOST) {
            Some(host) if !host.is_empty() && host.to_str().is_ok() => Ok(()),
            None if request.version() <= HttpVersion::HTTP_10 => {
                request.headers_mut().insert(HOST, self.authority.clone());
                Ok(())
            }
            _ => Err(Failure::BadHost),
        }
    }

    /// Reads the whole body within the limit, for a guest that expects it all at once.
    async fn read_body(&self, request: Request<Incoming>) -> Result<Request<GuestBody>, Failure> {
        let (parts, body) = request.into_parts();
        let bytes = request_body::read(&parts.headers, body, self.env.max_body)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge(limit) => Failure::TooLarge(limit),
                BodyError::Unreadable(error) => Failure::BadBody(error.to_string()),
            })?;
        Ok(Request::from_parts(parts, request_body::guest_body(bytes)))
    }

    /// Sends `GET path` to `candidate` in a new instance, under the same limits and
    /// with the same store as real requests, and returns the status, or why there was none.
    pub(crate) async fn probe(
        &self,
        candidate: &Version,
        path: &str,
    ) -> Result<StatusCode, String> {
        // Idle instances hold pool slots the gate does not count: free them, so that the
        // candidate's instance finds room in a pool sized for the gate.
        self.served.current().shed_idle();
        candidate
            .probe(&self.env, &self.gate, self.next_request_id(), path)
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

    fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }
}
