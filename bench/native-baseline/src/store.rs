//! The tasks in memory: the core's [`Store`] over a map behind a read-write lock, shared by
//! every request of the process and gone when it exits, as the seed's module-level list is.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use task_api_core::store::{KeyPage, Store, StoreError};

/// See the module docs. Reads share the lock, so listings do not queue behind one another.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    entries: RwLock<BTreeMap<String, Vec<u8>>>,
}

// Every write is one insert or remove, so a panic while the lock was held cannot have left
// the map half-written: both guards ignore poisoning.
impl MemoryStore {
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write().remove(key);
        Ok(())
    }

    /// Atomic because the read and the write happen under one write lock.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
        let mut entries = self.write();
        let current = match entries.get(key) {
            Some(value) => std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| StoreError(format!("{key:?} holds no counter")))?,
            None => 0,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| StoreError(format!("{key:?} overflowed")))?;
        entries.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    /// The keys from `cursor` on, all on one page: they are in memory already, so paging
    /// would only add round trips.
    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, StoreError> {
        let start = cursor.map_or(0, |cursor| usize::try_from(cursor).unwrap_or(usize::MAX));
        let keys = self.read().keys().skip(start).cloned().collect();
        Ok(KeyPage { keys, cursor: None })
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let entries = self.read();
        Ok(keys.iter().map(|key| entries.get(key).cloned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_counts_from_one() {
        let store = MemoryStore::default();
        assert_eq!(store.increment("n", 1), Ok(1));
        assert_eq!(store.increment("n", 2), Ok(3));
        assert_eq!(store.get("n"), Ok(Some(b"3".to_vec())));
    }

    #[test]
    fn a_value_that_is_no_counter_is_an_error_not_a_reset() {
        let store = MemoryStore::default();
        assert_eq!(store.set("n", b"x"), Ok(()));
        assert!(store.increment("n", 1).is_err());
        assert_eq!(store.set("n", u64::MAX.to_string().as_bytes()), Ok(()));
        assert!(store.increment("n", 1).is_err());
    }

    #[test]
    fn every_key_is_listed_on_one_page_from_the_cursor() {
        let store = MemoryStore::default();
        for key in ["a", "b", "c"] {
            assert_eq!(store.set(key, b""), Ok(()));
        }
        let page = |cursor| store.list_keys(cursor).map(|page| (page.keys, page.cursor));
        assert_eq!(
            page(None),
            Ok((vec!["a".into(), "b".into(), "c".into()], None))
        );
        assert_eq!(page(Some(2)), Ok((vec!["c".into()], None)));
    }

    #[test]
    fn values_come_back_in_the_order_asked() {
        let store = MemoryStore::default();
        assert_eq!(store.set("a", b"1"), Ok(()));
        assert_eq!(store.set("b", b"2"), Ok(()));
        assert_eq!(store.delete("a"), Ok(()));
        let keys = ["b".to_owned(), "a".to_owned()];
        assert_eq!(store.get_many(&keys), Ok(vec![Some(b"2".to_vec()), None]));
    }
}
