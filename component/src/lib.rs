//! # task-api
//!
//! The seed's FastAPI "Task Manager API" as a `wasm32-wasip2` component. It exports
//! `wasi:http/incoming-handler` and keeps every byte of state in `wasi:keyvalue`, so any
//! `wasi:http/proxy` host with a key-value store can serve it.
//!
//! ## Endpoints
//!
//! `router::ROUTES` declares every path once, with its methods; the 405's `Allow` header
//! and the OpenAPI document served at `GET /openapi.json` are derived from it.
//!
//! Errors keep FastAPI's shapes: 404 `{"detail":"Task not found"}` or `{"detail":"Not Found"}`,
//! 405 with `Allow`, 422 with pydantic's `detail` list, 413 above the body limit (see
//! `limit`), and 500
//! `{"detail":"Internal Server Error"}` when the store fails (details go to stderr).
//!
//! ## How the pieces fit
//!
//! ```text
//! wasi:http request ─► http::serve ────────► message::Request
//!                                              │
//!                         router::route ◄── api::handle ──► repository::Tasks ──► store::Store
//!                                              │                                   (wasi:keyvalue)
//! wasi:http response ◄─ http::serve ◄──────── message::Response ◄─ error::ApiError
//! ```
//!
//! `http`, `store::KeyValueStore` and `limit::max_body` (the environment, through `std`) are
//! the only code that calls WASI; everything else is plain Rust, unit-tested natively against
//! an in-memory store.
//!
//! ## State
//!
//! The component keeps nothing in its own memory between requests: hosts may give every
//! request a fresh instance. Everything lives in the default bucket (identifier `""`):
//!
//! | key             | value                                                        |
//! |-----------------|--------------------------------------------------------------|
//! | `next-task-id`  | the last id handed out, a decimal string, advanced only by `atomics.increment` |
//! | `task/{id:020}` | one task as JSON, e.g. `task/00000000000000000007`           |
//!
//! Ids therefore start at 1, are never reused, and stay unique across concurrent instances.
//! Updates are read-modify-write: two concurrent updates of one task keep the later write.

mod api;
mod bindings;
mod error;
mod http;
mod limit;
mod message;
mod openapi;
mod repository;
mod router;
mod store;
mod task;

use std::time::{SystemTime, UNIX_EPOCH};

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};

/// The exported `wasi:http/incoming-handler`.
struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let store = store::KeyValueStore::default();
        let max_body = limit::max_body();
        http::serve(request, response_out, max_body, |request| {
            api::handle(&store, request, now(), max_body)
        });
    }
}

/// Seconds since the Unix epoch, as the seed's `time.time()`.
fn now() -> f64 {
    // A clock before 1970 is a host bug; 0.0 keeps the request alive rather than trapping.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}
