//! The `wasi:keyvalue` 0.2.0-draft host: `store`, `atomics` and `batch`, backed by one
//! [`Backend`] that every request and instance of the process shares.
//!
//! - [`wit`]: the WIT glue. Its `KvView` only translates between guest handles and the
//!   backend. It runs reads on tokio's blocking pool, since they may block on disk, and
//!   awaits writes through [`Backend::write`].
//! - [`Write`]: a write as a value, which can travel to where it is committed.
//! - [`cursor`]: the `list-keys` cursors a request was handed, each standing for where a
//!   backend's listing continues.
//! - [`backend`]: what a store does, knowing nothing of WIT ([`Backend`]); [`spec`]: which
//!   one to open ([`StoreSpec`]).
//! - [`memory`], [`redb`], [`redis`]: the backends (redb commits the writes of every request
//!   in groups, one fsync each); [`Instrumented`]: any of them, measured.
//! - [`Unavailable`]: how a backend says the store cannot be reached, which the host answers
//!   with 503 rather than the guest's 500.

mod backend;
pub(crate) mod cursor;
mod instrumented;
mod memory;
mod redb;
mod redis;
mod spec;
pub(crate) mod wit;
mod write;

pub(crate) use backend::Backend;
pub(crate) use instrumented::Instrumented;
pub use redis::RedisUrl;
pub use spec::{StoreSpec, StoreTimeouts};

#[cfg(test)]
mod tests;
