//! One bucket as a directory: atomic writes, paged listing, and `increment` under a
//! cross-instance lock. Plain `std::fs`, which on wasm32-wasip2 is `wasi:filesystem`, so the
//! same code is unit-tested natively against a temp directory.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher as _, RandomState};
use std::io::{self, ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::name::{self, Kind};

/// Keys per `list-keys` page.
pub(crate) const PAGE_SIZE: usize = 100;
/// A lock whose file is older than this was left by an instance that died holding it
/// (a trap, a kill): `increment` holds its lock for milliseconds.
const STALE_LOCK: Duration = Duration::from_secs(10);
/// How long `increment` waits for the lock before giving up with an error.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A bucket directory.
#[derive(Debug, Clone)]
pub(crate) struct DirBucket {
    dir: PathBuf,
}

impl DirBucket {
    /// Opens (creating if needed) bucket `identifier` under `root`.
    pub(crate) fn open(root: &Path, identifier: &str) -> io::Result<Self> {
        let name = name::bucket_dir(identifier)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "bucket identifier too long"))?;
        let dir = root.join(name);
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, key: &str, kind: Kind) -> PathBuf {
        self.dir.join(name::key_path(key, kind))
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key, Kind::Value)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Replaces the value under `key`: readers see the old value or the new one, never a mix.
    pub(crate) fn set(&self, key: &str, value: &[u8]) -> io::Result<()> {
        write_atomically(&self.path(key, Kind::Value), value)
    }

    /// Removes `key`, if present.
    pub(crate) fn delete(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key, Kind::Value)) {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Whether `key` has a value.
    pub(crate) fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Keys sorted, [`PAGE_SIZE`] per page from `offset`, and the offset of the next page.
    pub(crate) fn list_keys(&self, offset: u64) -> io::Result<(Vec<String>, Option<u64>)> {
        let mut keys = Vec::new();
        collect_keys(&self.dir, Path::new(""), &mut keys)?;
        keys.sort_unstable();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(keys.len());
        let end = start.saturating_add(PAGE_SIZE).min(keys.len());
        let next = (end < keys.len()).then_some(end as u64);
        Ok((keys.drain(start..end).collect(), next))
    }

    /// Adds `delta` to the decimal counter under `key` (missing is 0) and returns the sum.
    /// Instances serialize on a lock file, so concurrent increments never lose a count.
    pub(crate) fn increment(&self, key: &str, delta: u64) -> io::Result<u64> {
        let value = self.path(key, Kind::Value);
        let _lock = Lock::acquire(self.path(key, Kind::Lock), &self.path(key, Kind::LockBreak))?;
        let current = match fs::read(&value) {
            Ok(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        ErrorKind::InvalidData,
                        format!("the value under {key:?} is not a decimal counter"),
                    )
                })?,
            Err(error) if error.kind() == ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        let next = current.checked_add(delta).ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("incrementing {key:?} overflows u64"),
            )
        })?;
        write_atomically(&value, next.to_string().as_bytes())?;
        Ok(next)
    }
}

/// Walks `dir` (at `relative` inside the bucket) for value files, following `+` directories.
fn collect_keys(dir: &Path, relative: &Path, keys: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name().to_string_lossy().starts_with('+') {
                collect_keys(dir, &path, keys)?;
            }
        } else if let Some(key) = name::key_of(&path) {
            keys.push(key);
        }
    }
    Ok(())
}

/// A fresh random token: `RandomState` is seeded from the OS (wasi:random on wasip2).
fn token() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

/// Writes a temp file, syncs it, renames it over `path`, then syncs the directory, so that
/// a crash leaves the old value or the new one, and a returned write is on disk.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no parent directory"))?;
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".tmp-{:016x}", token()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Not every file system lets a directory be opened for syncing; the rename is atomic
    // regardless, so this only narrows the power-loss window where it can.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// An exclusive lock: a file created with `create_new`, holding its owner's token.
struct Lock {
    path: PathBuf,
    token: String,
}

