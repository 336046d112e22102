//! The plain request and response the API speaks. `http.rs` converts them to and from
//! `wasi:http` types, which keeps every other module free of WASI and testable natively.

use serde::Serialize;

/// An HTTP request, fully read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// Upper-case method name, e.g. `GET`.
    pub(crate) method: String,
    /// Path with query string, exactly as received (still percent-encoded).
    pub(crate) path_with_query: String,
    /// The `content-type` header, if present and valid UTF-8.
    pub(crate) content_type: Option<String>,
    /// The whole body; `http.rs` has already enforced the size limit.
    pub(crate) body: Vec<u8>,
}

/// A JSON response. Every response the component sends is one of these.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    /// HTTP status code.
    pub(crate) status: u16,
    /// Value of the `Allow` header, sent with 405 answers.
    pub(crate) allow: Option<&'static str>,
    /// Serialized JSON.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// Serializes `value` as the body of a response with `status`.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
        // Serializing our own types into memory cannot fail: they have string keys only and
        // no fallible `Serialize` impls. A fallback keeps that a logged 500, not a trap.
        let body = serde_json::to_vec(value).unwrap_or_else(|error| {
            eprintln!("serializing a response failed: {error}");
            br#"{"detail":"Internal Server Error"}"#.to_vec()
        });
        Self {
            status,
            allow: None,
            body,
        }
    }

    /// The body parsed back into JSON, for tests.
    #[cfg(test)]
    pub(crate) fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}
