//! One HTTP request, start to finish: check the head, read the body within its limits, wait
//! for an instance slot, run the guest in a fresh `Store` under a deadline, and hand its
//! answer to [`ResponseBody`], or turn the failure into a JSON answer ([`Failure`]).
//!
//! Guests run on tokio's worker threads, so a guest that computes without pause would hold
//! a worker until its deadline, and two of them would stall a 2-core host. Every epoch tick
//! the guest therefore yields to the scheduler; only once its deadline has passed is it
//! interrupted.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::failure::Failure;
use crate::kv::Backend;
use crate::pool::{Capacity, Gate, Shape};
use crate::request_body::{self, BodyError};
use crate::response::{Exchange, ResponseBody, RunningGuest};
use crate::runtime::Runtime;
use crate::state::HostState;

/// The limits every request runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on one instance's linear memory, in bytes.
    pub max_memory: usize,
    /// Deadline for the guest's whole answer, head and body.
    pub request_timeout: Duration,
    /// Cap on the request body, in bytes.
    pub max_body: usize,
}

/// The component being served, the sha256 of the file it came from, and what one instance
/// of it takes from the pool.
#[derive(Clone)]
pub struct Loaded {
    /// The linked component.
    pub runtime: Runtime,
    /// Hex sha256 of the component file.
    pub digest: String,
    /// Its pool needs per instance.
    pub(crate) shape: Shape,
}

/// Serves requests with the current component and one key-value backend. The component can
/// be swapped at any time: each request takes the version current when it starts and keeps
/// it to the end, so in-flight requests finish on the old one.
pub struct Handler {
    current: RwLock<Loaded>,
    kv: Arc<dyn Backend>,
    limits: Limits,
    capacity: Capacity,
    gate: Gate,
    /// The authority given to HTTP/1.0 requests that name none: the address served.
    authority: HeaderValue,
    next_request_id: AtomicU64,
}

impl Handler {
    /// A handler for `loaded`, sharing `kv` across requests, admitting as many at once as
    /// `capacity` holds, each waiting up to `queue_timeout` for a slot.
    pub(crate) fn new(
        loaded: Loaded,
        kv: Arc<dyn Backend>,
        limits: Limits,
        capacity: Capacity,
        queue_timeout: Duration,
        authority: HeaderValue,
    ) -> Self {
        let gate = Gate::new(capacity.fits(loaded.shape), queue_timeout);
        Self {
            current: RwLock::new(loaded),
            kv,
            limits,
            capacity,
            gate,
            authority,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// How many requests may run the guest at once.
    pub fn instance_slots(&self) -> u32 {
        self.gate.size()
    }

    /// Answers `request`, always with a response. Its access-log line is written when the
    /// body is over.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let exchange = Exchange {
            request_id: self.next_request_id.fetch_add(1, Ordering::Relaxed),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        };
        let request_id = exchange.request_id;
        let mut response = match self.run_guest(request_id, request).await {
            Ok((response, guest)) => {
                let status = response.status().as_u16();
                response.map(|body| ResponseBody::streamed(body, guest, exchange, status))
            }
            Err(failure) => {
                let response = failure.into_response(request_id);
                let status = response.status().as_u16();
                response.map(|body| ResponseBody::host(body, exchange, status))
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
        let timeout = self.limits.request_timeout;
        let request = tokio::time::timeout(timeout, self.read_body(request))
            .await
            .map_err(|_| Failure::SlowBody(timeout))??;
        let slot = self.gate.enter().await.ok_or(Failure::Busy)?;
        let pre = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .runtime
            .pre
            .clone();
        self.call(pre, request_id, request, slot).await
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
            None if request.version() <= Version::HTTP_10 => {
                request.headers_mut().insert(HOST, self.authority.clone());
                Ok(())
            }
            _ => Err(Failure::BadHost),
        }
    }

    /// The digest of the component being served.
    pub fn digest(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .digest
            .clone()
    }

    /// Makes `loaded` the served component for every request from now on, with the gate
    /// resized to what the pool holds of it; returns the previous one.
    pub fn swap(&self, loaded: Loaded) -> Loaded {
        let slots = self.capacity.fits(loaded.shape);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if slots != self.gate.size() {
            tracing::info!(
                slots,
                "the new component's shape changes how many instances run at once"
            );
            self.gate.resize(slots);
        }
        std::mem::replace(&mut current, loaded)
    }

    /// Sends `GET path` to `runtime` in a throwaway instance, under the same limits and with
    /// the same store as real requests, and returns the status, or why there was none.
    pub async fn probe(&self, runtime: &Runtime, path: &str) -> Result<StatusCode, String> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        // wasi:http requests carry an authority; a probe has no client, so it names the host.
        let request = Request::get(path)
            .header(HOST, "localhost")
            .body(
                Full::new(Bytes::new())
                    .map_err(never as fn(Infallible) -> wasmtime_wasi_http::Error),
            )
            .map_err(|error| format!("invalid probe path {path:?}: {error}"))?;
        let slot = self
            .gate
            .enter()
            .await
            .ok_or_else(|| Failure::Busy.describe())?;
        match self
            .call(runtime.pre.clone(), request_id, request, slot)
            .await
        {
            Ok((response, _guest)) => Ok(response.status()),
            Err(failure) => Err(failure.describe()),
        }
    }