impl Lock {
    /// Takes the lock at `path`, breaking it (under `guard`) if its holder died.
    fn acquire(path: PathBuf, guard: &Path) -> io::Result<Self> {
        let token = format!("{:016x}", token());
        let started = SystemTime::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(token.as_bytes())?;
                    return Ok(Self { path, token });
                }
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                    break_if_stale(&path, guard)?;
                }
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    // The key lives in a `+` directory that does not exist yet.
                    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
                    continue;
                }
                Err(error) => return Err(error),
            }
            if started.elapsed().unwrap_or_default() > LOCK_WAIT {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "timed out waiting for the increment lock",
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Re-check ownership: if we overran STALE_LOCK and another instance broke our lock,
        // the file now belongs to it and must stay.
        if read_token(&self.path).as_deref() == Some(self.token.as_str()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn read_token(path: &Path) -> Option<String> {
    let mut token = String::new();
    File::open(path).ok()?.read_to_string(&mut token).ok()?;
    Some(token)
}

/// Breaks the lock at `path` if it is stale.
///
/// Breaking is itself guarded by an exclusive file (`guard`), and the lock is re-checked
/// under it. That makes the removal safe: while the guard is held nobody else removes the
/// lock, and nobody can create one while it exists, so the stale lock seen under the guard is
/// the one removed. Without the guard, a waiter that saw the stale lock could remove a fresh
/// one that another waiter took after breaking the stale one, and two instances would count
/// at once. A guard left by an instance that died while breaking goes once it is stale too;
/// only a second crash inside that window could let two breakers overlap.
fn break_if_stale(path: &Path, guard: &Path) -> io::Result<()> {
    if !is_stale(path) {
        return Ok(());
    }
    if let Err(error) = OpenOptions::new().write(true).create_new(true).open(guard) {
        if error.kind() != ErrorKind::AlreadyExists {
            return Err(error);
        }
        // Another waiter is breaking it; retry once it is done.
        if is_stale(guard) {
            let _ = fs::remove_file(guard);
        }
        return Ok(());
    }
    let broken = if is_stale(path) {
        remove_if_present(path)
    } else {
        Ok(()) // broken and retaken since we looked: a live lock now
    };
    let released = remove_if_present(guard);
    broken.and(released)
}

/// Whether the file at `path` exists and was last written more than [`STALE_LOCK`] ago.
fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|at| at.elapsed().is_ok_and(|age| age >= STALE_LOCK))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn bucket() -> (tempfile::TempDir, DirBucket) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let bucket = DirBucket::open(dir.path(), "").expect("a bucket");
        (dir, bucket)
    }

    #[test]
    fn values_round_trip_and_delete() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        assert_eq!(bucket.get("k")?, None);
        bucket.set("k", b"v1")?;
        bucket.set("k", b"v2")?;
        assert_eq!(bucket.get("k")?, Some(b"v2".to_vec()));
        bucket.delete("k")?;
        bucket.delete("k")?;
        assert!(!bucket.exists("k")?);
        Ok(())
    }

    #[test]
    fn hostile_keys_stay_inside_the_bucket() -> io::Result<()> {
        let (dir, bucket) = bucket();
        for key in ["../escape", "/etc/passwd", "..", "a/../../b", "nul\0"] {
            bucket.set(key, key.as_bytes())?;
            assert_eq!(bucket.get(key)?, Some(key.as_bytes().to_vec()));
        }
        let outside: Vec<_> = fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            outside,
            vec![std::ffi::OsString::from("b")],
            "nothing escaped the bucket"
        );
        Ok(())
    }

    #[test]
    fn buckets_are_separate() -> io::Result<()> {
        let (dir, default) = bucket();
        let other = DirBucket::open(dir.path(), "other")?;
        default.set("k", b"1")?;
        assert_eq!(other.get("k")?, None);
        Ok(())
    }

    #[test]
    fn list_keys_pages_with_a_cursor() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let long = "x".repeat(450);
        let mut expected: Vec<String> = (0..PAGE_SIZE + 7).map(|i| format!("key {i:03}")).collect();
        expected.push(long.clone());
        for key in &expected {
            bucket.set(key, b"")?;
        }
        bucket.increment("counter", 1)?;
        expected.push("counter".into());
        expected.sort_unstable();
        let (first, cursor) = bucket.list_keys(0)?;
        assert_eq!((first.len(), cursor), (PAGE_SIZE, Some(PAGE_SIZE as u64)));
        let (rest, end) = bucket.list_keys(PAGE_SIZE as u64)?;
        assert_eq!(end, None);
        assert_eq!(
            [first, rest].concat(),
            expected,
            "every key once, no locks or temp files"
        );
        assert_eq!(bucket.list_keys(u64::MAX)?, (vec![], None));
        Ok(())
    }

    #[test]
    fn increment_counts_in_decimal_and_refuses_non_counters() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        assert_eq!(bucket.increment("n", 1)?, 1);
        assert_eq!(bucket.increment("n", 41)?, 42);
        assert_eq!(bucket.get("n")?, Some(b"42".to_vec()));
        bucket.set("text", b"x")?;
        assert!(bucket.increment("text", 1).is_err());
        Ok(())
    }

    /// Runs `each` increments of `n` on each of `workers` threads; returns every result, sorted.
    fn increment_concurrently(
        bucket: DirBucket,
        workers: usize,
        each: usize,
    ) -> io::Result<Vec<u64>> {
        let bucket = Arc::new(bucket);
        let workers: Vec<_> = (0..workers)
            .map(|_| {
                let bucket = Arc::clone(&bucket);
                std::thread::spawn(move || {
                    (0..each)
                        .map(|_| bucket.increment("n", 1))
                        .collect::<io::Result<Vec<u64>>>()
                })
            })
            .collect();
        let mut seen = Vec::new();
        for worker in workers {
            seen.extend(
                worker
                    .join()
                    .map_err(|_| io::Error::other("worker panicked"))??,
            );
        }
        seen.sort_unstable();
        Ok(seen)
    }

    /// Writes `path` as an instance that died long ago would have left it.
    fn leave_stale(path: &Path) -> io::Result<()> {
        fs::write(path, "dead-instance")?;
        let old = SystemTime::now() - STALE_LOCK - Duration::from_secs(1);
        File::options().write(true).open(path)?.set_modified(old)
    }

    /// The paths of the lock on counter `n` and of its break guard.
    fn lock_and_guard(bucket: &DirBucket) -> (PathBuf, PathBuf) {
        (
            bucket.path("n", Kind::Lock),
            bucket.path("n", Kind::LockBreak),
        )
    }

    /// A bucket whose counter `n` is locked by an instance that died; also the paths of that
    /// lock and of its break guard.
    fn bucket_with_a_stale_lock() -> io::Result<(tempfile::TempDir, DirBucket, PathBuf, PathBuf)> {
        let (dir, bucket) = bucket();
        let (lock, guard) = lock_and_guard(&bucket);
        leave_stale(&lock)?;
        Ok((dir, bucket, lock, guard))
    }

    #[test]
    fn concurrent_increments_never_lose_a_count() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        assert_eq!(
            increment_concurrently(bucket, 8, 25)?,
            (1..=200).collect::<Vec<u64>>()
        );
        Ok(())
    }

    #[test]
    fn a_stale_lock_left_by_a_dead_instance_is_broken() -> io::Result<()> {
        let (_dir, bucket, lock, guard) = bucket_with_a_stale_lock()?;
        assert_eq!(bucket.increment("n", 1)?, 1);
        assert!(
            !lock.exists() && !guard.exists(),
            "lock and guard are released"
        );
        Ok(())
    }

    #[test]
    fn many_waiters_on_a_stale_lock_still_count_one_at_a_time() -> io::Result<()> {
        // After a crash every waiter finds the same stale lock; exactly one may break it.
        let (_dir, bucket, lock, guard) = bucket_with_a_stale_lock()?;
        assert_eq!(
            increment_concurrently(bucket, 16, 25)?,
            (1..=400).collect::<Vec<u64>>()
        );
        assert!(!lock.exists() && !guard.exists(), "nothing is left behind");
        Ok(())
    }

    #[test]
    fn a_stale_lock_is_left_alone_while_another_waiter_breaks_it() -> io::Result<()> {
        let (_dir, _bucket, lock, guard) = bucket_with_a_stale_lock()?;
        fs::write(&guard, "")?;
        break_if_stale(&lock, &guard)?;
        assert!(
            lock.exists() && guard.exists(),
            "only the guard's holder breaks"
        );
        Ok(())
    }

    #[test]
    fn a_guard_left_by_a_dead_breaker_goes_once_stale() -> io::Result<()> {
        let (_dir, bucket, _lock, guard) = bucket_with_a_stale_lock()?;
        leave_stale(&guard)?;
        assert_eq!(bucket.increment("n", 1)?, 1);
        Ok(())
    }

    #[test]
    fn a_fresh_lock_is_never_broken() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let (lock, guard) = lock_and_guard(&bucket);
        fs::write(&lock, "live-instance")?;
        break_if_stale(&lock, &guard)?;
        assert!(lock.exists() && !guard.exists());
        Ok(())
    }

    #[test]
    fn a_fresh_lock_is_waited_for_not_broken() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let lock = bucket.path("n", Kind::Lock);
        fs::write(&lock, "live-instance")?;
        let holder = std::thread::spawn({
            let lock = lock.clone();
            move || {
                std::thread::sleep(Duration::from_millis(200));
                fs::remove_file(lock)
            }
        });
        let started = SystemTime::now();
        assert_eq!(bucket.increment("n", 1)?, 1);
        assert!(
            started.elapsed().unwrap_or_default() >= Duration::from_millis(150),
            "it waited"
        );
        holder
            .join()
            .map_err(|_| io::Error::other("holder panicked"))??;
        Ok(())
    }
}
