//! task-host integration tests: real components built for wasm32-wasip2, real HTTP on
//! 127.0.0.1 ephemeral ports, and the real binary where process behaviour is the point.
//!
//! Faults the server must take while it keeps answering others are rows of the fault suite
//! instead (`host/tests/faults`, `cargo xtask faults`), each checked under load: guests that
//! trap, spin or exhaust their memory, before or after their answer's head; clients that
//! dribble their heads, sit idle, crowd past `--max-connections` or send huge heads; a
//! failing store, Redis gone, `kill -9` mid-write. Of guests and clients, what stays here is
//! what the table does not check: the bounds a guest runs within ([`guest_limits`]) and the
//! HTTP/1 that clients speak ([`client_protocol`]).

mod client_protocol;
#[path = "../common/mod.rs"]
mod common;
mod compile_cache;
mod config_errors;
mod contract;
mod guest_limits;
mod lifecycle;
mod operations;
mod reuse;
mod scale_out;
mod swap;
mod wasmtime_serve;
