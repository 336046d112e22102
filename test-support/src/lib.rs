//! test-support: what the task-host integration tests and `cargo xtask` share to start a
//! server and find it, so that each of these facts has one owner.
//!
//! - [`Components`]: the wasm components the tests serve. `cargo xtask test` builds them,
//!   composes `task_api_standalone.wasm` and names their directory in [`COMPONENTS_ENV`];
//!   the tests find them with [`Components::from_env`] and never build anything themselves.
//! - [`wasmtime_serve`], [`wasmtime_serve_standalone`] and [`task_host_serve`]: each server's
//!   command line, on an ephemeral port of 127.0.0.1. The standalone one is the README's
//!   command ([`STANDALONE_SERVE_ARGS`], its pool in [`STANDALONE_POOL`]), which a test
//!   checks the README shows.
//! - [`ServerChild`]: runs such a command and reads the startup line ([`startup_addr`]:
//!   task-host's, which the bench's native baseline prints too, `wasmtime serve`'s or
//!   gunicorn's) to learn the port the kernel picked. The tests run the real binaries with it; the bench
//!   runs every server it loads.
//! - [`RedisServer`]: a throwaway `redis-server` on a free port ([`free_port`]), for the
//!   Redis store's tests.
//!
//! Only the standard library: xtask depends on this crate and must build in seconds.

mod child;
mod command;
mod component;
mod redis;

pub use child::{STARTUP_TIMEOUT, ServerChild, startup_addr};
pub use command::{
    PLAIN_SERVE_ARGS, STANDALONE_POOL, STANDALONE_SERVE_ARGS, task_host_serve, wasmtime_serve,
    wasmtime_serve_standalone, wasmtime_serve_with,
};
pub use component::{COMPONENTS_ENV, Components};
pub use redis::{RedisServer, free_port};
