//! Client connections: how many may be open at once, how long a client may take to send a
//! request head, and what a drain does to each one.
//!
//! - **A backlog.** The kernel queues connections that `accept` has not taken yet; past the
//!   queue it drops the handshake's last packet and the client's connection waits on
//!   retransmits, 1 s, then 3 s, then 7 s. Rust's default of 128 made a burst of 1,000
//!   connections take 8 s to arrive, so the queue holds as many as the default cap.
//! - **A cap.** Every connection holds a file descriptor and hyper's buffers. Past the
//!   open-file limit `accept` fails for everyone, so the cap sits below it, and a connection
//!   over the cap gets a canned 503 and is closed at once, rather than queueing unseen in the
//!   kernel's backlog.
//! - **A head timeout.** hyper starts its header-read timer whenever it waits for a request
//!   head: on a new connection, and on a keep-alive connection after each answer. So one
//!   timeout bounds both a client that dribbles its headers and one that idles.
//! - **A drain that does not wait on silence.** A connection with an answer in progress is
//!   let finish; one whose request has not started (idle, or a head still arriving) is
//!   closed, so that a slow client cannot hold a shutdown for the whole shutdown timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustix::process::{Resource, getrlimit, setrlimit};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::handler::Handler;
use crate::config::DEFAULT_MAX_CONNECTIONS;
use crate::ops::metrics::Metrics;

/// Connections the kernel queues for `accept`, before it clamps this to
/// `net.core.somaxconn` (4096 by default since Linux 5.4).
const ACCEPT_BACKLOG: u32 = DEFAULT_MAX_CONNECTIONS;
/// File descriptors kept for everything but connections: the store, component files,
/// epoll, the log, and the blocking pool's files.
const RESERVED_FDS: u64 = 128;
/// On a drain, how often a connection with no request in progress is looked at again
/// before it is closed: long enough for hyper to flush an answer it has just finished.
const DRAIN_GRACE: Duration = Duration::from_millis(100);
/// What a connection over the cap is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 38\r\n\r\n\
{\"detail\":\"Too many open connections\"}";

/// Listens on `addr` with room for a burst of connections ([`ACCEPT_BACKLOG`]), and with
/// `SO_REUSEADDR`, as `TcpListener::bind` sets it.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Raises the soft open-file limit to the hard one, as servers do, and returns how many
/// connections may be open: `requested`, or the default, checked against that limit.
pub(crate) fn max_connections(requested: Option<u32>) -> anyhow::Result<u32> {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    fit(requested, limit.current)
}

/// `requested` connections, or the default (if the open-file limit allows it), within `open_files` (`None`: unlimited).
fn fit(requested: Option<u32>, open_files: Option<u64>) -> anyhow::Result<u32> {
    let room = open_files.map_or(u64::from(u32::MAX), |files| {
        files.saturating_sub(RESERVED_FDS)
    });
    let room = u32::try_from(room).unwrap_or(u32::MAX);
    match requested {
        None => Ok(DEFAULT_MAX_CONNECTIONS.min(room).max(1)),
        Some(wanted) if wanted <= room => Ok(wanted),
        Some(wanted) => anyhow::bail!(
            "--max-connections {wanted} is more than the open-file limit allows ({room}, with \
             {RESERVED_FDS} of {} files kept for the rest): raise `ulimit -n` or lower it",
            u64::from(room) + RESERVED_FDS
        ),
    }
}

/// The open connections, under a cap; [`Metrics`] counts them and those refused.
#[derive(Debug)]
pub(crate) struct Connections {
    open: Arc<Semaphore>,
    header_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Connections {
    /// Room for `max` connections, each sending its request heads within `header_timeout`.
    pub(crate) fn new(max: u32, header_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            open: Arc::new(Semaphore::new(max as usize)),
            header_timeout,
            metrics,
        }
    }

    /// Serves `stream` in its own task, or refuses it if the cap is reached.
    pub(crate) fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        handler: &Arc<Handler>,
        drain: &watch::Receiver<bool>,
    ) {
        let Ok(open) = Arc::clone(&self.open).try_acquire_owned() else {
            self.refuse(&stream);
            return;
        };
        // Without TCP_NODELAY, a response the guest writes in several pieces waits on
        // Nagle's algorithm for the client's delayed ACK: about 40 ms per multi-chunk
        // answer (GET /tasks with 100 tasks ran at 700 req/s on an idle CPU).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {error}");
        }
        let open = Open::new(open, Arc::clone(&self.metrics));
        tokio::spawn(serve(
            stream,
            peer,
            Arc::clone(handler),
            self.header_timeout,
            open,
            drain.clone(),
        ));
    }

    fn refuse(&self, stream: &TcpStream) {
        // Best effort and never blocking: a full socket buffer just means a bare close.
        let _ = stream.try_write(REFUSAL);
        let refused = self.metrics.connection_refused();
        // A flood would otherwise write a line per connection.
        if refused.is_power_of_two() {
            tracing::warn!(
                refused,
                "connection refused: --max-connections are open ({refused} refused so far)"
            );
        }
    }
}

/// A connection's place under the cap, counted as open until dropped.
struct Open {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Open {
    fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.connection(true);
        Self {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connection(false);
    }
}

/// Marks a connection as answering a request until the answer is sent or dropped, so that a
/// drain closes only connections with nothing in progress.
struct Answering(Arc<AtomicBool>);

impl Answering {
    fn new(flag: &Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::Release);
        Self(Arc::clone(flag))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Serves one connection until the client closes it, or a drain does. `_open` is the
/// connection's place under the cap and `drain` says when to stop; both are dropped when the
/// connection is over, which is what the server's drain waits for.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<Handler>,
    header_timeout: Duration,
    _open: Open,
    mut drain: watch::Receiver<bool>,
) {
    let answering = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&answering);
    let service = service_fn(move |request| {
        let handler = Arc::clone(&handler);
        let mark = Answering::new(&flag);
        async move {
            let mut response = handler.handle(request).await?;
            response.body_mut().hold(Box::new(mark));
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // `printf 'GET / HTTP/1.0\r\n\r\n' | nc HOST PORT` shuts its sending side once the
        // request is out; without half-close support hyper would drop the request unanswered.
        .half_close(true)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, "connection ended: {error}");
            }
            return;
        }
        _ = drain.wait_for(|draining| *draining) => {}
    }
    connection.as_mut().graceful_shutdown();
    loop {
        match tokio::time::timeout(DRAIN_GRACE, connection.as_mut()).await {
            Ok(_) => return,
            Err(_) if !answering.load(Ordering::Acquire) => {
                tracing::debug!(%peer, "closed by the drain before a request started");
                return;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_below_the_open_file_limit() {
        assert_eq!(
            fit(None, Some(1_048_576)).ok(),
            Some(DEFAULT_MAX_CONNECTIONS)
        );
        assert_eq!(
            fit(None, Some(1024)).ok(),
            Some(1024 - 128),
            "a low limit lowers it"
        );
        assert_eq!(
            fit(None, None).ok(),
            Some(DEFAULT_MAX_CONNECTIONS),
            "unlimited"
        );
        assert_eq!(fit(Some(896), Some(1024)).ok(), Some(896));
        let error = fit(Some(897), Some(1024)).expect_err("over the limit");
        assert!(error.to_string().contains("ulimit -n"), "{error}");
    }
}
