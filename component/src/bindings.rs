//! The crate's only `wit_bindgen::generate!`: Rust bindings for `wit/world.wit`, and the
//! `export!` macro with which the crate root exports its `Component` as the world's
//! `wasi:http/incoming-handler`.
#![allow(
    unsafe_code,
    unreachable_pub,
    missing_docs,
    clippy::all,
    reason = "generated"
)]

wit_bindgen::generate!({
    world: "task-api",
    path: "../wit",
    generate_all,
});
