//! The crate's only `wit_bindgen::generate!`: Rust bindings for `wit/world.wit`, and the
//! export of [`crate::Component`] as the world's `wasi:http/incoming-handler`.
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

use crate::Component;
export!(Component with_types_in crate::bindings);
