//! The accept loop and the one service: a request's body is read whole, up to the limit, and
//! handed to the core as a [`Request`]; its [`Response`] goes back with the whole body and its
//! length.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use task_api_core::api;
use task_api_core::error::ApiError;
use task_api_core::message::{Request, Response};
use tokio::net::TcpListener;

use crate::store::MemoryStore;

/// How long the loop waits after a failed accept (out of file descriptors, say) before it
/// tries again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves every connection `listener` accepts, each on a task of its own, until the process
/// is killed.
pub(crate) async fn run(listener: TcpListener, store: Arc<MemoryStore>, max_body: usize) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("accepting a connection failed: {error}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // As task-host does: Nagle's algorithm would hold a second write of an answer back
        // until the client's delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            eprintln!("setting TCP_NODELAY failed: {error}");
        }
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&store), request, max_body));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("connection failed: {error}");
            }
        });
    }
}

/// Reads the request and answers it with the API, or refuses a body over `max_body` bytes
/// (413) or one that could not be read (400) as the API words them.
async fn answer(
    store: Arc<MemoryStore>,
    request: hyper::Request<Incoming>,
    max_body: usize,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let response = match Limited::new(body, max_body).collect().await {
        Ok(body) => {
            let request = Request {
                method: head.method.as_str().to_owned(),
                path_with_query: head
                    .uri
                    .path_and_query()
                    .map_or("/", |path| path.as_str())
                    .to_owned(),
                content_type: head
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
                body: body.to_bytes().into(),
            };
            api::handle(&*store, &request, now(), max_body)
        }
        Err(error) if error.is::<LengthLimitError>() => {
            ApiError::PayloadTooLarge { limit: max_body }.into_response()
        }
        Err(error) => ApiError::unreadable_body(error).into_response(),
    };
    Ok(send(response))
}

/// The HTTP answer for the API's. A streamed body (a listing) is written out here, before the
/// head: should it fail midway, nothing has gone out yet, and the answer is the error's own.
fn send(response: Response<'_>) -> hyper::Response<Full<Bytes>> {
    let Response {
        status,
        allow,
        body,
    } = response;
    let body = match body.into_bytes() {
        Ok(bytes) => bytes,
        Err(error) => return send(error.into_response()),
    };
    let mut sent = hyper::Response::new(Full::new(Bytes::from(body)));
    // The API answers only statuses and `Allow` lists of its own, all valid; an invalid one
    // would be a bug, shown as a 500 or a missing header rather than a panic.
    *sent.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = sent.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = allow.and_then(|allow| HeaderValue::try_from(allow).ok()) {
        headers.insert(ALLOW, allow);
    }
    sent
}

/// Seconds since the Unix epoch, as the seed's `time.time()`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use hyper::body::Body as _;
    use serde_json::{Value, json};
    use task_api_limits::DEFAULT_MAX_BODY;

    use super::*;

    /// What the service sends for `method path` with a JSON `body`.
    struct Sent {
        head: hyper::Response<()>,
        /// The length hyper sends as `content-length`, if the body has one.
        length: Option<u64>,
        body: Bytes,
    }

    impl Sent {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }
    }

    async fn sent(store: &MemoryStore, method: &str, path: &str, body: &str) -> Sent {
        let request = Request {
            method: method.to_owned(),
            path_with_query: path.to_owned(),
            content_type: Some("application/json".to_owned()),
            body: body.as_bytes().to_vec(),
        };
        let (head, body) = send(api::handle(store, &request, 0.0, DEFAULT_MAX_BODY)).into_parts();
        let length = body.size_hint().exact();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(infallible) => match infallible {},
        };
        Sent {
            head: hyper::Response::from_parts(head, ()),
            length,
            body,
        }
    }

    #[tokio::test]
    async fn a_listing_is_sent_whole_with_its_length() {
        let store = MemoryStore::default();
        for title in ["a", "b"] {
            let body = json!({ "title": title }).to_string();
            let created = sent(&store, "POST", "/tasks", &body).await;
            assert_eq!(created.head.status(), StatusCode::OK);
        }
        let listing = sent(&store, "GET", "/tasks", "").await;
        assert_eq!(listing.head.status(), StatusCode::OK);
        assert_eq!(
            listing.head.headers().get(CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        assert_eq!(listing.length, Some(listing.body.len() as u64));
        let tasks = listing.json();
        let ids: Vec<&Value> = tasks
            .as_array()
            .into_iter()
            .flatten()
            .map(|task| &task["id"])
            .collect();
        assert_eq!(ids, [&json!(1), &json!(2)]);
    }

    #[tokio::test]
    async fn a_wrong_method_is_405_with_allow() {
        let refused = sent(&MemoryStore::default(), "PATCH", "/tasks", "").await;
        assert_eq!(refused.head.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.json(), json!({ "detail": "Method Not Allowed" }));
        assert_eq!(
            refused.head.headers().get(ALLOW),
            Some(&HeaderValue::from_static("GET, POST"))
        );
    }
}
