//! The only module that touches `wasi:http` types: it reads an incoming request into a
//! [`Request`], writes a [`Response`] back out, and drains what a refused client still sends.

use task_api_core::error::ApiError;
use task_api_core::message::{Body, Request, Response};
use task_api_limits::{DRAIN_BYTES, DRAIN_TIME};

use crate::bindings::wasi::clocks::monotonic_clock;
use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::bindings::wasi::io::poll;
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Bytes asked for per read of the request body.
const READ_CHUNK: u64 = 64 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

/// Serves one exchange: reads `incoming`, refusing a body over `max_body` bytes, and answers
/// it with `handle`, or with the error that reading it gave, after which it drains whatever
/// the client is still sending. Hosts such as `wasmtime serve` close the connection once the
/// guest drops an unread body, and that close can destroy the refusal (see
/// [`task_api_limits::DRAIN_TIME`]).
pub(crate) fn serve<'s>(
    incoming: IncomingRequest,
    out: ResponseOutparam,
    max_body: usize,
    handle: impl FnOnce(&Request) -> Response<'s>,
) {
    let body = RequestBody::open(&incoming);
    match read_request(&incoming, body.as_ref(), max_body) {
        Ok(request) => send_response(out, handle(&request)),
        Err(error) => {
            send_response(out, error.into_response());
            // The client may still be sending what was refused.
            if let Some(body) = body {
                body.discard_rest();
            }
        }
    }
}

/// Reads the whole request. The body is refused before it is read when `content-length`
/// already exceeds `max_body`, and while reading when a chunked body does.
fn read_request(
    request: &IncomingRequest,
    body: Option<&RequestBody>,
    max_body: usize,
) -> Result<Request, ApiError> {
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
    if declared_length.is_some_and(|length| length > max_body as u64) {
        return Err(ApiError::PayloadTooLarge { limit: max_body });
    }
    let content_type = header("content-type");
    drop(headers);
    Ok(Request {
        method: method_name(request.method()),
        path_with_query: request.path_with_query().unwrap_or_else(|| "/".to_owned()),
        content_type,
        body: body
            .ok_or_else(|| ApiError::unreadable_body("the host gave no body stream"))?
            .read_to_end(max_body)?,
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

/// The request body, opened once and kept past the answer so that a refused rest can be
/// drained.
struct RequestBody {
    // Declared before `body`: the stream is a child of the body and must be dropped first.
    stream: InputStream,
    body: IncomingBody,
}

impl RequestBody {
    /// `None` only if the host already handed the body out, which a fresh request rules out.
    fn open(request: &IncomingRequest) -> Option<Self> {
        let body = request.consume().ok()?;
        let stream = body.stream().ok()?;
        Some(Self { stream, body })
    }

    /// Reads to the end, or refuses once more than `limit` bytes have arrived.
    fn read_to_end(&self, limit: usize) -> Result<Vec<u8>, ApiError> {
        let mut bytes = Vec::new();
        loop {
            match self.stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                }
                Err(StreamError::Closed) => return Ok(bytes),
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(ApiError::unreadable_body(error.to_debug_string()));
                }
            }
        }
    }

    /// Skips what is left, up to [`DRAIN_BYTES`] or for [`DRAIN_TIME`], then finishes the
    /// body.
    fn discard_rest(self) {
        let nanos = u64::try_from(DRAIN_TIME.as_nanos()).unwrap_or(u64::MAX);
        let deadline = monotonic_clock::subscribe_duration(nanos);
        let readable = self.stream.subscribe();
        let mut skipped = 0;
        while skipped < DRAIN_BYTES {
            poll::poll(&[&readable, &deadline]);
            if deadline.ready() {
                break;
            }
            match self.stream.skip(DRAIN_BYTES - skipped) {
                Ok(count) => skipped += count,
                Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => break,
            }
        }
        // Children before parents: the pollable, then the stream, then the body.
        drop(readable);
        let Self { stream, body } = self;
        drop(stream);
        drop(IncomingBody::finish(body));
    }
}

/// Sends `response`. Failures here mean the host went away, the host misbehaved, or a
/// streamed body failed midway; there is no one left to answer, so they are logged.
fn send_response(out: ResponseOutparam, response: Response<'_>) {
    let status = response.status;
    if let Err(error) = try_send(out, response) {
        eprintln!("ERROR: sending a {status} response failed: {error}");
    }
}

fn try_send(out: ResponseOutparam, response: Response<'_>) -> Result<(), String> {
    let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
    // A streamed body has no length up front; the host sends it chunked.
    if let Body::Full(bytes) = &response.body {
        headers.push((
            "content-length".to_owned(),
            bytes.len().to_string().into_bytes(),
        ));
    }
    if let Some(allow) = response.allow {
        headers.push(("allow".to_owned(), allow.into_bytes()));
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
    let written = match response.body {
        Body::Full(bytes) => write_chunks(&stream, &bytes),
        Body::Streamed(write) => {
            let mut writer = BodyWriter {
                stream: &stream,
                pending: Vec::with_capacity(STREAM_BUFFER),
            };
            write(&mut writer)
                .map_err(|error| format!("the streamed body failed midway: {error:?}"))
                .and_then(|()| writer.send_pending())
        }
    };
    drop(stream);
    // Leaving the body unfinished (it is dropped) tells the host the answer is incomplete,
    // so the client sees it cut off instead of a short body that looks whole.
    written?;
    OutgoingBody::finish(body, None).map_err(|error| format!("finishing the body: {error:?}"))
}

/// Bytes gathered before a streamed body is written out: a few writes per batch of tasks
/// rather than one per task.
const STREAM_BUFFER: usize = 16 * 1024;

/// The pieces `blocking-write-and-flush` takes.
fn write_chunks(stream: &OutputStream, bytes: &[u8]) -> Result<(), String> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|error| format!("writing the body: {error:?}"))?;
    }
    Ok(())
}

/// A streamed body's `Write`: buffers, then writes in the pieces the stream takes.
struct BodyWriter<'s> {
    stream: &'s OutputStream,
    pending: Vec<u8>,
}

impl BodyWriter<'_> {
    fn send_pending(&mut self) -> Result<(), String> {
        write_chunks(self.stream, &self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

impl std::io::Write for BodyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= STREAM_BUFFER {
            self.send_pending().map_err(std::io::Error::other)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_pending().map_err(std::io::Error::other)
    }
}
