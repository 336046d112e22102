//! `--store redb:PATH`: durable, embedded, one file. Every write is its own transaction,
//! committed with redb's default immediate durability (fsync) before the guest sees success,
//! so anything a client got a 2xx for survives `kill -9` and power loss.

use std::ops::Bound;
use std::path::Path;

use anyhow::Context as _;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Backend, KeyPage, LIST_PAGE_SIZE, add_to_counter, ordered_page};

/// All buckets share one table keyed by (bucket, key): a bucket is then a contiguous range,
/// and named buckets need no schema changes.
const ENTRIES: TableDefinition<'static, (&str, &str), &[u8]> = TableDefinition::new("entries");

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RedbBackend {
    db: Database,
}

impl RedbBackend {
    /// Opens the store at `path`, creating it and its parent directories if needed.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("cannot create the store directory {}", parent.display())
            })?;
        }
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                anyhow::anyhow!("cannot open the store {}: {io}", path.display())
            }
            other => anyhow::anyhow!(
                "cannot open the store {}: {other} (is it a redb file?)",
                path.display()
            ),
        })?;
        // Create the table up front so that readers never meet a missing table.
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.commit()
            .with_context(|| format!("cannot write to the store {}", path.display()))?;
        Ok(Self { db })
    }

    fn write<R>(
        &self,
        op: impl FnOnce(&mut redb::Table<'_, (&str, &str), &[u8]>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let txn = self.db.begin_write()?;
        let result = {
            let mut table = txn.open_table(ENTRIES)?;
            op(&mut table)?
        };
        txn.commit()?;
        Ok(result)
    }

    fn read<R>(
        &self,
        op: impl FnOnce(&redb::ReadOnlyTable<(&str, &str), &[u8]>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let txn = self.db.begin_read()?;
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
        self.write(|table| {
            table.insert((bucket, key), value)?;
            Ok(())
        })
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.write(|table| {
            table.remove((bucket, key))?;
            Ok(())
        })
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
        // redb admits one write transaction at a time, so read-add-write here is atomic.
        self.write(|table| {
            let current = table
                .get((bucket, key))?
                .map(|value| value.value().to_vec());
            let next = add_to_counter(current.as_deref(), key, delta)?;
            table.insert((bucket, key), next.to_string().as_bytes())?;
            Ok(next)
        })
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

    fn set_many(&self, bucket: &str, pairs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        self.write(|table| {
            for (key, value) in pairs {
                table.insert((bucket, key.as_str()), value.as_slice())?;
            }
            Ok(())
        })
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        self.write(|table| {
            for key in keys {
                table.remove((bucket, key.as_str()))?;
            }
            Ok(())
        })
    }
}
