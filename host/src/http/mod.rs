//! The HTTP front: everything between a client's socket and the served component.
//!
//! - [`server`]: the accept loop, where every piece is built from the [`crate::config::Config`],
//!   and the drain.
//! - [`connection`]: one client connection, the connection cap and the head timeout.
//! - [`handler`]: one request: the `Host` check, the body, the component's answer.
//! - [`request_body`]: the body limit, and draining a refused body so that the client sees
//!   the 413.
//! - [`response`]: the answer's body, cut off on a late failure, and its access-log line.
//! - [`failure`]: every failure before the answer's head, as a JSON answer.

pub(crate) mod connection;
mod failure;
mod handler;
mod request_body;
mod response;
pub(crate) mod server;
