//! # task-api
//!
//! The seed's FastAPI "Task Manager API" as a `wasm32-wasip2` component. It exports
//! `wasi:http/incoming-handler` and keeps every byte of state in `wasi:keyvalue`, so any
//! `wasi:http/proxy` host with a key-value store can serve it.
//!
//! The API itself (routes, handlers, validation, FastAPI's error shapes, the OpenAPI document)
//! is [`task_api_core`]'s. This crate binds it to WASI, and is the only code that calls WASI:
//!
//! ```text
//! wasi:http request ─► http::serve ─► Request ─► task_api_core::api::handle ─► store::KeyValueStore
//!                                                             │                  (wasi:keyvalue)
//! wasi:http response ◄─ http::serve ◄─ Response ◄─────────────┘
//! ```
//!
//! - `http`: the only module touching `wasi:http` types. It reads the request, refusing a body
//!   over the limit with a 413, and writes the response, a streamed listing piece by piece.
//! - `store`: the core's `Store` over the default `wasi:keyvalue` bucket.
//! - `limit`: the body limit the host states in the environment (through `std`).
//! - `bindings`: the crate's only `wit_bindgen::generate!`.
//!
//! ## State
//!
//! The component keeps nothing in its own memory between requests: hosts may give every
//! request a fresh instance. Everything lives in the default bucket (identifier `""`), laid out
//! as [`task_api_core::repository`] describes.

mod bindings;
mod http;
mod limit;
mod store;

use std::time::{SystemTime, UNIX_EPOCH};

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use task_api_core::api;

/// The exported `wasi:http/incoming-handler`.
struct Component;

// Exported here, beside the type, so that bindings.rs imports nothing from this file. The
// export functions it generates are unsafe, as every FFI export is: the block confines the
// lint's exception to them.
#[expect(unsafe_code, reason = "generated exports")]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};

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
