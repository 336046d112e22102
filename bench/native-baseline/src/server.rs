//! The accept loop and the one service: a request's body is read whole, up to the limit,
//! answered by [`api::handle`], and the answer sent back as one JSON body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::api::{self, Answer};
use crate::store::Tasks;

/// How long the loop waits after a failed accept (out of file descriptors, say) before it
/// tries again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves every connection `listener` accepts, each on a task of its own, until the process
/// is killed.
pub(crate) async fn run(listener: TcpListener, tasks: Arc<Tasks>, max_body: usize) {
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
        let tasks = Arc::clone(&tasks);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&tasks), request, max_body));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("connection failed: {error}");
            }
        });
    }
}

/// Reads the request and answers it with the API.
async fn answer(
    tasks: Arc<Tasks>,
    request: Request<Incoming>,
    max_body: usize,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let answer = match Limited::new(body, max_body).collect().await {
        Ok(body) => api::handle(
            &tasks,
            &api::Request {
                method: head.method.as_str(),
                path_with_query: head.uri.path_and_query().map_or("/", |path| path.as_str()),
                content_type: head
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok()),
                body: &body.to_bytes(),
            },
        ),
        Err(error) if error.is::<LengthLimitError>() => api::too_large(max_body),
        Err(error) => {
            eprintln!("reading a request body failed: {error}");
            Answer {
                status: 400,
                allow: None,
                body: br#"{"detail":"The request body could not be read"}"#.to_vec(),
            }
        }
    };
    Ok(response(answer))
}

/// The HTTP answer for the API's.
fn response(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    // The API answers only statuses of its own, all valid; an invalid one would be a bug,
    // shown as a 500 rather than a panic.
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = answer.allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}
