//! Every way a request can fail before the guest's answer starts, the one-line story the log
//! tells about it, and the JSON answer the client gets. A hyper service that returned `Err`
//! would drop the connection with no response at all, so every failure becomes an answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;
use wasmtime::Trap;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::ops::metrics::{Metrics, Phase};

/// Why a request got no answer from the guest.
#[derive(Debug)]
pub(crate) enum Failure {
    /// An HTTP/1.1 request without a valid `Host`: 400, and the guest never ran.
    BadHost,
    /// The body is over the limit: 413, and the guest never ran.
    TooLarge(usize),
    /// The body could not be read off the connection: 400.
    BadBody(String),
    /// The body did not arrive within the request timeout: 408, and the guest never ran.
    SlowBody(Duration),
    /// The guest missed its deadline: 504.
    Timeout(Duration),
    /// No instance slot freed up within the queue timeout: 503.
    Busy,
    /// The store was unavailable, and the guest failed or answered 5xx: 503.
    StoreUnavailable,
    /// The guest ran into `--max-memory`: 500.
    MemoryLimit(wasmtime::Error),
    /// The guest trapped, or answered with an error instead of a response: 500.
    Guest(wasmtime::Error),
}

/// Marks a guest error that followed a refused memory growth.
#[derive(Debug)]
pub(crate) struct MemoryRefused;

impl std::fmt::Display for MemoryRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the guest hit --max-memory")
    }
}

impl std::error::Error for MemoryRefused {}

impl Failure {
    /// What a guest task's error means: a deadline, a full pool, or a fault of the guest.
    pub(crate) fn of_guest(error: wasmtime::Error, timeout: Duration) -> Self {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Self::Timeout(timeout),
            _ if error.is::<wasmtime::PoolConcurrencyLimitError>() => Self::Busy,
            _ if error.is::<MemoryRefused>() => Self::MemoryLimit(error),
            _ => Self::Guest(error),
        }
    }

    /// The kind of guest failure, as metrics label it; `None` for the client's failures.
    pub(crate) fn guest_kind(&self) -> Option<&'static str> {
        match self {
            Self::Timeout(_) => Some("timeout"),
            Self::Busy => Some("busy"),
            Self::StoreUnavailable => Some("store_unavailable"),
            Self::MemoryLimit(_) => Some("memory_limit"),
            Self::Guest(error) if error.is::<Trap>() => Some("trap"),
            Self::Guest(_) => Some("error"),
            Self::BadHost | Self::TooLarge(_) | Self::BadBody(_) | Self::SlowBody(_) => None,
        }
    }

    /// One line saying what went wrong: the trap code rather than the wasm backtrace.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::BadHost => "an HTTP/1.1 request without a valid Host header".to_owned(),
            Self::TooLarge(limit) => format!("request body over {limit} bytes"),
            Self::BadBody(reason) => format!("unreadable request body: {reason}"),
            Self::SlowBody(timeout) => format!(
                "request body not received within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Timeout(timeout) => format!(
                "no complete response within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Busy => "every instance slot is busy".to_owned(),
            Self::StoreUnavailable => "the store is unavailable".to_owned(),
            Self::MemoryLimit(error) | Self::Guest(error) => error
                .downcast_ref::<Trap>()
                .map_or_else(|| format!("{error:#}"), Trap::to_string),
        }
    }

    /// Logs and counts the failure, and turns it into the client's answer.
    pub(crate) fn into_response(
        self,
        request_id: u64,
        metrics: &Metrics,
    ) -> Response<HyperOutgoingBody> {
        let reason = self.describe();
        if let Some(kind) = self.guest_kind() {
            metrics.guest_failed(kind, Phase::BeforeHead);
        }
        match self {
            Self::BadHost => {
                tracing::info!(request_id, "{reason}");
                // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request with no Host.
                json_response(StatusCode::BAD_REQUEST, "Missing or invalid Host header")
            }
            // The rest of the body is being thrown away; the connection is not reusable.
            Self::TooLarge(limit) => {
                metrics.body_refused("too_large");
                closing(json_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("Request body is larger than {limit} bytes"),
                ))
            }
            Self::BadBody(_) => {
                tracing::info!(request_id, "{reason}");
                json_response(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read",
                )
            }
            Self::SlowBody(timeout) => {
                tracing::info!(request_id, "{reason}");
                metrics.body_refused("too_slow");
                // The rest of the body may still come; the connection is not reusable.
                closing(json_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "Request body not received within {}",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
            Self::Timeout(_) => {
                tracing::warn!(request_id, "guest interrupted: {reason}");
                json_response(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
            }
            Self::Busy => {
                tracing::warn!(request_id, "{reason}");
                retry_soon(json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                ))
            }
            Self::StoreUnavailable => {
                tracing::warn!(request_id, "{reason}: answered 503 for the guest");
                retry_soon(json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                ))
            }
            Self::MemoryLimit(error) | Self::Guest(error) => {
                // The trap code is the one-line story; the wasm backtrace is for debugging.
                tracing::error!(request_id, "guest failed: {reason}");
                tracing::debug!(request_id, "guest failure detail: {error:?}");
                json_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// `response` with `Retry-After: 1`, for a 503 that a moment may cure.
fn retry_soon(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `response` with `Connection: close`, for answers given while the request body is unread.
fn closing(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A `{"detail": ...}` answer, the shape FastAPI uses for every error.
pub(crate) fn json_response(status: StatusCode, detail: &str) -> Response<HyperOutgoingBody> {
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
