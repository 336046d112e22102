//! How tasks are laid out in the key-value bucket.
//!
//! | key                   | value                                             |
//! |-----------------------|---------------------------------------------------|
//! | `next-task-id`        | the last id handed out, a decimal string, owned by `increment` |
//! | `task/{id:020}`       | one [`Task`] as JSON                               |
//!
//! Ids come from `atomics.increment`, so they stay unique across concurrent instances and
//! are never reused after a delete. The zero padding makes the keys of a store that lists in
//! key order come back in id order; the listing sorts anyway, since `list-keys` promises no
//! order.

use crate::error::ApiError;
use crate::store::Store;
use crate::task::Task;

/// The counter behind task ids.
pub(crate) const NEXT_ID_KEY: &str = "next-task-id";
const TASK_PREFIX: &str = "task/";
/// Keys fetched per `get-many` call while listing.
const BATCH_SIZE: usize = 100;
/// A host that keeps answering with a cursor is cut off after this many pages, rather than
/// looping forever on a buggy cursor.
const MAX_PAGES: usize = 1 << 20;

/// Typed access to the tasks in a [`Store`].
pub(crate) struct Tasks<'s, S> {
    store: &'s S,
}

/// The key a task is stored under.
pub(crate) fn task_key(id: u64) -> String {
    format!("{TASK_PREFIX}{id:020}")
}

impl<'s, S: Store> Tasks<'s, S> {
    /// Wraps a store.
    pub(crate) fn new(store: &'s S) -> Self {
        Self { store }
    }

    /// Hands out the next id: 1, 2, 3, … never the same twice.
    pub(crate) fn next_id(&self) -> Result<u64, ApiError> {
        Ok(self.store.increment(NEXT_ID_KEY, 1)?)
    }

    /// The task with `id`, if it exists.
    pub(crate) fn get(&self, id: u64) -> Result<Option<Task>, ApiError> {
        let key = task_key(id);
        self.store
            .get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// Creates or replaces a task.
    pub(crate) fn put(&self, task: &Task) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(task)
            .map_err(|error| ApiError::Internal(format!("encoding task {}: {error}", task.id)))?;
        Ok(self.store.set(&task_key(task.id), &bytes)?)
    }

    /// Deletes the task with `id`.
    pub(crate) fn remove(&self, id: u64) -> Result<(), ApiError> {
        Ok(self.store.delete(&task_key(id))?)
    }

    /// Every task, ordered by id.
    pub(crate) fn all(&self) -> Result<Vec<Task>, ApiError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let page = self.store.list_keys(cursor)?;
            keys.extend(
                page.keys
                    .into_iter()
                    .filter(|key| key.starts_with(TASK_PREFIX)),
            );
            match page.cursor {
                Some(next) if Some(next) != cursor => cursor = Some(next),
                _ => break,
            }
        }
        let mut tasks = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_SIZE) {
            let values = self.store.get_many(chunk)?;
            for (key, value) in chunk.iter().zip(values) {
                // A key listed a moment ago may have been deleted since: skip it.
                if let Some(bytes) = value {
                    tasks.push(decode(key, &bytes)?);
                }
            }
        }
        tasks.sort_by_key(|task| task.id);
        Ok(tasks)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<Task, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::Internal(format!("stored value under {key:?} is not a task: {error}"))
    })
}
