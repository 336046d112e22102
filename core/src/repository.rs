//! How tasks are laid out in the key-value store: the one description of the API's state,
//! whichever binding's [`Store`] holds it.
//!
//! | key             | value                                                                   |
//! |-----------------|-------------------------------------------------------------------------|
//! | `next-task-id`  | the last id handed out, a decimal string, advanced only by [`Store::increment`] |
//! | `task/{id:020}` | one task as JSON, e.g. under `task/00000000000000000007`                |
//!
//! Ids come from `increment` (`atomics.increment` in `wasi:keyvalue`), so they start at 1,
//! stay unique across concurrent instances, and are never reused after a delete. Updates are
//! read-modify-write: two concurrent updates of one task keep the later write.
//!
//! A listing is in id order, each task once. `list-keys` promises neither: Redis's `SCAN`
//! pages in hash order and may return a key twice while its table resizes. So a listing
//! first walks every page for the task ids alone (8 bytes a task), sorts and deduplicates
//! them, then streams the tasks a batch at a time: guest memory bounds the ids and one
//! batch, not the tasks' JSON.

use std::io::Write;

use task_api_limits::DEFAULT_MAX_MEMORY;

use crate::error::ApiError;
use crate::store::Store;
use crate::task::Task;

/// The counter behind task ids.
pub(crate) const NEXT_ID_KEY: &str = "next-task-id";
const TASK_PREFIX: &str = "task/";
/// Most bytes of task JSON one listing batch may hold: half of a guest's memory under
/// task-host's default cap, leaving the other half for the ids and the rest of the request.
const BATCH_BYTES: usize = DEFAULT_MAX_MEMORY / 2;
/// A host that keeps answering with a cursor is cut off after this many pages, rather than
/// looping forever on a buggy cursor.
const MAX_PAGES: usize = 1 << 20;

/// Typed access to the tasks in a [`Store`].
pub(crate) struct Tasks<'s, S> {
    store: &'s S,
    /// Keys fetched per `get-many` call while listing.
    batch_size: usize,
}

/// The key a task is stored under.
pub(crate) fn task_key(id: u64) -> String {
    format!("{TASK_PREFIX}{id:020}")
}

impl<'s, S: Store> Tasks<'s, S> {
    /// Wraps a store whose tasks are at most `max_body` bytes, the request-body limit in
    /// force: a stored task is one request body. A listing batch holds as many of the
    /// largest as fit in [`BATCH_BYTES`], and at least one.
    pub(crate) fn new(store: &'s S, max_body: usize) -> Self {
        Self {
            store,
            batch_size: (BATCH_BYTES / max_body.max(1)).max(1),
        }
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

    /// Starts a listing of every task. The ids and the first batch are fetched now, so that
    /// a store that fails at once fails the request before its head goes out.
    pub(crate) fn list(&self) -> Result<Listing<'s, S>, ApiError> {
        let mut listing = Listing {
            store: self.store,
            batch_size: self.batch_size,
            ids: self.ids()?.into_iter(),
            first: None,
        };
        listing.first = listing.next_batch()?;
        Ok(listing)
    }

    /// Every task id in the store, in order, once each.
    fn ids(&self) -> Result<Vec<u64>, ApiError> {
        let mut ids = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let page = self.store.list_keys(cursor)?;
            ids.extend(page.keys.iter().filter_map(|key| task_id(key)));
            match page.cursor {
                Some(next) if Some(next) != cursor => cursor = Some(next),
                _ => break,
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

/// The id of a task key as [`task_key`] writes it; `None` for any other key.
fn task_id(key: &str) -> Option<u64> {
    let id = key.strip_prefix(TASK_PREFIX)?.parse().ok()?;
    (task_key(id) == key).then_some(id)
}

/// Every task, a batch at a time: see the module docs.
pub(crate) struct Listing<'s, S> {
    store: &'s S,
    /// See [`Tasks::batch_size`].
    batch_size: usize,
    /// The ids not fetched yet, in order.
    ids: std::vec::IntoIter<u64>,
    /// The batch fetched by [`Tasks::list`].
    first: Option<Vec<Task>>,
}

impl<S: Store> Listing<'_, S> {
    /// Writes every task as one JSON array. A store failure midway is returned after part of
    /// the array is written: the caller must then make the answer visibly incomplete.
    pub(crate) fn write_json(mut self, out: &mut dyn Write) -> Result<(), ApiError> {
        let written =
            |error: std::io::Error| ApiError::Internal(format!("writing the list: {error}"));
        out.write_all(b"[").map_err(written)?;
        let mut separator: &[u8] = b"";
        let mut batch = self.first.take();
        while let Some(tasks) = batch {
            for task in &tasks {
                out.write_all(separator).map_err(written)?;
                serde_json::to_writer(&mut *out, task).map_err(|error| {
                    ApiError::Internal(format!("encoding task {}: {error}", task.id))
                })?;
                separator = b",";
            }
            batch = self.next_batch()?;
        }
        out.write_all(b"]").map_err(written)
    }

    /// The next non-empty batch of tasks, in id order, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Vec<Task>>, ApiError> {
        loop {
            let keys: Vec<String> = self
                .ids
                .by_ref()
                .take(self.batch_size)
                .map(task_key)
                .collect();
            if keys.is_empty() {
                return Ok(None);
            }
            let values = self.store.get_many(&keys)?;
            let mut tasks = Vec::with_capacity(keys.len());
            for (key, value) in keys.iter().zip(values) {
                // A task listed a moment ago may have been deleted since: skip it.
                if let Some(bytes) = value {
                    tasks.push(decode(key, &bytes)?);
                }
            }
            if !tasks.is_empty() {
                return Ok(Some(tasks));
            }
        }
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<Task, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::Internal(format!("stored value under {key:?} is not a task: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use task_api_limits::DEFAULT_MAX_BODY;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn batch_size(max_body: usize) -> usize {
        Tasks::new(&MemoryStore::default(), max_body).batch_size
    }

    #[test]
    fn batches_hold_as_many_of_the_largest_tasks_as_fit() {
        assert_eq!(batch_size(DEFAULT_MAX_BODY), 32);
        assert_eq!(batch_size(8 << 20), 4);
        assert_eq!(batch_size(1), BATCH_BYTES);
        // A limit of 0 admits no body at all; it must not divide by zero.
        assert_eq!(batch_size(0), BATCH_BYTES);
    }

    #[test]
    fn a_batch_holds_at_least_one_task() {
        assert_eq!(batch_size(64 << 20), 1);
        assert_eq!(batch_size(usize::MAX), 1);
    }
}
