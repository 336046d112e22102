//! Guest stdout and stderr as host log lines, each tagged with the request id, so that
//! output of concurrent requests can be told apart. An instance that serves one request
//! after another keeps its streams, so the id is read when each line is written.
//!
//! WASIp2 guests write through [`LineWriter`] as an `OutputStream` of its own, which logs
//! as it is written to. wasmtime-wasi's default adapter (`AsyncWriteStream`) queues every
//! write, empty ones included, for a worker task: a guest looping on empty writes grew host
//! memory without bound (GHSA-5m8g-xhq4-4h93, fixed in wasmtime 48.0.9, which this build
//! cannot take). Here a write is handled before it returns, so nothing queues.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A partial line longer than this is logged as is, so a guest that never writes a newline
/// cannot grow host memory without bound.
const MAX_LINE: usize = 16 * 1024;

/// One of an instance's output streams.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    /// The request the instance is serving now.
    request_id: Arc<AtomicU64>,
    stream: &'static str,
}

impl GuestOutput {
    /// The stream named `stream` (`stdout` or `stderr`), tagged with the id `request_id`
    /// holds when a line is written.
    pub(crate) fn new(request_id: Arc<AtomicU64>, stream: &'static str) -> Self {
        Self { request_id, stream }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.clone()))
    }
}

/// Buffers bytes until a newline, then logs the line.
struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn new(output: GuestOutput) -> Self {
        Self {
            output,
            pending: Vec::new(),
        }
    }

    /// Takes `bytes`, logging every line they complete.
    fn take(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.emit_complete_lines();
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let stream = self.output.stream;
        let request_id = self.output.request_id.load(Ordering::Relaxed);
        tracing::info!(target: "guest", request_id, stream, "{}", line.trim_end_matches('\r'));
    }

    fn emit_complete_lines(&mut self) {
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            self.emit(&self.pending[start..start + end]);
            start += end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE {
            self.emit(&self.pending);
            self.pending.clear();
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().take(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How much a guest may write before it must check again: the line limit, so that a write
/// of a whole budget is logged at once.
const WRITE_BUDGET: usize = MAX_LINE;

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl Pollable for LineWriter {
    // Always ready: a write is done when it returns. (The trait is `async_trait`'s; this is
    // what its `async fn ready` expands to.)
    fn ready<'a, 'ready>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'ready>>
    where
        'a: 'ready,
        Self: 'ready,
    {
        Box::pin(std::future::ready(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit(&self.pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> LineWriter {
        LineWriter::new(GuestOutput::new(Arc::new(AtomicU64::new(7)), "stdout"))
    }

    #[test]
    fn empty_writes_hold_nothing_and_lines_still_come_out_whole() -> StreamResult<()> {
        let mut stream = writer();
        for _ in 0..1_000_000 {
            stream.write(Bytes::new())?;
        }
        assert!(stream.pending.is_empty(), "an empty write keeps nothing");
        assert_eq!(stream.check_write()?, WRITE_BUDGET, "and costs no budget");
        stream.write(Bytes::from_static(b"half a "))?;
        stream.write(Bytes::new())?;
        stream.write(Bytes::from_static(b"line\nnext"))?;
        assert_eq!(stream.pending, b"next", "the whole line went out");
        Ok(())
    }

    #[test]
    fn a_line_longer_than_the_limit_is_logged_in_pieces() -> StreamResult<()> {
        let mut stream = writer();
        stream.write(Bytes::from(vec![b'x'; MAX_LINE + 1]))?;
        assert!(stream.pending.is_empty());
        Ok(())
    }
}
