//! The API's [`Store`] over the host's `wasi:keyvalue`: the default bucket, opened on first
//! use.

use std::cell::OnceCell;

use task_api_core::store::{KeyPage, Store, StoreError};

use crate::bindings::wasi::keyvalue::{atomics, batch, store};

/// The default `wasi:keyvalue` bucket (identifier `""`), opened on first use so that routes
/// which never touch state (`/`, `/health`) work even where no store is available.
#[derive(Default)]
pub(crate) struct KeyValueStore {
    bucket: OnceCell<store::Bucket>,
}

impl KeyValueStore {
    fn bucket(&self) -> Result<&store::Bucket, StoreError> {
        if let Some(bucket) = self.bucket.get() {
            return Ok(bucket);
        }
        let bucket = store::open("").map_err(StoreError::from)?;
        Ok(self.bucket.get_or_init(|| bucket))
    }
}

impl From<store::Error> for StoreError {
    fn from(error: store::Error) -> Self {
        Self(match error {
            store::Error::NoSuchStore => "no such store".to_owned(),
            store::Error::AccessDenied => "access denied".to_owned(),
            store::Error::Other(message) => message,
        })
    }
}

impl Store for KeyValueStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.bucket()?.get(key)?)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        Ok(self.bucket()?.set(key, value)?)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        Ok(self.bucket()?.delete(key)?)
    }

    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
        Ok(atomics::increment(self.bucket()?, key, delta)?)
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, StoreError> {
        let page = self.bucket()?.list_keys(cursor)?;
        Ok(KeyPage {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let found = batch::get_many(self.bucket()?, keys)?;
        Ok(found
            .into_iter()
            .map(|entry| entry.map(|(_, value)| value))
            .collect())
    }
}