    /// Runs `pre` on one request in a fresh store, holding `slot` until the guest is done.
    /// Returns the response head, with the guest still writing the body.
    async fn call(
        &self,
        pre: ProxyPre<HostState>,
        request_id: u64,
        request: Request<GuestBody>,
        slot: OwnedSemaphorePermit,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), Failure> {
        let Limits {
            max_memory,
            request_timeout,
            max_body,
        } = self.limits;
        let deadline = tokio::time::Instant::now() + request_timeout;

        let mut store = Store::new(
            pre.engine(),
            HostState::new(request_id, Arc::clone(&self.kv), max_memory, max_body),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if tokio::time::Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                // tokio's own yield, as wasmtime advises for tokio: it defers the wake-up
                // until the worker has polled its other tasks and the I/O driver.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = store.data_mut().http();
        let (incoming, outparam) = match http.new_incoming_request(Scheme::Http, request) {
            Ok(incoming) => (
                incoming,
                http.new_response_outparam(sender).map_err(Failure::Guest)?,
            ),
            Err(error) => return Err(Failure::Guest(error)),
        };
        // The guest runs in its own task so it can keep streaming the body after it has
        // handed over the response head.
        let mut task = tokio::spawn(async move {
            let _slot = slot;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });

        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(response))) => Ok((
                response,
                RunningGuest {
                    task,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout: request_timeout,
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
                Ok(Err(error)) => Err(Failure::of_guest(error, request_timeout)),
                Err(join) => Err(Failure::Guest(wasmtime::format_err!(
                    "the guest task failed: {join}"
                ))),
            },
            Err(_) => {
                task.abort();
                Err(Failure::Timeout(request_timeout))
            }
        }
    }

    /// Reads the whole body within the limit, for a guest that expects it all at once.
    async fn read_body(&self, request: Request<Incoming>) -> Result<Request<GuestBody>, Failure> {
        let (parts, body) = request.into_parts();
        let bytes = request_body::read(&parts.headers, body, self.limits.max_body)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge(limit) => Failure::TooLarge(limit),
                BodyError::Unreadable(error) => Failure::BadBody(error.to_string()),
            })?;
        Ok(Request::from_parts(
            parts,
            Full::new(bytes).map_err(never as fn(Infallible) -> _),
        ))
    }
}

/// The request body handed to the guest: already fully read.
type GuestBody =
    http_body_util::combinators::MapErr<Full<Bytes>, fn(Infallible) -> wasmtime_wasi_http::Error>;

fn never(never: Infallible) -> wasmtime_wasi_http::Error {
    match never {}
}
