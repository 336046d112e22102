//! The `wasi:keyvalue` 0.2.0-draft host: `store`, `atomics` and `batch`, backed by one
//! [`Backend`] that every request and instance of the process shares.
//!
//! The WIT-facing [`KvView`] only translates between guest handles and the backend; the
//! backends ([`memory`], [`redb`]) know nothing of WIT. Backend calls may block on disk, so
//! they run on tokio's blocking pool rather than on the threads that drive guests.

pub mod memory;
pub mod redb;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
        trappable_error_type: { "wasi:keyvalue/store.error" => super::KvError },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// Most keys one `list-keys` call returns; the cursor continues from there.
pub const LIST_PAGE_SIZE: usize = 1000;
/// Bucket identifiers are guest-controlled: bound them so they stay sane table keys.
const MAX_BUCKET_NAME: usize = 1024;

/// What a backend stores: byte values under string keys, in named buckets (`""` is the
/// default one). Every method is one atomic, durable step for its backend.
pub trait Backend: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes `value` under `key`; it is durable when this returns.
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()>;
    /// Removes `key`, if present.
    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()>;
    /// Whether `key` is present.
    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool>;
    /// Up to [`LIST_PAGE_SIZE`] keys after skipping `offset`, and the offset of the next page.
    fn list_keys(&self, bucket: &str, offset: u64) -> anyhow::Result<(Vec<String>, Option<u64>)>;
    /// Adds `delta` to the decimal counter under `key` (missing is 0), atomically.
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64>;
    /// The values of `keys`, in order.
    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>>;
    /// Writes every pair, in one step.
    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()>;
    /// Removes every key, in one step.
    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()>;
}

/// Reads a counter the way wasmtime's own keyvalue provider writes it: a decimal string.
fn add_to_counter(current: Option<&[u8]>, key: &str, delta: u64) -> anyhow::Result<u64> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .with_context(|| format!("the value under {key:?} is not a decimal counter"))?,
    };
    current
        .checked_add(delta)
        .with_context(|| format!("incrementing {key:?} overflows u64"))
}

/// `--store`: which backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// Volatile, shared by all requests of the process.
    Memory,
    /// Durable, in a redb file.
    Redb(PathBuf),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            _ if spec == "memory" => Ok(Self::Memory),
            Some(("redb", path)) if !path.is_empty() => Ok(Self::Redb(PathBuf::from(path))),
            _ => Err(format!(
                "unknown store {spec:?}: expected `memory` or `redb:PATH`"
            )),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Redb(path) => write!(f, "redb:{}", path.display()),
        }
    }
}

impl StoreSpec {
    /// Opens the backend, creating what is missing.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(match self {
            Self::Memory => Arc::new(memory::MemoryBackend::default()),
            Self::Redb(path) => Arc::new(redb::RedbBackend::open(path)?),
        })
    }
}

/// A guest's open bucket: just its name; the data lives in the backend.
#[derive(Debug)]
pub struct Bucket {
    name: String,
}

/// The keyvalue error as the host sees it: the WIT variant, or a trap for host bugs.
#[derive(Debug)]
pub enum KvError {
    /// WIT `other(string)`: the backend failed, e.g. on I/O.
    Other(String),
    /// Not a guest-visible error: the guest passed a dead handle or the host broke.
    Trap(wasmtime::Error),
}

impl From<ResourceTableError> for KvError {
    fn from(error: ResourceTableError) -> Self {
        Self::Trap(error.into())
    }
}

/// The per-request view the generated `Host` traits are implemented on.
pub struct KvView<'a> {
    backend: &'a Arc<dyn Backend>,
    table: &'a mut ResourceTable,
}

impl<'a> KvView<'a> {
    /// A view over the shared backend and this request's resource table.
    pub fn new(backend: &'a Arc<dyn Backend>, table: &'a mut ResourceTable) -> Self {
        Self { backend, table }
    }

    /// Runs `op` against the backend on the blocking pool, for the bucket behind `bucket`.
    async fn run<R: Send + 'static>(
        &mut self,
        bucket: &Resource<Bucket>,
        op: impl FnOnce(&dyn Backend, &str) -> anyhow::Result<R> + Send + 'static,
    ) -> Result<R, KvError> {
        let name = self.table.get(bucket)?.name.clone();
        let backend = Arc::clone(self.backend);
        match tokio::task::spawn_blocking(move || op(backend.as_ref(), &name)).await {
            Ok(result) => result.map_err(|error| {
                tracing::warn!("key-value store: {error:#}");
                KvError::Other(format!("{error:#}"))
            }),
            Err(join) => Err(KvError::Trap(wasmtime::format_err!(
                "key-value task failed: {join}"
            ))),
        }
    }
}

/// Marker tying the generated `add_to_linker` functions to [`KvView`].
struct Kv;

impl HasData for Kv {
    type Data<'a> = KvView<'a>;
}

/// Adds `wasi:keyvalue/{store,atomics,batch}` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, Kv>(linker, view)?;
    atomics::add_to_linker::<T, Kv>(linker, view)?;
    batch::add_to_linker::<T, Kv>(linker, view)?;
    Ok(())
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        if identifier.len() > MAX_BUCKET_NAME {
            return Err(KvError::Other(format!(
                "bucket identifiers are at most {MAX_BUCKET_NAME} bytes"
            )));
        }
        Ok(self.table.push(Bucket { name: identifier })?)
    }

    fn convert_error(&mut self, error: KvError) -> wasmtime::Result<store::Error> {
        match error {
            KvError::Other(message) => Ok(store::Error::Other(message)),
            KvError::Trap(error) => Err(error),
        }
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, KvError> {
        self.run(&bucket, move |backend, name| backend.get(name, &key))
            .await
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        self.run(&bucket, move |backend, name| {
            backend.set(name, &key, &value)
        })
        .await
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
        self.run(&bucket, move |backend, name| backend.delete(name, &key))
            .await
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        self.run(&bucket, move |backend, name| backend.exists(name, &key))
            .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        // The cursor is guest-controlled; backends treat one past the end as an empty page.
        let offset = cursor.unwrap_or(0);
        let (keys, cursor) = self
            .run(&bucket, move |backend, name| {
                backend.list_keys(name, offset)
            })
            .await?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        self.run(&bucket, move |backend, name| {
            backend.increment(name, &key, delta)
        })
        .await
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        self.run(&bucket, move |backend, name| {
            let values = backend.get_many(name, &keys)?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(key, value)| value.map(|value| (key, value)))
                .collect())
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        self.run(&bucket, move |backend, name| {
            backend.set_many(name, &entries)
        })
        .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        self.run(&bucket, move |backend, name| {
            backend.delete_many(name, &keys)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
