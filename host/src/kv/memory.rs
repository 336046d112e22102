//! `--store memory`: a map behind a mutex. Shared by every request of the process, gone when
//! it exits.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{Backend, LIST_PAGE_SIZE, add_to_counter};

/// See the module docs. Keys sort by (bucket, key), so a bucket is one contiguous range.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    entries: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryBackend {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-written entry (every update is
        // one insert or remove), so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn entry(bucket: &str, key: &str) -> (String, String) {
    (bucket.to_owned(), key.to_owned())
}

impl Backend for MemoryBackend {
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.lock().get(&entry(bucket, key)).cloned())
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.lock().insert(entry(bucket, key), value.to_vec());
        Ok(())
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.lock().remove(&entry(bucket, key));
        Ok(())
    }

    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool> {
        Ok(self.lock().contains_key(&entry(bucket, key)))
    }

    fn list_keys(&self, bucket: &str, offset: u64) -> anyhow::Result<(Vec<String>, Option<u64>)> {
        let entries = self.lock();
        let in_bucket = entries
            .range(entry(bucket, "")..)
            .take_while(|((b, _), _)| b == bucket);
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut keys: Vec<String> = in_bucket
            .skip(skip)
            .take(LIST_PAGE_SIZE + 1)
            .map(|((_, k), _)| k.clone())
            .collect();
        let next = (keys.len() > LIST_PAGE_SIZE).then(|| offset + LIST_PAGE_SIZE as u64);
        keys.truncate(LIST_PAGE_SIZE);
        Ok((keys, next))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64> {
        let mut entries = self.lock();
        let slot = entry(bucket, key);
        let next = add_to_counter(entries.get(&slot).map(Vec::as_slice), key, delta)?;
        entries.insert(slot, next.to_string().into_bytes());
        Ok(next)
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let entries = self.lock();
        Ok(keys
            .iter()
            .map(|key| entries.get(&entry(bucket, key)).cloned())
            .collect())
    }

    fn set_many(&self, bucket: &str, pairs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        let mut entries = self.lock();
        for (key, value) in pairs {
            entries.insert(entry(bucket, key), value.clone());
        }
        Ok(())
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        let mut entries = self.lock();
        for key in keys {
            entries.remove(&entry(bucket, key));
        }
        Ok(())
    }
}
