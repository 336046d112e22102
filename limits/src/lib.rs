//! # task-api-limits
//!
//! The limits that task-host and the task-api component must agree on, each written once.
//! task-host enforces them before a guest runs; the component enforces them too, because
//! any `wasi:http/proxy` host may serve it, and stock `wasmtime serve` enforces none.
//!
//! The host tells the component its body limit through the guest's environment
//! ([`MAX_BODY_ENV`]); everything else here is a constant both sides build in, or, for the
//! 413's wording ([`too_large_detail`]), a function. The crate has no dependencies and no
//! `std`, so it builds for `wasm32-wasip2` and natively alike.

#![no_std]

use core::fmt::{self, Display};
use core::time::Duration;

/// The environment variable through which a host tells the component its request-body
/// limit: a decimal number of bytes, such as `8388608`. task-host sets it to `--max-body`;
/// under stock `wasmtime serve`, `--env TASK_API_MAX_BODY=8388608` does. A host that lets a
/// larger body through gets it refused by the component, with a 413 of its own.
pub const MAX_BODY_ENV: &str = "TASK_API_MAX_BODY";

/// The request-body limit when no host says otherwise: 1 MiB. A task is a title and a
/// description, so a megabyte is generous; the bound keeps one client from spending a
/// guest's memory.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// The `detail` of the 413 that refuses a body over `limit` bytes: `Request body is larger
/// than {limit} bytes`. task-host and the component refuse in the same words, so a client
/// cannot tell which of them refused.
pub fn too_large_detail(limit: usize) -> impl Display {
    fmt::from_fn(move |f| write!(f, "Request body is larger than {limit} bytes"))
}

/// The cap on each of a guest instance's linear memories when task-host is not told
/// otherwise (`--max-memory`): 64 MiB. A guest cannot ask for the cap in force, so the
/// component sizes what it holds at once (a listing's batch of tasks) by this one.
pub const DEFAULT_MAX_MEMORY: usize = 64 << 20;

/// How long a refused body is still read and thrown away after its 413 has gone out.
///
/// The client is usually still sending when the 413 is ready. Closing then leaves unread
/// bytes in the kernel's receive buffer, so the close goes out as a TCP reset, and the reset
/// can destroy the 413 before the client reads it. Reading on for a while lets the client
/// finish and see the answer, as nginx's lingering close does; the bound keeps a trickling
/// upload from holding a connection, or a guest instance, forever.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// How many bytes of a refused body are read and thrown away at most, for the reason given
/// on [`DRAIN_TIME`]: the bound keeps an endless upload from being read for its whole time.
pub const DRAIN_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    #[test]
    fn the_413_names_the_limit_in_bytes() {
        assert_eq!(
            super::too_large_detail(1024).to_string(),
            "Request body is larger than 1024 bytes"
        );
    }
}
