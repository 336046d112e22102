//! Every way a request can fail before the guest's answer starts, the one-line story the log
//! tells about it, and the JSON answer the client gets. A hyper service that returned `Err`
//! would drop the connection with no response at all, so every failure becomes an answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;
use task_api_limits::too_large_detail;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::ops::metrics::{Metrics, Phase};
use crate::serving::guest::GuestFailure;

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
    /// The body fell behind the minimum rate (bytes a second): 408, and the guest never ran.
    DripFedBody(u64),
    /// The guest ran, or waited for a slot, and gave no answer.
    Guest(GuestFailure),
}

impl From<GuestFailure> for Failure {
    fn from(failure: GuestFailure) -> Self {
        Self::Guest(failure)
    }
}

impl Failure {
    /// One line saying what went wrong.
    fn describe(&self) -> String {
        match self {
            Self::BadHost => "an HTTP/1.1 request without a valid Host header".to_owned(),
            Self::TooLarge(limit) => format!("request body over {limit} bytes"),
            Self::BadBody(reason) => format!("unreadable request body: {reason}"),
            Self::SlowBody(timeout) => format!(
                "request body not received within {}",
                humantime::format_duration(*timeout)
            ),
            Self::DripFedBody(rate) => format!("request body slower than {rate} bytes/s"),
            Self::Guest(failure) => failure.describe(),
        }
    }

    /// Logs and counts the failure, and turns it into the client's answer.
    pub(crate) fn into_response(
        self,
        request_id: u64,
        metrics: &Metrics,
    ) -> Response<HyperOutgoingBody> {
        let reason = self.describe();
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
                    &too_large_detail(limit).to_string(),
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
            Self::DripFedBody(rate) => {
                tracing::info!(request_id, "{reason}");
                metrics.body_refused("too_slow");
                closing(json_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!("Request body arrived slower than {rate} bytes/s"),
                ))
            }
            Self::Guest(failure) => {
                metrics.guest_failed(failure.kind(), Phase::BeforeHead);
                guest_response(failure, request_id, &reason)
            }
        }
    }
}

/// The answer for a guest that gave none, logged as `reason`.
fn guest_response(
    failure: GuestFailure,
    request_id: u64,
    reason: &str,
) -> Response<HyperOutgoingBody> {
    match failure {
        GuestFailure::Timeout(_) => {
            tracing::warn!(request_id, "guest interrupted: {reason}");
            json_response(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
        }
        GuestFailure::Busy => {
            tracing::warn!(request_id, "{reason}");
            retry_soon(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
            ))
        }
        GuestFailure::StoreUnavailable => {
            tracing::warn!(request_id, "{reason}: answered 503 for the guest");
            retry_soon(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Store unavailable",
            ))
        }
        GuestFailure::MemoryLimit(error) | GuestFailure::Fault(error) => {
            // The trap code is the one-line story; the wasm backtrace is for debugging.
            tracing::error!(request_id, "guest failed: {reason}");
            tracing::debug!(request_id, "guest failure detail: {error:?}");
            json_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
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
