//! The store's one table. All buckets share it, keyed by (bucket, key): a bucket is then a
//! contiguous range, and named buckets need no schema changes.

use redb::TableDefinition;

/// Every bucket's entries: (bucket, key) to value.
pub(super) const ENTRIES: TableDefinition<'static, (&str, &str), &[u8]> =
    TableDefinition::new("entries");
