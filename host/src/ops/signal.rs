//! SIGTERM and SIGINT: the first starts a graceful drain, a second one exits at once.

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Exit status after a second signal cut the drain short (128 + SIGINT, as shells report).
pub(crate) const FORCED_EXIT: i32 = 130;

/// Listens for SIGTERM and SIGINT.
pub(crate) struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers. Do this before announcing readiness, so that a signal sent
    /// right after startup is never lost.
    pub(crate) fn install() -> anyhow::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Waits for the next signal and returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    /// Waits for the first signal, then arms the second one to end the process at once.
    pub(crate) async fn first_then_force(mut self) {
        let name = self.recv().await;
        tracing::info!("{name} received: draining (send it again to exit at once)");
        tokio::spawn(async move {
            let name = self.recv().await;
            tracing::warn!(
                "second signal ({name}): exiting without waiting for in-flight requests"
            );
            std::process::exit(FORCED_EXIT);
        });
    }
}
