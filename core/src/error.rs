//! The API's one error type and the one place that renders errors as responses.

use std::fmt::Display;

use serde::Serialize;
use task_api_limits::too_large_detail;

use crate::message::Response;
use crate::store::StoreError;
use crate::task::ValidationError;

/// Everything that can turn a request into an error response.
#[derive(Debug)]
pub enum ApiError {
    /// No route has this path: 404 `{"detail":"Not Found"}`.
    NotFound,
    /// The path exists but not with this method: 405 with an `Allow` header.
    MethodNotAllowed {
        /// Comma-separated methods the path does accept.
        allow: String,
    },
    /// The id is well formed but no task has it: 404 `{"detail":"Task not found"}`.
    TaskNotFound,
    /// The body or path failed validation: 422 with pydantic-shaped details.
    Validation(Vec<ValidationError>),
    /// The body is larger than the limit: 413.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request could not be read off the wire: 400.
    BadRequest(String),
    /// The key-value store failed or holds something unreadable: 500, detail to stderr only.
    Internal(String),
}

/// FastAPI's error body. A struct rather than a `json!` map so the validation entries keep
/// pydantic's key order (`type`, `loc`, `msg`, `input`) without an order-preserving map,
/// whose random hasher would make the component import `wasi:random/insecure-seed`.
#[derive(Serialize)]
struct Detail<T> {
    detail: T,
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Internal(format!("key-value store: {}", error.0))
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(vec![error])
    }
}

impl ApiError {
    /// A request whose body could not be read off the wire, for the reason `why`: 400.
    pub fn unreadable_body(why: impl Display) -> Self {
        Self::BadRequest(format!("the request body could not be read: {why}"))
    }

    /// Renders the error in the seed's JSON shapes. Server-side details never reach the
    /// client: they are written to stderr, which the host tags with the request id.
    pub fn into_response(self) -> Response<'static> {
        match self {
            Self::NotFound => detail(404, "Not Found"),
            Self::MethodNotAllowed { allow } => Response {
                allow: Some(allow),
                ..detail(405, "Method Not Allowed")
            },
            Self::TaskNotFound => detail(404, "Task not found"),
            Self::Validation(errors) => detail(422, errors),
            Self::PayloadTooLarge { limit } => detail(413, too_large_detail(limit).to_string()),
            Self::BadRequest(reason) => detail(400, reason),
            Self::Internal(reason) => {
                eprintln!("ERROR: {reason}");
                detail(500, "Internal Server Error")
            }
        }
    }
}

/// A `{"detail": ...}` answer with `status`.
fn detail(status: u16, detail: impl Serialize) -> Response<'static> {
    Response::json(status, &Detail { detail })
}
