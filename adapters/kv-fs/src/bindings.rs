//! The crate's only `wit_bindgen::generate!`: bindings for the `kv-fs` world in
//! `wit/kv-fs.wit`, and the export of [`crate::KvFs`].
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

use crate::KvFs;
export!(KvFs with_types_in crate::bindings);
