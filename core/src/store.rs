//! The key-value store the API persists to, as a small trait shaped after one
//! `wasi:keyvalue` bucket, which each binding implements over its own storage; and, for
//! native tests, an in-memory one.

/// A failed store operation, with the store's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// One page of `list_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys on this page, in no particular order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<u64>,
}

/// The operations of one `wasi:keyvalue` bucket that the API uses. How the tasks are laid out
/// in it is [`crate::repository`]'s.
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes `value` under `key`, replacing any previous value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter under `key` (missing counts as 0) and returns
    /// the new value, even when many instances increment at once.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError>;
    /// One page of keys, starting at `cursor`.
    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, StoreError>;
    /// The values of `keys`, `None` for each missing one, in the order asked.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
}

/// A `BTreeMap`-backed store for native tests, with small pages so paging is exercised, a
/// switch that makes every call fail, and one that pages as Redis's `SCAN` may.
#[cfg(test)]
pub(crate) mod memory {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    use super::{KeyPage, Store, StoreError};

    /// See the module docs.
    #[derive(Default)]
    pub(crate) struct MemoryStore {
        entries: RefCell<BTreeMap<String, Vec<u8>>>,
        failing: Cell<bool>,
        scanning: Cell<bool>,
    }

    /// Keys per `list_keys` page: small, so that listing a handful of tasks spans pages.
    const PAGE_SIZE: usize = 2;

    impl MemoryStore {
        /// From now on every operation fails, as a broken disk would.
        pub(crate) fn fail(&self) {
            self.failing.set(true);
        }

        /// From now on `list_keys` pages as `SCAN` may: in no key order (here, backwards),
        /// and with a key of the previous page again on the next.
        pub(crate) fn list_like_scan(&self) {
            self.scanning.set(true);
        }

        /// Reads a raw entry, bypassing the API.
        pub(crate) fn raw(&self, key: &str) -> Option<Vec<u8>> {
            self.entries.borrow().get(key).cloned()
        }

        /// Writes a raw entry, bypassing the API.
        pub(crate) fn put_raw(&self, key: &str, value: &[u8]) {
            self.entries
                .borrow_mut()
                .insert(key.to_owned(), value.to_vec());
        }

        fn check(&self) -> Result<(), StoreError> {
            match self.failing.get() {
                true => Err(StoreError("disk on fire".to_owned())),
                false => Ok(()),
            }
        }
    }

    impl Store for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.check()?;
            Ok(self.raw(key))
        }

        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.check()?;
            self.put_raw(key, value);
            Ok(())
        }

        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.check()?;
            self.entries.borrow_mut().remove(key);
            Ok(())
        }

        fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
            self.check()?;
            let current = match self.raw(key) {
                Some(bytes) => String::from_utf8_lossy(&bytes)
                    .parse::<u64>()
                    .map_err(|error| StoreError(error.to_string()))?,
                None => 0,
            };
            let next = current + delta;
            self.put_raw(key, next.to_string().as_bytes());
            Ok(next)
        }

        fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, StoreError> {
            self.check()?;
            let start = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
            let entries = self.entries.borrow();
            let mut all: Vec<&String> = entries.keys().collect();
            let repeat = match self.scanning.get() {
                true => {
                    all.reverse();
                    start.min(1)
                }
                false => 0,
            };
            let keys: Vec<String> = all
                .iter()
                .skip(start.saturating_sub(repeat))
                .take(PAGE_SIZE + repeat)
                .map(|key| (*key).clone())
                .collect();
            let end = (start + PAGE_SIZE).min(all.len());
            let cursor = (end < all.len()).then_some(end as u64);
            Ok(KeyPage { keys, cursor })
        }

        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
            self.check()?;
            Ok(keys.iter().map(|key| self.raw(key)).collect())
        }
    }
}
