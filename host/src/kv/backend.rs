//! What a store does, knowing nothing of WIT: the [`Backend`] trait every backend
//! implements, the page a listing returns, and the helpers the backends share.

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;

use super::write::{Pending, Write};

/// Most keys one `list-keys` call returns; the cursor continues from there.
pub(crate) const LIST_PAGE_SIZE: usize = 1000;

/// One page of a backend's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPage {
    /// At most [`LIST_PAGE_SIZE`] keys.
    pub(crate) keys: Vec<String>,
    /// Where the listing continues, `None` after the last page. Opaque to everyone but the
    /// backend that made it, which gets it back, for the same bucket, as the `cursor` of
    /// [`Backend::list_keys`].
    pub(crate) cursor: Option<String>,
}

/// Told the number of writes in each batch a backend commits together (see `redb`).
pub(crate) type BatchObserver = Box<dyn Fn(usize) + Send + 'static>;

/// What a backend stores: byte values under string keys, in named buckets (`""` is the
/// default one). Every method is one atomic, durable step for its backend.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes `value` under `key`; it is durable when this returns.
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()>;
    /// Removes `key`, if present.
    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()>;
    /// Whether `key` is present.
    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool>;
    /// A page of the bucket's keys: the first with `cursor` `None`, otherwise the one after
    /// the page that returned `cursor`. A call costs about one page wherever the cursor is:
    /// a listing continues from its cursor and never skips again from the start.
    ///
    /// The cursor is the backend's own string. The memory and redb stores list in key order
    /// and use the page's last key, continuing right after it, so a page is right even if
    /// keys before it were deleted meanwhile; a Redis store would use `SCAN`'s cursor, in
    /// decimal. The host hands a backend back only cursors it returned for that bucket, never
    /// the guest's numbers ([`super::cursor::Cursors`] maps one to the other).
    fn list_keys(&self, bucket: &str, cursor: Option<&str>) -> anyhow::Result<KeyPage>;
    /// Adds `delta` to the decimal counter under `key` (missing is 0), atomically.
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64>;
    /// The values of `keys`, in order.
    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>>;
    /// Writes every pair, in one step.
    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()>;
    /// Removes every key, in one step.
    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()>;

    /// Applies `write` to `bucket` like the blocking method of the same name, but holds no
    /// thread while it waits: it resolves once the write is durable (see [`Pending`]).
    ///
    /// By default the blocking method runs on tokio's blocking pool. A backend whose writes
    /// are committed by a writer of its own (redb) queues the write to it instead, so that a
    /// caller waiting for a commit costs a parked future rather than a parked thread.
    fn write(self: Arc<Self>, bucket: String, write: Write) -> Pending {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || self.apply(&bucket, &write))
                .await
                .context("the key-value task failed")?
        })
    }

    /// Applies `write` to `bucket` with the blocking methods; resolves as [`Pending`] does.
    fn apply(&self, bucket: &str, write: &Write) -> anyhow::Result<u64> {
        match write {
            Write::Set { key, value } => self.set(bucket, key, value).map(|()| 0),
            Write::Delete { key } => self.delete(bucket, key).map(|()| 0),
            Write::Increment { key, delta } => self.increment(bucket, key, *delta),
            Write::SetMany(entries) => self.set_many(bucket, entries).map(|()| 0),
            Write::DeleteMany(keys) => self.delete_many(bucket, keys).map(|()| 0),
        }
    }
}

/// A page of a backend that lists in key order, from up to [`LIST_PAGE_SIZE`]` + 1` keys
/// read in order from where the listing continues: a key past the page says that another
/// page follows, and the page's last key is its cursor, since the next page starts after it.
pub(super) fn ordered_page(mut keys: Vec<String>) -> KeyPage {
    let more = keys.len() > LIST_PAGE_SIZE;
    keys.truncate(LIST_PAGE_SIZE);
    let cursor = more.then(|| keys.last().cloned()).flatten();
    KeyPage { keys, cursor }
}

/// The context a backend puts on an error that says nothing about the request: the store
/// could not be reached, or did not answer within its timeout. The guest still gets the
/// error (as `error.other`), and the request is answered 503 (see [`super::wit::StoreOutage`]).
#[derive(Debug)]
pub(crate) struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the store is unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// Reads a counter the way wasmtime's own keyvalue provider writes it: a decimal string.
pub(super) fn add_to_counter(current: Option<&[u8]>, key: &str, delta: u64) -> anyhow::Result<u64> {
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
