//! The only module that touches `wasi:http` types: it reads an incoming request into a
//! [`Request`] and writes a [`Response`] back out.

use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::error::ApiError;
use crate::message::{Request, Response};

/// Request bodies above this size are refused with 413. A task is a title and a description;
/// a megabyte is generous, and the bound keeps a hostile client from exhausting guest memory.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Bytes asked for per read of the request body.
const READ_CHUNK: u64 = 64 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

/// Reads the whole request. The body is refused before it is read when `content-length`
/// already exceeds the limit, and while reading when a chunked body does.
pub(crate) fn read_request(request: IncomingRequest) -> Result<Request, ApiError> {
    let headers = request.headers();
    let header = |name: &str| {
        let values = headers.get(name);
        values
            .into_iter()
            .next()
            .and_then(|value| String::from_utf8(value).ok())
    };
    let declared_length =
        header("content-length").and_then(|value| value.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let content_type = header("content-type");
    drop(headers);
    Ok(Request {
        method: method_name(request.method()),
        path_with_query: request.path_with_query().unwrap_or_else(|| "/".to_owned()),
        content_type,
        body: read_body(&request)?,
    })
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other,
    }
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, ApiError> {
    let unreadable =
        |what: &str| ApiError::BadRequest(format!("the request body could not be read: {what}"));
    let body = request
        .consume()
        .map_err(|()| unreadable("already consumed"))?;
    let stream = body.stream().map_err(|()| unreadable("no stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY_BYTES {
                    return Err(ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    });
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(unreadable(&error.to_debug_string()));
            }
        }
    }
    // The stream is a child of the body and must be gone before the body is finished.
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Sends `response`. Failures here mean the host went away or misbehaved; there is no one
/// left to answer, so they are logged.
pub(crate) fn send_response(out: ResponseOutparam, response: Response) {
    if let Err(error) = try_send(out, &response) {
        eprintln!(
            "ERROR: sending a {} response failed: {error}",
            response.status
        );
    }
}

fn try_send(out: ResponseOutparam, response: &Response) -> Result<(), String> {
    let mut headers = vec![
        ("content-type".to_owned(), b"application/json".to_vec()),
        (
            "content-length".to_owned(),
            response.body.len().to_string().into_bytes(),
        ),
    ];
    if let Some(allow) = response.allow {
        headers.push(("allow".to_owned(), allow.as_bytes().to_vec()));
    }
    let headers = Fields::from_list(&headers).map_err(|error| format!("headers: {error:?}"))?;
    let outgoing = OutgoingResponse::new(headers);
    outgoing
        .set_status_code(response.status)
        .map_err(|()| format!("invalid status {}", response.status))?;
    let body = outgoing
        .body()
        .map_err(|()| "the body was already taken".to_owned())?;
    ResponseOutparam::set(out, Ok(outgoing));
    let stream = body
        .write()
        .map_err(|()| "the body stream was already taken".to_owned())?;
    for chunk in response.body.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|error| format!("writing the body: {error:?}"))?;
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|error| format!("finishing the body: {error:?}"))
}
