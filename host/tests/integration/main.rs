//! task-host integration tests: real components built for wasm32-wasip2, real HTTP on
//! 127.0.0.1 ephemeral ports, and the real binary where process behaviour is the point.

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
mod slow_clients;
mod swap;
mod wasmtime_serve;
