//! The API's one error type. Its answers are [`crate::message`]'s, beside every other
//! response the API sends.

use std::fmt::Display;

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
}
