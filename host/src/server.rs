//! The accept loop: each connection served by [`connection`] over [`Handler`], the component
//! watcher and SIGHUP reloads ([`Reloader`]), and a graceful drain that stops accepting,
//! lets answers in progress finish within the shutdown timeout, then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::header::HeaderValue;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::connection::{self, Connections};
use crate::handler::{Handler, Limits, Loaded};
use crate::pool::{Capacity, Shape};
use crate::reload::{self, Reloader};
use crate::runtime;

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    handler: Arc<Handler>,
    reloader: Arc<Reloader>,
    connections: Connections,
    watch: bool,
    hangups: Signal,
    shutdown_timeout: Duration,
}

impl Server {
    /// Opens the store, loads and checks the component, and binds the address. Every
    /// configuration problem surfaces here, before the first request.
    pub async fn bind(args: &ServeArgs) -> anyhow::Result<Self> {
        let max_connections = connection::max_connections(args.max_connections)?;
        let kv = args.store.open()?;
        let loaded_from = reload::Fingerprint::of(&args.component);
        let bytes = std::fs::read(&args.component)
            .with_context(|| format!("cannot read component {}", args.component.display()))?;
        let shape = Shape::of(&bytes).map_err(|error| {
            anyhow::anyhow!(
                "{} is not a WebAssembly file: {error}",
                args.component.display()
            )
        })?;
        let (engine, capacity) =
            runtime::engine(args.max_memory, Capacity::new(args.max_instances, shape))?;
        let linker = Arc::new(runtime::linker(&engine)?);
        let loaded = Loaded {
            runtime: runtime::load(&linker, &args.component, &bytes)?,
            digest: reload::digest(&bytes),
            shape,
        };
        runtime::start_epoch_ticker(&engine)?;
        let hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let limits = Limits {
            max_memory: args.max_memory,
            request_timeout: args.request_timeout,
            max_body: args.max_body,
        };
        let handler = Arc::new(Handler::new(
            loaded,
            kv,
            limits,
            capacity,
            args.queue_timeout,
            HeaderValue::from_str(&bound.to_string()).context("naming the bound address")?,
        ));
        tracing::info!(
            component = %args.component.display(),
            sha256 = %handler.digest(),
            store = %args.store,
            watch = args.watch,
            instance_slots = handler.instance_slots(),
            core_instances_per_request = shape.core_instances,
            max_connections,
            "component loaded",
        );
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
            connections: Connections::new(max_connections, args.header_timeout),
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
        // Every connection holds a receiver; the drain is over when all are dropped.
        let (drain, draining) = watch::channel(false);
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
            self.connections
                .accept(stream, peer, &self.handler, &draining);
        }
        drop(self.listener);
        hangups.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        drop(draining);
        // No receiver left means no connection left: nothing to tell, nothing to wait for.
        let _ = drain.send(true);
        match tokio::time::timeout(self.shutdown_timeout, drain.closed()).await {
            Ok(()) => tracing::info!(
                refused_connections = self.connections.refused(),
                "drained: every in-flight request finished"
            ),
            Err(_) => tracing::warn!(
                "shutdown timeout ({}) passed with requests still in flight; closing them",
                humantime::format_duration(self.shutdown_timeout)
            ),
        }
    }
}
