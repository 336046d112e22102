//! The WIT side of the key-value host: the generated bindings, the guest's bucket handles,
//! and the `Host` traits implemented on [`KvView`] by translating to a [`Backend`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use super::{Backend, Unavailable};

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

/// Bucket identifiers are guest-controlled: bound them so they stay sane table keys.
const MAX_BUCKET_NAME: usize = 1024;

/// A guest's open bucket: just its name; the data lives in the backend.
#[derive(Debug)]
#[expect(
    unreachable_pub,
    reason = "bindgen's `with` re-exports it, which needs `pub`"
)]
pub struct Bucket {
    name: String,
}

/// The keyvalue error as the host sees it: the WIT variant, or a trap for host bugs.
#[derive(Debug)]
pub(crate) enum KvError {
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

/// Whether one request's store calls found the store [`Unavailable`].
///
/// The guest still gets each such failure as `error.other`, as wasi:keyvalue says: it is
/// the guest's to handle, and a guest may well answer without the store. But a guest that
/// gives up answers 500, which reads as its own fault, and no guest can tell the client to
/// come back later. So the host keeps this mark beside the request, and when the guest
/// then fails or answers 5xx, the host answers 503 `Store unavailable` itself (see
/// `component::Version::call`), with `Retry-After`, which load balancers and clients retry.
/// Trapping the guest instead would take the choice from guests that can do without the
/// store, and parsing the guest's answer would tie the host to one guest's error format.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreOutage(Arc<AtomicBool>);

impl StoreOutage {
    fn record(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a store call of the request found the store unavailable.
    pub(crate) fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The per-request view the generated `Host` traits are implemented on.
pub(crate) struct KvView<'a> {
    backend: &'a Arc<dyn Backend>,
    table: &'a mut ResourceTable,
    outage: &'a StoreOutage,
}

impl<'a> KvView<'a> {
    /// A view over the shared backend, this request's resource table and its outage mark.
    pub(crate) fn new(
        backend: &'a Arc<dyn Backend>,
        table: &'a mut ResourceTable,
        outage: &'a StoreOutage,
    ) -> Self {
        Self {
            backend,
            table,
            outage,
        }
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
                if error.is::<Unavailable>() {
                    self.outage.record();
                }
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
pub(crate) fn add_to_linker<T: Send + 'static>(
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
