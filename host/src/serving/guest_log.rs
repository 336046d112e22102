//! Guest stdout and stderr as host log lines, each tagged with the request id, so that
//! output of concurrent requests can be told apart. An instance that serves one request
//! after another keeps its streams, so the id is read when each line is written.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

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
        Box::new(LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        })
    }
}

/// Buffers bytes until a newline, then logs the line.
struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
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
        let this = self.get_mut();
        this.pending.extend_from_slice(bytes);
        this.emit_complete_lines();
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit(&self.pending);
        }
    }
}
