//! One HTTP request, start to finish: enforce the body limit, give the guest a fresh
//! `Store`, run it under a deadline, and turn every failure into a JSON answer. A hyper
//! service that returned `Err` would drop the connection with no response at all, so
//! nothing here does.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use wasmtime::{Store, Trap};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::kv::Backend;
use crate::request_body::{self, BodyError};
use crate::runtime::{EPOCH_TICK, Runtime};
use crate::state::HostState;

/// The limits every request runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on one instance's linear memory, in bytes.
    pub max_memory: usize,
    /// Deadline for the guest's answer.
    pub request_timeout: Duration,
    /// Cap on the request body, in bytes.
    pub max_body: usize,
}

/// The component being served, and the sha256 of the file it came from.
#[derive(Clone)]
pub struct Loaded {
    /// The linked component.
    pub runtime: Runtime,
    /// Hex sha256 of the component file.
    pub digest: String,
}

/// Serves requests with the current component and one key-value backend. The component can
/// be swapped at any time: each request takes the version current when it starts and keeps
/// it to the end, so in-flight requests finish on the old one.
pub struct Handler {
    current: RwLock<Loaded>,
    kv: Arc<dyn Backend>,
    limits: Limits,
    next_request_id: AtomicU64,
}

/// Why a request got no answer from the guest.
#[derive(Debug)]
enum Failure {
    /// The body is over the limit: 413, and the guest never ran.
    TooLarge(usize),
    /// The body could not be read off the connection: 400.
    BadBody(String),
    /// The body did not arrive within the request timeout: 408, and the guest never ran.
    SlowBody(Duration),
    /// The guest missed its deadline: 504.
    Timeout(Duration),
    /// Every instance slot is taken: 503.
    Busy,
    /// The guest trapped, or answered with an error instead of a response: 500.
    Guest(wasmtime::Error),
}

impl Handler {
    /// A handler for `loaded`, sharing `kv` across requests.
    pub fn new(loaded: Loaded, kv: Arc<dyn Backend>, limits: Limits) -> Self {
        Self {
            current: RwLock::new(loaded),
            kv,
            limits,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// Answers `request`, always with a response, and writes its access-log line.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, Infallible> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let mut response = match self.run_guest(request_id, request).await {
            Ok(response) => response,
            Err(failure) => failure.into_response(request_id),
        };
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from(request_id));
        tracing::info!(
            target: "access",
            request_id,
            %method,
            path,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        Ok(response)
    }

    async fn run_guest(
        &self,
        request_id: u64,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        // A client that trickles its body would otherwise hold the connection and its buffer
        // forever; the guest's own deadline starts only once the body is in.
        let timeout = self.limits.request_timeout;
        let request = tokio::time::timeout(timeout, self.read_body(request))
            .await
            .map_err(|_| Failure::SlowBody(timeout))??;
        let pre = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .runtime
            .pre
            .clone();
        self.call(pre, request_id, request).await
    }

    /// The digest of the component being served.
    pub fn digest(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .digest
            .clone()
    }

    /// Makes `loaded` the served component for every request from now on; returns the
    /// previous one.
    pub fn swap(&self, loaded: Loaded) -> Loaded {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
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
        match self.call(runtime.pre.clone(), request_id, request).await {
            Ok(response) => Ok(response.status()),
            Err(failure) => Err(failure.describe()),
        }
    }

    /// Runs `pre` on one request in a fresh store.
    async fn call(
        &self,
        pre: ProxyPre<HostState>,
        request_id: u64,
        request: Request<GuestBody>,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        let Limits {
            max_memory,
            request_timeout,
            ..
        } = self.limits;

        let mut store = Store::new(
            pre.engine(),
            HostState::new(request_id, Arc::clone(&self.kv), max_memory),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks(request_timeout));
        store.epoch_deadline_trap();

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
        let guest = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });

        match tokio::time::timeout(request_timeout, receiver).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => Err(Failure::Guest(wasmtime::format_err!(
                "the guest answered with error {code:?}"
            ))),
            // The guest dropped the outparam without answering: its task says why.
            Ok(Err(_)) => match guest.await {
                Ok(Ok(())) => Err(Failure::Guest(wasmtime::format_err!(
                    "the guest returned without a response"
                ))),
                Ok(Err(error)) => Err(classify(error, request_timeout)),
                Err(join) => Err(Failure::Guest(wasmtime::format_err!(
                    "the guest task failed: {join}"
                ))),
            },
            Err(_) => {
                guest.abort();
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

fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

fn classify(error: wasmtime::Error, timeout: Duration) -> Failure {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout(timeout),
        _ if error.is::<wasmtime::PoolConcurrencyLimitError>() => Failure::Busy,
        _ => Failure::Guest(error),
    }
}

impl Failure {
    /// One line saying what went wrong: the trap code rather than the wasm backtrace.
    fn describe(&self) -> String {
        match self {
            Self::TooLarge(limit) => format!("request body over {limit} bytes"),
            Self::BadBody(reason) => format!("unreadable request body: {reason}"),
            Self::SlowBody(timeout) => format!(
                "request body not received within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Timeout(timeout) => format!(
                "no response within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Busy => "every instance slot is busy".to_owned(),
            Self::Guest(error) => error
                .downcast_ref::<Trap>()
                .map_or_else(|| format!("{error:#}"), Trap::to_string),
        }
    }

    fn into_response(self, request_id: u64) -> Response<HyperOutgoingBody> {
        match self {
            // The rest of the body is being thrown away; the connection is not reusable.
            Self::TooLarge(limit) => closing(json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than {limit} bytes"),
            )),
            Self::BadBody(reason) => {
                tracing::info!(request_id, "unreadable request body: {reason}");
                json_response(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read",
                )
            }
            Self::SlowBody(timeout) => {
                tracing::info!(request_id, "{}", self.describe());
                // The rest of the body may still come; the connection is not reusable.
                closing(json_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "Request body not received within {}",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
            Self::Timeout(timeout) => {
                tracing::warn!(
                    request_id,
                    "guest interrupted: no response within {}",
                    humantime::format_duration(timeout)
                );
                json_response(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
            }
            Self::Busy => {
                tracing::warn!(request_id, "every instance slot is busy");
                let mut response =
                    json_response(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            Self::Guest(ref error) => {
                // The trap code is the one-line story; the wasm backtrace is for debugging.
                tracing::error!(request_id, "guest failed: {}", self.describe());
                tracing::debug!(request_id, "guest failure detail: {error:?}");
                json_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// `response` with `Connection: close`, for answers given while the request body is unread.
fn closing(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A `{"detail": ...}` answer, the shape FastAPI uses for every error.
pub fn json_response(status: StatusCode, detail: &str) -> Response<HyperOutgoingBody> {
    let body = Bytes::from(json!({ "detail": detail }).to_string());
    let mut response = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(Duration::from_secs(30)), 3000);
        assert_eq!(deadline_ticks(Duration::from_millis(15)), 2);
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
    }
}
