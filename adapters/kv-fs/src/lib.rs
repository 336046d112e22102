//! # kv-fs
//!
//! A component that exports `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` and keeps the
//! data in the first preopened directory, through `wasi:filesystem` alone. Composed with a
//! component that imports `wasi:keyvalue` (`cargo xtask build` makes
//! `task_api_standalone.wasm` this way), it gives stock `wasmtime serve -S cli --dir` a store
//! that persists across requests and restarts, and stays correct when requests run in
//! parallel instances.
//!
//! - [`name`]: keys and buckets as safe, collision-free file names.
//! - [`bucket`]: one bucket as a directory: atomic writes, its keys, locked `increment`.
//! - [`listing`]: `list-keys`, one walk of the bucket per listing, paged from a snapshot.
//! - this file: the WIT exports, mapping I/O errors to `error.other`.
//!
//! The file layout is documented on the `kv-fs` world in `wit/kv-fs.wit`.

mod bindings;
mod bucket;
mod listing;
mod name;

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;

use bindings::exports::wasi::keyvalue::{atomics, batch, store};
use bindings::wasi::filesystem::preopens;
use bucket::DirBucket;
use listing::Listing;

/// The exported interfaces.
struct KvFs;

// Exported here, beside the type, so that bindings.rs imports nothing from this file. The
// export functions it generates are unsafe, as every FFI export is: the block confines the
// lint's exception to them.
#[expect(unsafe_code, reason = "generated exports")]
const _: () = {
    bindings::export!(KvFs with_types_in bindings);
};

/// The guest-side bucket resource (the generated `Bucket` is the handle that wraps it).
struct FsBucket {
    bucket: DirBucket,
    /// The listing the guest is paging through, if any.
    listing: RefCell<Option<Listing>>,
}

fn other(error: io::Error) -> store::Error {
    store::Error::Other(error.to_string())
}

/// The first preopened directory: where every bucket lives.
fn root() -> Result<PathBuf, store::Error> {
    preopens::get_directories()
        .into_iter()
        .next()
        .map(|(_, path)| PathBuf::from(path))
        .ok_or(store::Error::NoSuchStore)
}

impl store::Guest for KvFs {
    type Bucket = FsBucket;

    fn open(identifier: String) -> Result<store::Bucket, store::Error> {
        let bucket = DirBucket::open(&root()?, &identifier).map_err(other)?;
        Ok(store::Bucket::new(FsBucket {
            bucket,
            listing: RefCell::default(),
        }))
    }
}

impl store::GuestBucket for FsBucket {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, store::Error> {
        self.bucket.get(&key).map_err(other)
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), store::Error> {
        self.bucket.set(&key, &value).map_err(other)
    }

    fn delete(&self, key: String) -> Result<(), store::Error> {
        self.bucket.delete(&key).map_err(other)
    }

    fn exists(&self, key: String) -> Result<bool, store::Error> {
        self.bucket.exists(&key).map_err(other)
    }

    /// No cursor starts a listing (one walk of the bucket); a cursor continues the one in
    /// progress, and is an error if none is, or if it is not a position in it.
    fn list_keys(&self, cursor: Option<u64>) -> Result<store::KeyResponse, store::Error> {
        let mut listing = self.listing.borrow_mut();
        if cursor.is_none() {
            *listing = Some(Listing::new(self.bucket.keys().map_err(other)?));
        }
        let at = cursor.unwrap_or(0);
        let (keys, cursor) = listing
            .as_ref()
            .and_then(|listing| listing.page(at))
            .ok_or_else(|| {
                store::Error::Other(format!(
                    "unknown cursor {at}: not a place in a listing of this bucket handle"
                ))
            })?;
        if cursor.is_none() {
            // The last page: nothing will continue from here, so let the keys go.
            *listing = None;
        }
        Ok(store::KeyResponse { keys, cursor })
    }
}

impl atomics::Guest for KvFs {
    fn increment(
        bucket: store::BucketBorrow<'_>,
        key: String,
        delta: u64,
    ) -> Result<u64, store::Error> {
        bucket
            .get::<FsBucket>()
            .bucket
            .increment(&key, delta)
            .map_err(other)
    }
}

impl batch::Guest for KvFs {
    fn get_many(
        bucket: store::BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, store::Error> {
        let bucket = &bucket.get::<FsBucket>().bucket;
        keys.into_iter()
            .map(|key| Ok(bucket.get(&key).map_err(other)?.map(|value| (key, value))))
            .collect()
    }

    fn set_many(
        bucket: store::BucketBorrow<'_>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let bucket = &bucket.get::<FsBucket>().bucket;
        key_values
            .iter()
            .try_for_each(|(key, value)| bucket.set(key, value).map_err(other))
    }

    fn delete_many(bucket: store::BucketBorrow<'_>, keys: Vec<String>) -> Result<(), store::Error> {
        let bucket = &bucket.get::<FsBucket>().bucket;
        keys.iter()
            .try_for_each(|key| bucket.delete(key).map_err(other))
    }
}
