//! `--store redb:PATH`: durable, embedded, one file.
//!
//! Reads are redb read transactions: they see the last commit and never wait for a writer.
//! Writes go to the store's one [`writer`], which commits everything waiting in one
//! transaction with immediate durability (one fsync for the whole batch) and answers each
//! caller only once its write is on disk. [`Backend::write`] awaits that answer without
//! holding a thread; the blocking methods block theirs. So anything a client got a 2xx for survives
//! `kill -9` and power loss, and a request that reads after writing sees its write.

mod reopen;
mod table;
mod writer;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use redb::{Database, ReadableDatabase};

use self::reopen::{Opener, Reopenable};
use self::table::ENTRIES;
use self::writer::Writer;
use super::backend::{Backend, BatchObserver, KeyPage, LIST_PAGE_SIZE, ordered_page};
use super::write::{Pending, Write};

/// See the module docs.
pub(crate) struct RedbBackend {
    db: Arc<Reopenable>,
    writer: Writer,
}

impl RedbBackend {
    /// Opens the store at `path`, creating it and its parent directories if needed.
    pub(crate) fn open(path: &Path, on_batch: BatchObserver) -> anyhow::Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("cannot create the store directory {}", parent.display())
            })?;
        }
        let path = path.to_owned();
        let shown = path.display().to_string();
        let open = move || {
            Database::create(&path).map_err(|error| match error {
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                    anyhow::anyhow!("cannot open the store {}: {io}", path.display())
                }
                other => anyhow::anyhow!(
                    "cannot open the store {}: {other} (is it a redb file?)",
                    path.display()
                ),
            })
        };
        Self::new(Box::new(open), on_batch)
            .with_context(|| format!("cannot write to the store {shown}"))
    }

    /// Serves the database `open` opens, and starts its writer.
    fn new(open: Opener, on_batch: BatchObserver) -> anyhow::Result<Self> {
        let db = Reopenable::new(open)?;
        // Create the table up front so that readers never meet a missing table.
        let txn = db.get()?.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.commit()?;
        let db = Arc::new(db);
        let writer = Writer::start(Arc::clone(&db), on_batch)?;
        Ok(Self { db, writer })
    }

    fn read<R>(
        &self,
        op: impl FnOnce(&redb::ReadOnlyTable<(&str, &str), &[u8]>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let txn = self.db.get()?.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        op(&table)
    }
}

impl Backend for RedbBackend {
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.read(|table| {
            Ok(table
                .get((bucket, key))?
                .map(|value| value.value().to_vec()))
        })
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let write = Write::Set {
            key: key.to_owned(),
            value: value.to_vec(),
        };
        self.writer.submit(bucket, write).map(drop)
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let write = Write::Delete {
            key: key.to_owned(),
        };
        self.writer.submit(bucket, write).map(drop)
    }

    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool> {
        self.read(|table| Ok(table.get((bucket, key))?.is_some()))
    }

    fn list_keys(&self, bucket: &str, cursor: Option<&str>) -> anyhow::Result<KeyPage> {
        // The cursor is the last key of the previous page: continue right after it.
        let start = cursor.map_or(Bound::Included((bucket, "")), |after| {
            Bound::Excluded((bucket, after))
        });
        self.read(|table| {
            let mut keys = Vec::new();
            for entry in table
                .range::<(&str, &str)>((start, Bound::Unbounded))?
                .take(LIST_PAGE_SIZE + 1)
            {
                let (stored, _) = entry?;
                let (stored_bucket, key) = stored.value();
                if stored_bucket != bucket {
                    break;
                }
                keys.push(key.to_owned());
            }
            Ok(ordered_page(keys))
        })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64> {
        let write = Write::Increment {
            key: key.to_owned(),
            delta,
        };
        self.writer.submit(bucket, write)
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        self.read(|table| {
            keys.iter()
                .map(|key| {
                    Ok(table
                        .get((bucket, key.as_str()))?
                        .map(|value| value.value().to_vec()))
                })
                .collect()
        })
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        self.writer
            .submit(bucket, Write::SetMany(entries.to_vec()))
            .map(drop)
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        self.writer
            .submit(bucket, Write::DeleteMany(keys.to_vec()))
            .map(drop)
    }

    fn write(self: Arc<Self>, bucket: String, write: Write) -> Pending {
        self.writer.queue(bucket, write)
    }
}

#[cfg(test)]
mod tests;
