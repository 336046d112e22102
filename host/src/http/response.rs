//! The answer as it leaves the host: the guest's body streamed to the client, cut off when the
//! guest fails after the head went out, and the access-log line written once it is over.
//!
//! A guest hands over the response head first and writes the body afterwards, so a trap, a
//! runaway loop or an exhausted memory can strike mid-body. wasmtime-wasi-http then just
//! closes its body channel, which reads as a normal end: the client would get a chunked body
//! terminated as if complete. So the end of the guest's body is passed on only once the
//! guest has returned successfully; any failure, or the request deadline passing first, is
//! passed on as a body error instead, on which hyper drops the connection without the final
//! chunk, and the client sees the response was cut short.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Response};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::ops::metrics::{InFlight, Metrics, Phase};
use crate::serving::guest::{GuestFailure, RunningGuest};

/// What one request was, for its access-log line and its metrics.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// Where the request is counted.
    pub(crate) metrics: Arc<Metrics>,
    /// Counts the request in flight until the exchange is over.
    pub(crate) _in_flight: InFlight,
    /// The request id, also in the `x-request-id` header.
    pub(crate) request_id: u64,
    /// The request method.
    pub(crate) method: Method,
    /// The request path, without the query.
    pub(crate) path: String,
    /// When the request arrived.
    pub(crate) started: Instant,
}

/// What the response head said, as far as the log needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    status: u16,
    /// The `Content-Length`, if the head has one: hyper stops polling a body once that many
    /// bytes are out, so its end is never seen, and this is how the log knows it was whole.
    length: Option<u64>,
}

impl Head {
    pub(crate) fn of<B>(response: &Response<B>) -> Self {
        Self {
            status: response.status().as_u16(),
            length: response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse().ok()),
        }
    }
}

/// How the body ended, once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Still being sent.
    Open,
    /// Sent to the end.
    Complete,
    /// Cut off: the guest failed or missed its deadline.
    Aborted,
}

/// Something held for as long as the answer is being sent (the connection's in-flight mark).
pub(crate) type Hold = Box<dyn Send + Sync>;

/// A response body that ends only when the guest has succeeded, and logs the exchange.
pub(crate) struct ResponseBody {
    inner: HyperOutgoingBody,
    guest: Option<RunningGuest>,
    exchange: Exchange,
    head: Head,
    bytes: u64,
    ending: Ending,
    /// Why the body is being cut off, until hyper has been told (see [`Self::abort`]).
    cut: Option<String>,
    _hold: Option<Hold>,
}

impl ResponseBody {
    /// A body of the guest's, which must finish within the guest's deadline.
    pub(crate) fn streamed(
        inner: HyperOutgoingBody,
        guest: RunningGuest,
        exchange: Exchange,
        head: Head,
    ) -> Self {
        Self::new(inner, Some(guest), exchange, head)
    }

    /// A body the host made itself.
    pub(crate) fn host(inner: HyperOutgoingBody, exchange: Exchange, head: Head) -> Self {
        Self::new(inner, None, exchange, head)
    }

    fn new(
        inner: HyperOutgoingBody,
        guest: Option<RunningGuest>,
        exchange: Exchange,
        head: Head,
    ) -> Self {
        Self {
            inner,
            guest,
            exchange,
            head,
            bytes: 0,
            ending: Ending::Open,
            cut: None,
            _hold: None,
        }
    }

    /// Keeps `hold` alive until the body is done with.
    pub(crate) fn hold(&mut self, hold: Hold) {
        self._hold = Some(hold);
    }

    /// Ends the body with an error, so that hyper drops the connection without the final
    /// chunk, and says why in the log.
    ///
    /// The error reaches hyper one poll later. hyper drops the connection at once on a body
    /// error, and with it whatever head and data it has not written yet: a guest that traps
    /// right after its first write would leave the client with nothing at all. Answering
    /// `Pending` first lets hyper flush what the client was already sent, as it does whenever
    /// a body has nothing ready.
    fn abort(
        &mut self,
        cx: &mut Context<'_>,
        failure: &GuestFailure,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        self.ending = Ending::Aborted;
        if let Some(guest) = self.guest.take() {
            guest.abort();
        }
        let reason = failure.describe();
        self.exchange
            .metrics
            .guest_failed(failure.kind(), Phase::AfterHead);
        tracing::error!(
            request_id = self.exchange.request_id,
            "guest failed after the response head: {reason}; the response was cut off"
        );
        self.cut = Some(reason);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The end of the guest's body: final once the guest has returned, and only if it
    /// succeeded.
    fn poll_guest_end(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let Some(guest) = self.guest.as_mut() else {
            self.ending = Ending::Complete;
            return Poll::Ready(None);
        };
        let outcome = ready!(guest.poll_end(cx));
        self.guest = None;
        match outcome {
            Ok(()) => {
                self.ending = Ending::Complete;
                Poll::Ready(None)
            }
            Err(failure) => self.abort(cx, &failure),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = self.get_mut();
        if let Some(reason) = this.cut.take() {
            return Poll::Ready(Some(Err(ErrorCode::InternalError(Some(reason)))));
        }
        if this.ending != Ending::Open {
            return Poll::Ready(None);
        }
        if let Some(guest) = this.guest.as_mut()
            && let Poll::Ready(timeout) = guest.poll_deadline(cx)
        {
            return this.abort(cx, &timeout);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                this.bytes += frame.data_ref().map_or(0, |data| data.len() as u64);
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(code)) => this.abort(
                cx,
                &GuestFailure::fault(format_args!("the guest aborted its body: {code:?}")),
            ),
            None => this.poll_guest_end(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        // A cut still to be told to hyper is not an end: hyper would finish the body.
        match self.ending {
            Ending::Complete => true,
            Ending::Aborted => self.cut.is_none(),
            Ending::Open => self.guest.is_none() && self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let body = match self.ending {
            Ending::Complete => "complete",
            Ending::Aborted => "aborted",
            // hyper drops a body once its Content-Length is out, or once a host-made body
            // (no guest behind it) says it is at its end; one it never needs (HEAD: the head
            // is the whole answer); and one the client stopped reading. So the guest is let
            // go only below: a guest still running is a body not known to be whole.
            Ending::Open if Some(self.bytes) == self.head.length => "complete",
            Ending::Open if self.guest.is_none() && self.inner.is_end_stream() => "complete",
            Ending::Open if self.exchange.method == Method::HEAD => "complete",
            Ending::Open => "unfinished",
        };
        // A client that went away mid-body leaves the guest with no one to write for.
        if let Some(guest) = self.guest.take() {
            guest.abort();
        }
        let Exchange {
            ref metrics,
            _in_flight: _,
            request_id,
            ref method,
            ref path,
            started,
        } = self.exchange;
        metrics.request_finished(method, self.head.status, started.elapsed());
        tracing::info!(
            target: "access",
            request_id,
            %method,
            path,
            status = self.head.status,
            body,
            bytes = self.bytes,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
    }
}
