//! # hello-component
//!
//! The smallest useful `wasi:http` component: it answers every `GET` with a JSON greeting
//! and `/health` with `{"status":"healthy"}`. It is the second component kept in this repo
//! to show that `task-host` serves any `wasi:http/proxy` component: mount it over
//! `/app/task_api.wasm` (or point `TASK_HOST_COMPONENT` at it) and the same image serves it.

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// The exported handler.
struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (status, body) = match (request.method(), request.path_with_query().as_deref()) {
            (Method::Get, Some("/health")) => (200, r#"{"status":"healthy"}"#),
            (Method::Get, _) => (
                200,
                r#"{"message":"Hello from a swapped-in component","version":"hello-1"}"#,
            ),
            _ => (405, r#"{"detail":"Method Not Allowed"}"#),
        };
        let headers =
            Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())]);
        let Ok(headers) = headers else { return };
        let response = OutgoingResponse::new(headers);
        let (Ok(()), Ok(outgoing)) = (response.set_status_code(status), response.body()) else {
            return;
        };
        ResponseOutparam::set(response_out, Ok(response));
        // A failed write means the client left; there is no one to tell.
        if let Ok(mut stream) = outgoing.write()
            && stream.write_all(body.as_bytes()).is_ok()
        {
            let _ = stream.blocking_flush();
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

wasip2::http::proxy::export!(Hello);
