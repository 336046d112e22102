//! The accept loop: each connection served by [`connection`] over [`Handler`], the component
//! watcher and SIGHUP reloads ([`Reloader`]), and a graceful drain that stops accepting,
//! lets answers in progress finish within the shutdown timeout, then returns. [`Server::new`]
//! is where the pieces are built from a [`Config`]: the store, the engine and cache, the
//! served component ([`Serving`]), and the front that serves it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::header::HeaderValue;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use super::connection::{self, Connections};
use super::handler::Handler;
use super::request_body::{Limits, Pace};
use crate::config::{BODY_GRACE, Config};
use crate::kv::{Backend, Instrumented};
use crate::ops::admin::{self, Health};
use crate::ops::metrics::Metrics;
use crate::reload::{self, Reloader};
use crate::serving::Serving;
use crate::serving::cache::CompileCache;
use crate::serving::candidate::Candidate;
use crate::serving::instance::GuestEnv;
use crate::serving::pool::Capacity;
use crate::serving::runtime;

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    handler: Arc<Handler>,
    reloader: Arc<Reloader>,
    connections: Connections,
    admin: Option<TcpListener>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    watch: bool,
    hangups: Signal,
    shutdown_timeout: Duration,
}

impl Server {
    /// Loads and checks the component and opens the store, to serve on `listener`. Every
    /// configuration problem surfaces here, before the first request.
    pub async fn new(listener: TcpListener, config: Config) -> anyhow::Result<Self> {
        let max_connections = connection::max_connections(config.max_connections)?;
        let metrics = Arc::new(Metrics::default());
        let admin = match config.admin_addr {
            Some(addr) => Some(admin::bind(addr).await?),
            None => None,
        };
        // Taken before the file is read, so that no replacement can slip in between.
        let loaded_from = reload::Fingerprint::of(&config.component);
        let candidate = Candidate::read(&config.component)?;
        let shape = candidate.shape;
        let capacity = Capacity::new(config.max_instances, shape);
        let engine = runtime::engine(capacity)?;
        let linker = Arc::new(runtime::linker(&engine)?);
        let cache = Arc::new(CompileCache::open(
            config.cache_dir.as_deref(),
            config.cache_max_size,
            config.precompiled_dir.as_deref(),
            &engine,
            Arc::clone(&metrics),
        )?);
        let version = candidate.load(&linker, &cache)?;
        if let Some(component) = version.compiled() {
            cache.keep(&component, &version.digest);
        }
        // After the component: a mistake in it is reported at once, not after the wait for
        // a store that cannot be reached.
        let batches = Arc::clone(&metrics);
        let on_batch = Box::new(move |writes| batches.kv_batch(writes));
        let kv: Arc<dyn Backend> = Arc::new(Instrumented::new(
            config
                .store
                .open(config.store_timeouts, config.redis_allow_eviction, on_batch)
                .await?,
            config.store.kind(),
            Arc::clone(&metrics),
        ));
        runtime::start_epoch_ticker(&engine)?;
        let hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let health = Arc::new(Health::new(Arc::clone(&kv)));
        let env = GuestEnv {
            kv,
            request_timeout: config.request_timeout,
            max_memory: config.max_memory,
            max_body: config.max_body,
            instance_reuse: config.instance_reuse,
            metrics: Arc::clone(&metrics),
        };
        let serving = Arc::new(Serving::new(
            version,
            env,
            capacity,
            config.queue_timeout,
            config.probe_timeout,
            Arc::clone(&metrics),
        ));
        let handler = Arc::new(Handler::new(
            Arc::clone(&serving),
            HeaderValue::from_str(&bound.to_string()).context("naming the bound address")?,
            Limits {
                max_bytes: config.max_body,
                timeout: config.request_timeout,
                pace: Pace {
                    grace: BODY_GRACE,
                    min_rate: config.min_body_rate,
                },
            },
            Arc::clone(&metrics),
        ));
        metrics.serving(&serving.digest());
        tracing::info!(
            component = %config.component.display(),
            sha256 = %serving.digest(),
            store = %config.store,
            watch = config.watch,
            instance_slots = serving.instance_slots(),
            core_instances_per_request = shape.core_instances,
            instance_reuse = config.instance_reuse,
            max_connections,
            compile_cache = %cache
                .dir()
                .map_or_else(|| "off".to_owned(), |dir| dir.display().to_string()),
            admin = %admin
                .as_ref()
                .and_then(|listener| listener.local_addr().ok())
                .map_or_else(|| "off".to_owned(), |addr| format!("http://{addr}")),
            "component loaded",
        );
        let reloader = Reloader::new(
            loaded_from,
            linker,
            cache,
            config.component,
            config.probe_path,
            serving,
            Arc::clone(&metrics),
        );
        Ok(Self {
            listener,
            handler,
            reloader: Arc::new(reloader),
            connections: Connections::new(
                max_connections,
                config.header_timeout,
                Arc::clone(&metrics),
            ),
            admin,
            metrics,
            health,
            watch: config.watch,
            hangups,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// The address the admin endpoints are served on, if they are.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_admin, admin_stopped) = watch::channel(false);
        if let Some(listener) = self.admin {
            tokio::spawn(admin::serve(
                listener,
                self.metrics,
                Arc::clone(&self.health),
                admin_stopped,
            ));
        }
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
        // Not ready from now on, so that balancers move away while requests finish.
        self.health.drain();
        drop(self.listener);
        hangups.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        drop(draining);
        // No receiver left means no connection left: nothing to tell, nothing to wait for.
        let _ = drain.send(true);
        let drained = tokio::time::timeout(self.shutdown_timeout, drain.closed()).await;
        let _ = stop_admin.send(true);
        match drained {
            Ok(()) => tracing::info!("drained: every in-flight request finished"),
            Err(_) => tracing::warn!(
                "shutdown timeout ({}) passed with requests still in flight; closing them",
                humantime::format_duration(self.shutdown_timeout)
            ),
        }
    }
}
