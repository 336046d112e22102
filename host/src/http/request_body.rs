//! Reading a request body within the size limit, and refusing one over it so that the client
//! actually sees the refusal.
//!
//! Answering 413 and closing at once races the client, which is usually still sending. The
//! close leaves unread bytes in the kernel's receive buffer, so it goes out as a TCP reset,
//! and the reset can destroy the 413 before the client reads it: the client reports a broken
//! pipe instead. So a refused body is read and thrown away in the background, for a bounded
//! time and number of bytes (what nginx calls a lingering close; the bounds are the ones the
//! component drains by, [`DRAIN_TIME`] and [`DRAIN_BYTES`]), and the 413 carries
//! `Connection: close`. A client that sent `Expect: 100-continue` is not affected: once the
//! 413 is out, hyper never sends it the 100, so it gets the refusal at once and sends nothing.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use task_api_limits::{DRAIN_BYTES, DRAIN_TIME};
use tokio::time::Instant;

/// What a request body must meet: its size, and how soon and how fast it arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest body, in bytes.
    pub(crate) max_bytes: usize,
    /// How long the whole body may take. A client that trickles its body would otherwise
    /// hold the connection and its buffer; the guest's own deadline starts only once the
    /// body is in.
    pub(crate) timeout: Duration,
    /// How fast it must keep coming.
    pub(crate) pace: Pace,
}

/// How fast a body must arrive. A client that drips one byte a second would otherwise hold
/// its connection, and its place under the connection cap, for the whole request timeout:
/// `--max-connections` of them lock everyone else out, for a few kilobytes a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Time every body has before the rate counts: a connection's first round trips.
    pub(crate) grace: Duration,
    /// Bytes a second, on average since the body began, that it must keep up after that.
    pub(crate) min_rate: u64,
}

impl Pace {
    /// When a body that began at `started` and has sent `received` bytes must have sent
    /// more: the grace, plus the time those bytes buy at the minimum rate.
    fn deadline(self, started: Instant, received: usize) -> Instant {
        let bought = received as f64 / self.min_rate.max(1) as f64;
        started + self.grace + Duration::from_secs_f64(bought)
    }
}

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit (declared or actual), in bytes.
    TooLarge(usize),
    /// The connection failed or the framing was invalid.
    Unreadable(hyper::Error),
    /// The body fell behind the minimum rate, in bytes a second.
    TooSlow(u64),
    /// The whole body did not arrive within this long.
    TimedOut(Duration),
}

/// Reads all of `body` within `limits`: no more than its bytes, keeping up with its pace, and
/// all of it within its timeout. A declared length over the limit is refused before a byte
/// is read; an undeclared one as soon as it passes the limit. Either way the rest of a refused
/// body is drained in the background. A body that falls behind is not: its client is the
/// slow one.
pub(crate) async fn read(
    headers: &HeaderMap,
    mut body: Incoming,
    limits: Limits,
) -> Result<Bytes, BodyError> {
    let Limits {
        max_bytes: limit,
        timeout,
        pace,
    } = limits;
    let started = Instant::now();
    let end = started + timeout;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        tokio::spawn(discard(body));
        return Err(BodyError::TooLarge(limit));
    }
    // A declared length is within the limit here, so it is a safe capacity to start with.
    let mut bytes = BytesMut::with_capacity(declared.map_or(0, |length| length as usize));
    loop {
        // Whichever comes first: the pace's next deadline, or the end of the whole body's.
        let deadline = pace.deadline(started, bytes.len()).min(end);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) if deadline == end => return Err(BodyError::TimedOut(timeout)),
            Err(_) => return Err(BodyError::TooSlow(pace.min_rate)),
        };
        let Ok(data) = frame.map_err(BodyError::Unreadable)?.into_data() else {
            continue; // trailers: nothing to hand the guest
        };
        if bytes.len() + data.len() > limit {
            tokio::spawn(discard(body));
            return Err(BodyError::TooLarge(limit));
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes.freeze())
}

/// Reads and drops the rest of a refused body, within [`DRAIN_TIME`] and [`DRAIN_BYTES`].
/// Dropping `body` afterwards lets hyper close the connection.
async fn discard(mut body: Incoming) {
    let drain = async {
        let mut drained = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            drained += frame.data_ref().map_or(0, |data| data.len() as u64);
            if drained > DRAIN_BYTES {
                break;
            }
        }
    };
    // Either way the connection is finished with: a timeout only cuts the courtesy short.
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}
