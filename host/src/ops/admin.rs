//! The admin listener: `GET /metrics`, `/livez` and `/readyz` on an address of their own
//! (`--admin-addr`), so that no route of the guest is shadowed and the metrics need not be
//! public. It is off unless asked for.
//!
//! - `/livez`: the process answers. A liveness probe that fails means "restart me".
//! - `/readyz`: 200 only while a component is loaded (always, once serving), the store
//!   answers a read within [`STORE_PROBE_TIMEOUT`], and the host is not draining; 503 with
//!   the reason otherwise. A load balancer stops sending traffic on 503.
//! - `/metrics`: [`Metrics`] in the Prometheus text format.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

use crate::kv::Backend;
use crate::ops::metrics::{self, Metrics};

/// How long the store may take to answer the readiness read.
pub(crate) const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The key read to see that the store answers; it need not exist.
const STORE_PROBE_KEY: &str = "task-host/readyz";
/// Admin connections open at once: scrapers and probes, a handful at most. A new one past
/// the cap closes the connection open longest, once its request (if any) is answered, so that
/// idle connections cannot keep the probes out (see [`Connections`]).
const MAX_CONNECTIONS: usize = 64;
/// How long a new connection waits for the one it displaced to close.
const DISPLACE_WAIT: Duration = Duration::from_secs(1);
/// Time for an admin request head to arrive, idle time included.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What readiness depends on.
pub(crate) struct Health {
    draining: AtomicBool,
    kv: Arc<dyn Backend>,
}

impl Health {
    /// Ready while `kv` answers and no drain has begun.
    pub(crate) fn new(kv: Arc<dyn Backend>) -> Self {
        Self {
            draining: AtomicBool::new(false),
            kv,
        }
    }

    /// From now on the host is draining, and not ready.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `Ok` when ready, or why not.
    async fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("draining".to_owned());
        }
        let kv = Arc::clone(&self.kv);
        let read = tokio::task::spawn_blocking(move || kv.exists("", STORE_PROBE_KEY));
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, read).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(error))) => Err(format!("the store failed: {error:#}")),
            Ok(Err(join)) => Err(format!("the store probe failed: {join}")),
            Err(_) => Err("the store did not answer in time".to_owned()),
        }
    }
}

/// Serves the admin endpoints on `listener` until `stop` says so.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = Arc::new(Connections::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!("admin accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Dropped at once: the guard `wait_for` yields must not live across an await.
            () = async { drop(stop.wait_for(|stopped| *stopped).await) } => return,
        };
        let slot = match Arc::clone(&open).try_acquire_owned() {
            Ok(slot) => slot,
            // Over the cap, the connection open longest makes room: a prober's is new and
            // answered at once, so what gives way is what sat idle.
            Err(_) => {
                connections.close_oldest();
                match tokio::time::timeout(DISPLACE_WAIT, Arc::clone(&open).acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => continue,
                }
            }
        };
        let (id, close) = connections.open();
        let (metrics, health) = (Arc::clone(&metrics), Arc::clone(&health));
        let service = service_fn(move |request| {
            let (metrics, health) = (Arc::clone(&metrics), Arc::clone(&health));
            async move { Ok::<_, Infallible>(answer(&request, &metrics, &health).await) }
        });
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let _slot = slot;
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = close.notified() => {
                    // Closes it at once if idle, or after the answer in progress.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, "admin connection ended: {error}");
            }
            connections.closed(id);
        });
    }
}

/// The admin connections open, oldest first, each with the signal that closes it.
#[derive(Default)]
struct Connections {
    open: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next_id: AtomicU64,
}

impl Connections {
    /// Registers a new connection: its id, and what tells it to close.
    fn open(&self) -> (u64, Arc<Notify>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().push_back((id, Arc::clone(&close)));
        (id, close)
    }

    /// Tells the connection open longest to close.
    fn close_oldest(&self) {
        if let Some((_, close)) = self.lock().pop_front() {
            close.notify_one();
        }
    }

    /// Forgets connection `id`, which has ended.
    fn closed(&self, id: u64) {
        self.lock().retain(|(open, _)| *open != id);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Arc<Notify>)>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The answer to one admin request.
async fn answer(
    request: &Request<Incoming>,
    metrics: &Metrics,
    health: &Health,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/livez" | "/readyz") {
        return json(StatusCode::NOT_FOUND, &json!({ "detail": "Not Found" }));
    }
    if request.method() != Method::GET {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "detail": "Method Not Allowed" }),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            response
        }
        "/livez" => json(StatusCode::OK, &json!({ "status": "live" })),
        _ => match health.ready().await {
            Ok(()) => json(StatusCode::OK, &json!({ "status": "ready" })),
            Err(reason) => json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "not ready", "reason": reason }),
            ),
        },
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Binds the admin address, with an error that names it.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {addr} (--admin-addr): {error}"))
}
