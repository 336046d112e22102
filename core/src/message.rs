//! The plain request and response the API speaks, and the one place that renders an
//! [`ApiError`] as its response. Each binding converts them to and from its own HTTP types
//! (the component's `http` module to and from `wasi:http`), which keeps this crate free of
//! any server and testable natively.

use std::io::Write;

use serde::Serialize;
use task_api_limits::too_large_detail;

use crate::error::ApiError;

/// An HTTP request, fully read.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method name, e.g. `GET`.
    pub method: String,
    /// Path with query string, exactly as received (still percent-encoded).
    pub path_with_query: String,
    /// The `content-type` header, if present and valid UTF-8.
    pub content_type: Option<String>,
    /// The whole body; the binding has already enforced the size limit.
    pub body: Vec<u8>,
}

/// A JSON response. Every response the API sends is one of these.
pub struct Response<'a> {
    /// HTTP status code.
    pub status: u16,
    /// Value of the `Allow` header, sent with 405 answers.
    pub allow: Option<String>,
    /// The JSON body.
    pub body: Body<'a>,
}

/// A response body: serialized already, or written piece by piece once the head is out.
pub enum Body<'a> {
    /// Serialized JSON, sent with its length.
    Full(Vec<u8>),
    /// JSON too large to hold in memory at once, written to the stream it is given. An error
    /// means the body is incomplete, and the answer must be cut off rather than finished.
    Streamed(WriteBody<'a>),
}

/// Writes a streamed body to the stream it is given.
pub type WriteBody<'a> = Box<dyn FnOnce(&mut dyn Write) -> Result<(), ApiError> + 'a>;

impl<'a> Response<'a> {
    /// Serializes `value` as the body of a response with `status`.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
        Self {
            status,
            allow: None,
            body: Body::Full(json_body(value)),
        }
    }

    /// A 200 whose JSON `write` produces once the head has gone out.
    pub(crate) fn streamed(
        write: impl FnOnce(&mut dyn Write) -> Result<(), ApiError> + 'a,
    ) -> Self {
        Self {
            status: 200,
            allow: None,
            body: Body::Streamed(Box::new(write)),
        }
    }
}

impl ApiError {
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

/// FastAPI's error body. A struct rather than a `json!` map so the validation entries keep
/// pydantic's key order (`type`, `loc`, `msg`, `input`) without an order-preserving map,
/// whose random hasher would make the component import `wasi:random/insecure-seed`.
#[derive(Serialize)]
struct Detail<T> {
    detail: T,
}

/// A `{"detail": ...}` answer with `status`.
fn detail(status: u16, detail: impl Serialize) -> Response<'static> {
    Response::json(status, &Detail { detail })
}

/// `value` as a JSON body. Serializing the API's own values into memory cannot fail: they
/// have string keys only and no fallible `Serialize` impls. Should one ever fail, it is
/// logged on stderr and the body is FastAPI's 500, so a bug is an error answer, never a
/// panic (or, in the component, a trap).
fn json_body(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|error| {
        eprintln!("ERROR: serializing an answer: {error}");
        br#"{"detail":"Internal Server Error"}"#.to_vec()
    })
}

impl Body<'_> {
    /// The whole body in memory, a streamed one written out first: for a binding that sends
    /// every body with its length. An error is a streamed body that failed midway; since
    /// nothing of it has been sent, the binding can answer with the error instead.
    pub fn into_bytes(self) -> Result<Vec<u8>, ApiError> {
        match self {
            Self::Full(bytes) => Ok(bytes),
            Self::Streamed(write) => {
                let mut bytes = Vec::new();
                write(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}
