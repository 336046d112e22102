//! # faulty-component
//!
//! A test fixture for `task-host`: a `wasi:http` component that misbehaves on request, so the
//! host's limits can be shown to hold while it keeps serving others.
//!
//! | path          | behaviour                                         | host answer |
//! |---------------|---------------------------------------------------|-------------|
//! | `/trap`       | panics, which aborts: a wasm trap                 | 500         |
//! | `/loop`       | spins forever                                     | 504         |
//! | `/alloc`      | allocates until linear memory is exhausted        | 500         |
//! | `/slow?ms=N`  | sleeps N milliseconds, then answers 200           | 200         |
//! | `/outgoing`   | tries an outgoing HTTP request to 127.0.0.1:9, answers what happened | 200 `{"outgoing":"denied"}` under task-host |
//! | `/partial?then=F` | sends a 200 head and part of a body, then fails as `F` says: `trap`, `loop`, `alloc` or `sleep` (an hour) | the body is cut off |
//! | `/health`     | answers 500: a reload candidate that must be refused | 500      |
//! | `/count`      | counts in a global and answers the count: how many requests this instance has served | 200 `{"count":N}` |
//! | anything else | answers 200 `{"component":"faulty"}`              | 200         |

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

/// Requests this instance has answered on `/count`: a global, so it survives from one
/// request to the next only if the host reuses the instance.
static COUNT: AtomicU64 = AtomicU64::new(0);

/// The exported handler.
struct Faulty;

impl Guest for Faulty {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match path.split_once('?').map_or(path.as_str(), |(path, _)| path) {
            "/trap" => panic!("the faulty component was asked to trap"),
            "/loop" => spin_forever(),
            "/alloc" => allocate_forever(),
            "/slow" => {
                let ms = path
                    .split_once("ms=")
                    .and_then(|(_, ms)| ms.parse().ok())
                    .unwrap_or(1000);
                std::thread::sleep(Duration::from_millis(ms));
                respond(response_out, 200, br#"{"slept":true}"#);
            }
            "/health" => respond(response_out, 500, br#"{"status":"unhealthy"}"#),
            "/count" => {
                let count = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
                respond(
                    response_out,
                    200,
                    format!(r#"{{"count":{count}}}"#).as_bytes(),
                );
            }
            "/outgoing" => {
                let body = format!(r#"{{"outgoing":"{}"}}"#, try_outgoing());
                respond(response_out, 200, body.as_bytes());
            }
            "/partial" => {
                let then = path.split_once("then=").map_or("", |(_, then)| then);
                fail_after_head(response_out, then);
            }
            _ => respond(response_out, 200, br#"{"component":"faulty"}"#),
        }
    }
}

/// Sends `GET http://127.0.0.1:9/` and says how it went: `denied` if the host refused it,
/// `sent` if a response came, or the error code otherwise.
fn try_outgoing() -> String {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some("127.0.0.1:9"));
    let _ = request.set_path_with_query(Some("/"));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(ErrorCode::HttpRequestDenied) => return "denied".to_owned(),
        Err(code) => return format!("{code:?}"),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(_))) => "sent".to_owned(),
        Some(Ok(Err(ErrorCode::HttpRequestDenied))) => "denied".to_owned(),
        Some(Ok(Err(code))) => format!("{code:?}"),
        Some(Err(())) | None => "unknown".to_owned(),
    }
}

/// Hands over a 200 head and the start of a body, with no length so it goes out chunked,
/// then fails without finishing the body.
fn fail_after_head(response_out: ResponseOutparam, then: &str) {
    let Ok(headers) =
        Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
    else {
        return;
    };
    let response = OutgoingResponse::new(headers);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(br#"{"partial":"#);
        let _ = stream.blocking_flush();
        // The body and its stream must outlive the failure: dropping them would end it.
        std::mem::forget(stream);
    }
    std::mem::forget(outgoing);
    match then {
        "trap" => panic!("the faulty component was asked to trap mid-body"),
        "loop" => spin_forever(),
        "alloc" => allocate_forever(),
        _ => std::thread::sleep(Duration::from_secs(3600)),
    }
}

fn spin_forever() -> ! {
    let mut counter = 0_u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn allocate_forever() -> ! {
    let mut hoard = Vec::new();
    loop {
        // Touch every page so the memory is really committed, not just reserved.
        hoard.push(std::hint::black_box(vec![1_u8; 1 << 20]));
    }
}

fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let Ok(headers) =
        Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
    else {
        return;
    };
    let response = OutgoingResponse::new(headers);
    let (Ok(()), Ok(outgoing)) = (response.set_status_code(status), response.body()) else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(mut stream) = outgoing.write()
        && stream.write_all(body).is_ok()
    {
        let _ = stream.blocking_flush();
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

wasip2::http::proxy::export!(Faulty);
