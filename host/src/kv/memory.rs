//! `--store memory`: maps behind a read-write lock. Shared by every request of the process,
//! gone when it exits.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::backend::{Backend, KeyPage, LIST_PAGE_SIZE, add_to_counter, ordered_page};

/// One bucket: keys in order, so a listing continues after the last key it returned.
type Keys = BTreeMap<String, Vec<u8>>;
/// Every bucket by name. Nested rather than keyed by `(bucket, key)` so that lookups borrow
/// the guest's `&str`s: `GET /tasks` reads a hundred keys, and a listing should not cost two
/// allocations per key.
type Buckets = HashMap<String, Keys>;

/// See the module docs. Reads share the lock, so listings do not queue behind one another.
#[derive(Debug, Default)]
pub(crate) struct MemoryBackend {
    buckets: RwLock<Buckets>,
}

// A panic while holding the lock cannot leave a half-written entry (every update is one
// insert or remove), so a poisoned map is still consistent and both guards ignore poisoning.
impl MemoryBackend {
    fn read(&self) -> RwLockReadGuard<'_, Buckets> {
        self.buckets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Buckets> {
        self.buckets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the bucket, with a bucket never written to reading as empty.
    fn read_bucket<R>(&self, bucket: &str, f: impl FnOnce(&Keys) -> R) -> R {
        let buckets = self.read();
        match buckets.get(bucket) {
            Some(keys) => f(keys),
            None => f(&Keys::new()),
        }
    }

    /// Runs `f` on the bucket, creating it on first write. Deletes never create one: they go
    /// through [`Self::remove`].
    fn write_bucket<R>(&self, bucket: &str, f: impl FnOnce(&mut Keys) -> R) -> R {
        let mut buckets = self.write();
        match buckets.get_mut(bucket) {
            Some(keys) => f(keys),
            None => f(buckets.entry(bucket.to_owned()).or_default()),
        }
    }

    /// Removes `doomed` from the bucket; a bucket never written to has nothing to remove.
    fn remove<'k>(&self, bucket: &str, doomed: impl IntoIterator<Item = &'k str>) {
        if let Some(keys) = self.write().get_mut(bucket) {
            for key in doomed {
                keys.remove(key);
            }
        }
    }
}

impl Backend for MemoryBackend {
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.read_bucket(bucket, |keys| keys.get(key).cloned()))
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.write_bucket(bucket, |keys| keys.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.remove(bucket, [key]);
        Ok(())
    }

    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool> {
        Ok(self.read_bucket(bucket, |keys| keys.contains_key(key)))
    }

    fn list_keys(&self, bucket: &str, cursor: Option<&str>) -> anyhow::Result<KeyPage> {
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let keys: Vec<String> = self.read_bucket(bucket, |keys| {
            keys.range::<str, _>((start, Bound::Unbounded))
                .take(LIST_PAGE_SIZE + 1)
                .map(|(key, _)| key.clone())
                .collect()
        });
        Ok(ordered_page(keys))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64> {
        self.write_bucket(bucket, |keys| {
            let next = add_to_counter(keys.get(key).map(Vec::as_slice), key, delta)?;
            keys.insert(key.to_owned(), next.to_string().into_bytes());
            Ok(next)
        })
    }

    fn get_many(&self, bucket: &str, wanted: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        Ok(self.read_bucket(bucket, |keys| {
            wanted
                .iter()
                .map(|key| keys.get(key.as_str()).cloned())
                .collect()
        }))
    }

    fn set_many(&self, bucket: &str, pairs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        self.write_bucket(bucket, |keys| {
            for (key, value) in pairs {
                keys.insert(key.clone(), value.clone());
            }
        });
        Ok(())
    }

    fn delete_many(&self, bucket: &str, doomed: &[String]) -> anyhow::Result<()> {
        self.remove(bucket, doomed.iter().map(String::as_str));
        Ok(())
    }
}
