//! The crate's only `wit_bindgen::generate!`: bindings for the `kv-fs` world in
//! `wit/kv-fs.wit`, and the `export!` macro with which the crate root exports its `KvFs`.
#![allow(
    unsafe_code,
    unreachable_pub,
    missing_docs,
    clippy::all,
    reason = "generated"
)]

wit_bindgen::generate!({
    world: "kv-fs",
    path: "../../wit",
    generate_all,
});
