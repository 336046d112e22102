//! The accept loop: HTTP/1.1 with keep-alive over [`Handler`], the component watcher and
//! SIGHUP reloads ([`Reloader`]), and a graceful drain that stops accepting, lets in-flight
//! requests finish within the shutdown timeout, then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::ServeArgs;
use crate::handler::{Handler, Limits, Loaded};
use crate::reload::{self, Reloader};
use crate::runtime;

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    handler: Arc<Handler>,
    reloader: Arc<Reloader>,
    watch: bool,
    hangups: Signal,
    shutdown_timeout: Duration,
}

impl Server {
    /// Opens the store, loads and checks the component, and binds the address. Every
    /// configuration problem surfaces here, before the first request.
    pub async fn bind(args: &ServeArgs) -> anyhow::Result<Self> {
        let kv = args.store.open()?;
        let engine = runtime::engine(args.max_memory)?;
        let linker = Arc::new(runtime::linker(&engine)?);
        let loaded_from = reload::Fingerprint::of(&args.component);
        let bytes = std::fs::read(&args.component)
            .with_context(|| format!("cannot read component {}", args.component.display()))?;
        let loaded = Loaded {
            runtime: runtime::load(&linker, &args.component, &bytes)?,
            digest: reload::digest(&bytes),
        };
        runtime::start_epoch_ticker(&engine)?;
        let hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let limits = Limits {
            max_memory: args.max_memory,
            request_timeout: args.request_timeout,
            max_body: args.max_body,
        };
        tracing::info!(
            component = %args.component.display(),
            sha256 = %loaded.digest,
            store = %args.store,
            watch = args.watch,
            "component loaded",
        );
        let handler = Arc::new(Handler::new(loaded, kv, limits));
        let reloader = Reloader::new(
            loaded_from,
            linker,
            args.component.clone(),
            args.probe_path.clone(),
            Arc::clone(&handler),
        );
        Ok(Self {
            listener,
            handler,
            reloader: Arc::new(reloader),
            watch: args.watch,
            hangups,
            shutdown_timeout: args.shutdown_timeout,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let watcher = self
            .watch
            .then(|| tokio::spawn(Arc::clone(&self.reloader).watch()));
        let hangups = tokio::spawn(Arc::clone(&self.reloader).on_sighup(self.hangups));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(connection) => connection,
                    Err(error) => {
                        // Usually EMFILE: back off instead of spinning; the listener recovers.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Without TCP_NODELAY, a response the guest writes in several pieces waits on
            // Nagle's algorithm for the client's delayed ACK: about 40 ms per multi-chunk
            // answer (GET /tasks with 100 tasks ran at 700 req/s on an idle CPU).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, "cannot set TCP_NODELAY: {error}");
            }
            let handler = Arc::clone(&self.handler);
            let service = service_fn(move |request| {
                let handler = Arc::clone(&handler);
                async move { handler.handle(request).await }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%peer, "connection ended: {error}");
                }
            });
        }
        drop(self.listener);
        hangups.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        match tokio::time::timeout(self.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!("drained: every in-flight request finished"),
            Err(_) => tracing::warn!(
                "shutdown timeout ({}) passed with requests still in flight; closing them",
                humantime::format_duration(self.shutdown_timeout)
            ),
        }
    }
}
