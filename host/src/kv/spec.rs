//! `--store`: which backend to open, and how long a networked one may take.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{Backend, BatchObserver};
use super::redis::{RedisUrl, redacted};
use super::{memory, redb, redis};

/// How long a networked store may take: each operation, and the wait for it at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTimeouts {
    /// Connecting, and each command; past it the request gets 503.
    pub operation: Duration,
    /// How long startup keeps trying to reach the store before it gives up.
    pub startup: Duration,
}

/// `--store`: which backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// Volatile, shared by all requests of the process.
    Memory,
    /// Durable, in a redb file.
    Redb(PathBuf),
    /// Shared by every process that names it; as durable as its persistence settings.
    Redis(RedisUrl),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        if let Some(url) = RedisUrl::parse(spec) {
            return url.map(Self::Redis);
        }
        match spec.split_once(':') {
            _ if spec == "memory" => Ok(Self::Memory),
            Some(("redb", path)) if !path.is_empty() => Ok(Self::Redb(PathBuf::from(path))),
            _ => Err(format!(
                "unknown store {:?}: expected `memory`, `redb:PATH` or `redis://HOST:PORT[/DB]`",
                redacted(spec)
            )),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Redb(path) => write!(f, "redb:{}", path.display()),
            Self::Redis(url) => url.fmt(f),
        }
    }
}

impl StoreSpec {
    /// The backend's name, as metrics label it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redb(_) => "redb",
            Self::Redis(_) => "redis",
        }
    }

    /// Opens the backend, creating what is missing; a networked one within `timeouts`, and
    /// one that evicts keys only if `allow_eviction`. A backend that commits writes in
    /// batches tells `on_batch` each batch's size; the others never call it.
    pub(crate) async fn open(
        &self,
        timeouts: StoreTimeouts,
        allow_eviction: bool,
        on_batch: BatchObserver,
    ) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(match self {
            Self::Memory => Arc::new(memory::MemoryBackend::default()),
            Self::Redb(path) => Arc::new(redb::RedbBackend::open(path, on_batch)?),
            Self::Redis(url) => Arc::new(
                redis::RedisBackend::connect(
                    url,
                    timeouts.operation,
                    timeouts.startup,
                    allow_eviction,
                )
                .await?,
            ),
        })
    }
}
