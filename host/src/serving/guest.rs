//! The guest as the HTTP front sees it: the body it is handed, the task that goes on writing
//! its answer once the head is out ([`RunningGuest`]), and every way it can fail to answer
//! ([`GuestFailure`]), before or after that head.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::task::JoinHandle;
use tokio::time::Sleep;
use wasmtime::Trap;

/// The request body handed to the guest: already fully read.
pub(crate) type GuestBody =
    http_body_util::combinators::MapErr<Full<Bytes>, fn(Infallible) -> wasmtime_wasi_http::Error>;

/// `bytes` as the body a guest reads.
pub(crate) fn guest_body(bytes: Bytes) -> GuestBody {
    Full::new(bytes).map_err(never as fn(Infallible) -> wasmtime_wasi_http::Error)
}

fn never(never: Infallible) -> wasmtime_wasi_http::Error {
    match never {}
}

/// Why a guest gave no answer, or no complete one.
#[derive(Debug)]
pub(crate) enum GuestFailure {
    /// The guest missed its deadline: 504, or a body cut off.
    Timeout(Duration),
    /// No instance slot freed up within the queue timeout: 503.
    Busy,
    /// The store was unavailable, and the guest failed or answered 5xx: 503.
    StoreUnavailable,
    /// The guest ran into `--max-memory`: 500.
    MemoryLimit(wasmtime::Error),
    /// The guest trapped, or answered with an error instead of a response: 500.
    Fault(wasmtime::Error),
}

/// Marks a guest error that followed a refused memory growth.
#[derive(Debug)]
pub(crate) struct MemoryRefused;

impl std::fmt::Display for MemoryRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the guest hit --max-memory")
    }
}

impl std::error::Error for MemoryRefused {}

impl GuestFailure {
    /// What a guest task's error means: a deadline, a full pool, or a fault of the guest.
    pub(crate) fn of(error: wasmtime::Error, timeout: Duration) -> Self {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Self::Timeout(timeout),
            _ if error.is::<wasmtime::PoolConcurrencyLimitError>() => Self::Busy,
            _ if error.is::<MemoryRefused>() => Self::MemoryLimit(error),
            _ => Self::Fault(error),
        }
    }

    /// A fault the host saw rather than the guest's code: a failed task, a bad answer.
    pub(crate) fn fault(message: impl std::fmt::Display) -> Self {
        Self::Fault(wasmtime::format_err!("{message}"))
    }

    /// The kind of failure, as metrics label it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Busy => "busy",
            Self::StoreUnavailable => "store_unavailable",
            Self::MemoryLimit(_) => "memory_limit",
            Self::Fault(error) if error.is::<Trap>() => "trap",
            Self::Fault(_) => "error",
        }
    }

    /// One line saying what went wrong: the trap code rather than the wasm backtrace.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Timeout(timeout) => format!(
                "no complete response within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Busy => "every instance slot is busy".to_owned(),
            Self::StoreUnavailable => "the store is unavailable".to_owned(),
            Self::MemoryLimit(error) | Self::Fault(error) => error
                .downcast_ref::<Trap>()
                .map_or_else(|| format!("{error:#}"), Trap::to_string),
        }
    }
}

/// The guest still running behind a response whose head is out.
pub(crate) struct RunningGuest {
    /// The task running the guest's `handle`.
    task: JoinHandle<wasmtime::Result<()>>,
    /// When the request's deadline passes.
    deadline: Pin<Box<Sleep>>,
    /// The request timeout, for the log.
    timeout: Duration,
}

impl RunningGuest {
    /// The guest running in `task`, which must be done by `deadline`, `timeout` after it
    /// started.
    pub(crate) fn new(
        task: JoinHandle<wasmtime::Result<()>>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Self {
        Self {
            task,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
        }
    }

    /// Ready with [`GuestFailure::Timeout`] once the deadline has passed.
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<GuestFailure> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(GuestFailure::Timeout(self.timeout))
    }

    /// Ready once the guest has returned: `Ok` if it succeeded.
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GuestFailure>> {
        Poll::Ready(match ready!(Pin::new(&mut self.task).poll(cx)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(GuestFailure::of(error, self.timeout)),
            Err(join) => Err(GuestFailure::fault(format_args!(
                "the guest task failed: {join}"
            ))),
        })
    }

    /// Stops the guest: no one is left to read what it writes.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}
