//! The WIT side of the key-value host: the generated bindings, the guest's bucket handles,
//! and the `Host` traits implemented on [`KvView`] by translating to a [`Backend`]; the
//! request's `list-keys` cursors are mapped to the backend's by [`Cursors`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use super::backend::{Backend, Unavailable};
use super::cursor::{Cursors, MAX_LIVE};
use super::write::Write;

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
    cursors: &'a mut Cursors,
    outage: &'a StoreOutage,
}

impl<'a> KvView<'a> {
    /// A view over the shared backend and this request's resource table, cursors and outage
    /// mark.
    pub(crate) fn new(
        backend: &'a Arc<dyn Backend>,
        table: &'a mut ResourceTable,
        cursors: &'a mut Cursors,
        outage: &'a StoreOutage,
    ) -> Self {
        Self {
            backend,
            table,
            cursors,
            outage,
        }
    }

    /// The name of the bucket behind `bucket`.
    fn name(&self, bucket: &Resource<Bucket>) -> Result<String, KvError> {
        Ok(self.table.get(bucket)?.name.clone())
    }

    /// Runs `op` against the backend on the blocking pool, for the bucket behind `bucket`.
    async fn run<R: Send + 'static>(
        &mut self,
        bucket: &Resource<Bucket>,
        op: impl FnOnce(&dyn Backend, &str) -> anyhow::Result<R> + Send + 'static,
    ) -> Result<R, KvError> {
        let name = self.name(bucket)?;
        let backend = Arc::clone(self.backend);
        match tokio::task::spawn_blocking(move || op(backend.as_ref(), &name)).await {
            Ok(result) => result.map_err(|error| self.store_error(error)),
            Err(join) => Err(KvError::Trap(wasmtime::format_err!(
                "key-value task failed: {join}"
            ))),
        }
    }

    /// Applies `write` to the bucket behind `bucket` and awaits its commit, without holding
    /// a thread for it where the backend can ([`Backend::write`]).
    async fn write(&mut self, bucket: &Resource<Bucket>, write: Write) -> Result<u64, KvError> {
        let name = self.name(bucket)?;
        Arc::clone(self.backend)
            .write(name, write)
            .await
            .map_err(|error| self.store_error(error))
    }

    /// A backend's failure, for the guest: `error.other` with the whole message, also
    /// logged. One that says the store is unreachable also marks the request for a 503.
    fn store_error(&self, error: anyhow::Error) -> KvError {
        tracing::warn!("key-value store: {error:#}");
        if error.is::<Unavailable>() {
            self.outage.record();
        }
        KvError::Other(format!("{error:#}"))
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
        self.write(&bucket, Write::Set { key, value }).await?;
        Ok(())
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
        self.write(&bucket, Write::Delete { key }).await?;
        Ok(())
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
        let name = self.name(&bucket)?;
        // The cursor is guest-controlled: only one handed to this request for this bucket
        // stands for a place in a listing.
        let resumed = cursor
            .map(|number| {
                let unknown = || {
                    KvError::Other(format!(
                        "unknown cursor {number}: a cursor is valid only in the request and for \
                         the bucket it was handed to, and only among the {MAX_LIVE} most recent"
                    ))
                };
                let resumed = self.cursors.resolve(&name, number).ok_or_else(unknown)?;
                Ok::<_, KvError>(resumed.to_owned())
            })
            .transpose()?;
        let page = self
            .run(&bucket, move |backend, name| {
                backend.list_keys(name, resumed.as_deref())
            })
            .await?;
        let cursor = page
            .cursor
            .map(|continued| self.cursors.issue(&name, continued));
        Ok(store::KeyResponse {
            keys: page.keys,
            cursor,
        })
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
        self.write(&bucket, Write::Increment { key, delta }).await
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
        self.write(&bucket, Write::SetMany(entries)).await?;
        Ok(())
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        self.write(&bucket, Write::DeleteMany(keys)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::LIST_PAGE_SIZE;
    use super::super::memory::MemoryBackend;
    use super::*;
    use store::{Host as _, HostBucket as _};

    /// Another handle on the bucket behind `bucket`.
    fn handle(bucket: &Resource<Bucket>) -> Resource<Bucket> {
        Resource::new_borrow(bucket.rep())
    }

    /// The value, or a panic naming the error.
    #[track_caller]
    fn ok<T>(result: Result<T, KvError>) -> T {
        result.unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// The WIT `error.other` message, or a panic naming what came instead.
    #[track_caller]
    fn other_error(result: Result<store::KeyResponse, KvError>) -> String {
        match result {
            Err(KvError::Other(message)) => message,
            Err(KvError::Trap(trap)) => panic!("a trap: {trap:#}"),
            Ok(page) => panic!("a page of {} keys", page.keys.len()),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_listing_follows_the_cursors_the_request_was_handed_and_no_others()
    -> anyhow::Result<()> {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::default());
        let keys: Vec<(String, Vec<u8>)> = (0..=LIST_PAGE_SIZE)
            .map(|i| (format!("k{i:05}"), vec![]))
            .collect();
        backend.set_many("", &keys)?;
        backend.set("other", "k", b"")?;
        let (mut table, mut cursors) = (ResourceTable::new(), Cursors::default());
        let outage = StoreOutage::default();
        let mut view = KvView::new(&backend, &mut table, &mut cursors, &outage);
        let bucket = ok(view.open(String::new()).await);
        let other = ok(view.open("other".to_owned()).await);

        let first = ok(view.list_keys(handle(&bucket), None).await);
        assert_eq!(first.keys.len(), LIST_PAGE_SIZE);
        let cursor = first.cursor.expect("a second page");
        let second = ok(view.list_keys(handle(&bucket), Some(cursor)).await);
        assert_eq!(second.keys, [format!("k{LIST_PAGE_SIZE:05}")]);
        assert_eq!(second.cursor, None);

        // Cursors are guest-controlled: forged or misplaced ones are errors, not traps.
        let forged = other_error(view.list_keys(handle(&bucket), Some(cursor + 1)).await);
        assert!(forged.contains("unknown cursor"), "{forged}");
        let misplaced = other_error(view.list_keys(other, Some(cursor)).await);
        assert!(misplaced.contains("unknown cursor"), "{misplaced}");
        Ok(())
    }
}
