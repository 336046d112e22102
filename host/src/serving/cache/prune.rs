//! Keeping the cache to its budget: after each write, the entries used least recently are
//! removed until the rest fit. A hit renews an entry's modification time ([`touch`]), so
//! that is when it was last used.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A cache entry, as pruning sees it.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    size: u64,
    /// Its modification time: when it was written, or last read back.
    used: SystemTime,
}

/// Removes the entries used least recently until the cache fits in `max_size` bytes,
/// sparing `written`, the entry just made, of `size` bytes. Only `.cwasm` files are entries.
pub(super) fn prune(written: &Path, size: u64, max_size: u64) {
    let Some(dir) = written.parent() else {
        return;
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) => {
            tracing::warn!("cannot list the compile cache {}: {error}", dir.display());
            return;
        }
    };
    let others = listing.filter_map(|entry| {
        let path = entry.ok()?.path();
        let metadata = std::fs::symlink_metadata(&path).ok()?;
        let entry = path.extension()? == "cwasm" && metadata.is_file() && path != written;
        entry.then_some(Entry {
            used: metadata.modified().ok()?,
            size: metadata.len(),
            path,
        })
    });
    let budget = max_size.saturating_sub(size);
    for path in least_recently_used_over(others.collect(), budget) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                "compile cache entry {} removed: the cache is over its {max_size} bytes",
                path.display(),
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                "cannot remove the compile cache entry {}: {error}",
                path.display()
            ),
        }
    }
}

/// The entries to remove, least recently used first, so that the rest fit in `budget` bytes.
fn least_recently_used_over(mut entries: Vec<Entry>, budget: u64) -> Vec<PathBuf> {
    let mut total: u64 = entries.iter().map(|entry| entry.size).sum();
    entries.sort_by_key(|entry| entry.used);
    entries
        .into_iter()
        .take_while(|entry| {
            let over = total > budget;
            total = total.saturating_sub(entry.size);
            over
        })
        .map(|entry| entry.path)
        .collect()
}

/// Marks the entry at `path` as used now. A failure only makes it older to pruning.
pub(super) fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_the_least_recently_used_until_the_rest_fit() {
        let at = |secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let entry = |name: &str, size, used| Entry {
            path: PathBuf::from(name),
            size,
            used: at(used),
        };
        let entries = || {
            vec![
                entry("new", 10, 30),
                entry("old", 10, 10),
                entry("middle", 10, 20),
            ]
        };
        let remove = |budget| least_recently_used_over(entries(), budget);
        assert_eq!(remove(30), Vec::<PathBuf>::new());
        assert_eq!(remove(29), [PathBuf::from("old")]);
        assert_eq!(remove(20), [PathBuf::from("old")]);
        assert_eq!(remove(15), [PathBuf::from("old"), PathBuf::from("middle")]);
        assert_eq!(remove(0).len(), 3);
    }
}
