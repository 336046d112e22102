//! One bucket as a directory: atomic writes, its keys, and `increment` under a
//! cross-instance lock. Plain `std::fs`, which on wasm32-wasip2 is `wasi:filesystem`, so the
//! same code is unit-tested natively against a temp directory.
//!
//! Crashes (a trap, a `kill -9` of the host) can leave two kinds of debris: an `increment`
//! lock, which waiters break once it is [`STALE_LOCK`] old, and a `.tmp-*` file, which
//! [`DirBucket::open`] removes once it is [`STALE_TEMP`] old.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher as _, RandomState};
use std::io::{self, ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::name::{self, Kind};

/// A lock (or break guard) whose file is older than this was left by an instance that died
/// holding it, and is broken.
///
/// A live holder keeps the lock for one small read, one small write and its fsync, and the
/// rename: 2–5 ms, and 108 ms at worst, measured under `wasmtime serve` with 600 concurrent
/// creates on 2 cores. Two seconds stays well above that, and above the one-second mtime
/// granularity of some file systems, which can make a fresh lock look up to a second old. Meanwhile a crash stalls
/// creates for at most two seconds. A holder that overruns it anyway learns so before it
/// commits and counts again (see [`DirBucket::increment`]), so a slow disk costs time, not a
/// duplicate count.
const STALE_LOCK: Duration = Duration::from_secs(2);
/// A temp file older than this belongs to a writer that died before its rename, and
/// [`DirBucket::open`] removes it.
///
/// A live writer renames its temp file right after one write and one fsync, milliseconds
/// later, and the increment lock it may hold is broken at [`STALE_LOCK`]. A minute is thirty
/// times that: no live writer is still using a file this old, and a fresh one is never
/// removed from under its writer.
const STALE_TEMP: Duration = Duration::from_secs(60);
/// Temp files start with this; no encoded key does (see [`crate::name`]).
const TEMP_PREFIX: &str = ".tmp-";
/// The file in each bucket whose mtime is when its last temp-file sweep began. Like temp
/// files it starts with `.`, so it is never taken for a key.
const SWEPT: &str = ".swept";
/// How often a bucket is swept for temp files. Sweeping walks the whole bucket, and wasi
/// makes that cost about 5 µs per file (a bucket of 10,000 tasks added 50 ms to every request
/// when each open swept), so an open only sweeps if this long has passed since the last
/// sweep, and otherwise costs one `stat`. A crash's temp file is thus gone within
/// `STALE_TEMP + SWEEP_EVERY` of the crash, given traffic.
const SWEEP_EVERY: Duration = STALE_TEMP;
/// How long `increment` waits for the lock before giving up with an error.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A bucket directory.
#[derive(Debug, Clone)]
pub(crate) struct DirBucket {
    dir: PathBuf,
}

impl DirBucket {
    /// Opens (creating if needed) bucket `identifier` under `root`, and removes the temp files
    /// that crashed writers left in it.
    pub(crate) fn open(root: &Path, identifier: &str) -> io::Result<Self> {
        let name = name::bucket_dir(identifier)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "bucket identifier too long"))?;
        let dir = root.join(name);
        fs::create_dir_all(&dir)?;
        let bucket = Self { dir };
        if bucket.sweep_is_due() {
            // Housekeeping only: a sweep that fails (say, on a file system that refuses to set
            // times) must not fail the request that opened the bucket.
            let _ = bucket.sweep_temp_files();
        }
        Ok(bucket)
    }

    /// Whether [`SWEEP_EVERY`] has passed since the last sweep began (or none ever did).
    fn sweep_is_due(&self) -> bool {
        match fs::metadata(self.dir.join(SWEPT)).and_then(|metadata| metadata.modified()) {
            // A time in the future (the clock was set back) counts as due: the sweep resets it.
            Ok(at) => at.elapsed().map_or(true, |age| age >= SWEEP_EVERY),
            Err(_) => true,
        }
    }

    /// Removes every temp file older than [`STALE_TEMP`], wherever in the bucket a crashed
    /// writer left it. It first dates [`SWEPT`] to now, so that instances opening the bucket
    /// meanwhile do not all sweep it too.
    fn sweep_temp_files(&self) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(SWEPT))?
            .set_modified(SystemTime::now())?;
        walk(&self.dir, Path::new(""), &mut |relative| {
            let is_temp = relative
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(TEMP_PREFIX));
            let path = self.dir.join(relative);
            if is_temp && is_older_than(&path, STALE_TEMP) {
                remove_if_present(&path)?;
            }
            Ok(())
        })
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

    /// Every key, sorted: one walk of the whole bucket.
    pub(crate) fn keys(&self) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        walk(&self.dir, Path::new(""), &mut |relative| {
            keys.extend(name::key_of(relative));
            Ok(())
        })?;
        keys.sort_unstable();
        Ok(keys)
    }

    /// Adds `delta` to the decimal counter under `key` (missing is 0) and returns the sum.
    /// Instances serialize on a lock file, so concurrent increments never lose a count.
    pub(crate) fn increment(&self, key: &str, delta: u64) -> io::Result<u64> {
        let started = Instant::now();
        loop {
            let lock = Lock::acquire(self.path(key, Kind::Lock), &self.path(key, Kind::LockBreak))?;
            if let Some(sum) = self.increment_holding(&lock, key, delta)? {
                return Ok(sum);
            }
            // Our lock was broken as stale before we committed, so another instance may have
            // counted meanwhile: nothing was written, and counting again starts from its sum.
            if started.elapsed() > LOCK_WAIT {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "the increment lock was broken before every attempt could commit",
                ));
            }
        }
    }

    /// [`Self::increment`] under `lock`: the sum, or `None` (and nothing written) if the lock
    /// turned out to be lost before the new value could be committed.
    fn increment_holding(&self, lock: &Lock, key: &str, delta: u64) -> io::Result<Option<u64>> {
        let value = self.path(key, Kind::Value);
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
        let staged = Staged::write(&value, next.to_string().as_bytes())?;
        // The fsync above is the slow part. Only if the lock is still ours now did nobody
        // else count since we read `current`; renewing it keeps it fresh through the rename.
        if !lock.renew()? {
            return Ok(None);
        }
        staged.commit()?;
        Ok(Some(next))
    }
}

/// Calls `visit` with the path, relative to the bucket `dir`, of every file under `relative`,
/// following `+` directories: the bucket's whole content.
fn walk(
    dir: &Path,
    relative: &Path,
    visit: &mut impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name().to_string_lossy().starts_with('+') {
                walk(dir, &path, visit)?;
            }
        } else {
            visit(&path)?;
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
    Staged::write(path, bytes)?.commit()
}

/// A new value written and synced to a temp file beside its destination, not yet renamed
/// into place. Dropped uncommitted, the temp file is removed.
struct Staged<'a> {
    temp: PathBuf,
    path: &'a Path,
    dir: &'a Path,
    committed: bool,
}

impl<'a> Staged<'a> {
    /// Writes `bytes` to a fresh temp file in `path`'s directory and syncs it.
    fn write(path: &'a Path, bytes: &[u8]) -> io::Result<Self> {
        let dir = path
            .parent()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no parent directory"))?;
        fs::create_dir_all(dir)?;
        let staged = Self {
            temp: dir.join(format!("{TEMP_PREFIX}{:016x}", token())),
            path,
            dir,
            committed: false,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Renames the temp file over the destination, then syncs the directory.
    fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temp, self.path)?;
        self.committed = true;
        // Not every file system lets a directory be opened for syncing; the rename is atomic
        // regardless, so this only narrows the power-loss window where it can.
        if let Ok(dir) = File::open(self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
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
        let started = Instant::now();
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
            if started.elapsed() > LOCK_WAIT {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "timed out waiting for the increment lock",
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Whether the lock is still ours; if so, its age starts again from zero.
    ///
    /// A holder that overran [`STALE_LOCK`] may have had its lock broken, and then taken by
    /// another instance, which reads the counter before we write it: committing would count
    /// twice. Once the token is gone from the file it never comes back (tokens are random),
    /// so finding it here means nobody else held the lock since we took it. Renewing the
    /// mtime then keeps waiters from finding it stale during the commit that follows. Only a
    /// breaker that saw the lock stale just before the renewal and removes it just after
    /// could still slip in: a window of microseconds, open only to a holder that overran.
    fn renew(&self) -> io::Result<bool> {
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        let mut token = String::new();
        file.read_to_string(&mut token)?;
        if token != self.token {
            return Ok(false);
        }
        // Best effort: where times cannot be set, the commit still follows the check at once.
        let _ = file.set_modified(SystemTime::now());
        Ok(true)
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
    if !is_older_than(path, STALE_LOCK) {
        return Ok(());
    }
    if let Err(error) = OpenOptions::new().write(true).create_new(true).open(guard) {
        if error.kind() != ErrorKind::AlreadyExists {
            return Err(error);
        }
        // Another waiter is breaking it; retry once it is done.
        if is_older_than(guard, STALE_LOCK) {
            let _ = fs::remove_file(guard);
        }
        return Ok(());
    }
    let broken = if is_older_than(path, STALE_LOCK) {
        remove_if_present(path)
    } else {
        Ok(()) // broken and retaken since we looked: a live lock now
    };
    let released = remove_if_present(guard);
    broken.and(released)
}

/// Whether the file at `path` exists and was last written at least `age` ago.
fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|at| at.elapsed().is_ok_and(|elapsed| elapsed >= age))
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
    fn keys_are_every_key_once_sorted() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let mut expected: Vec<String> = (0..107).map(|i| format!("key {i:03}")).collect();
        // Long enough to be split into `+` directories.
        expected.push("x".repeat(450));
        for key in &expected {
            bucket.set(key, b"")?;
        }
        bucket.increment("counter", 1)?;
        expected.push("counter".into());
        expected.sort_unstable();
        assert_eq!(
            bucket.keys()?,
            expected,
            "every key once, no locks or temp files"
        );
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

    /// Makes the file at `path` look last written `age` ago.
    fn set_age(path: &Path, age: Duration) -> io::Result<()> {
        File::options()
            .write(true)
            .open(path)?
            .set_modified(SystemTime::now() - age)
    }

    /// Writes `path` as an instance that died `age` ago would have left it.
    fn leave_aged(path: &Path, age: Duration) -> io::Result<()> {
        fs::write(path, "dead-instance")?;
        set_age(path, age)
    }

    /// Writes `path` as an instance that died long ago would have left it.
    fn leave_stale(path: &Path) -> io::Result<()> {
        leave_aged(path, STALE_LOCK + Duration::from_secs(1))
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
    fn a_lock_left_by_a_crash_stalls_increments_for_about_two_seconds_only() -> io::Result<()> {
        // An absolute age, not one relative to STALE_LOCK: a crash 2.2 s ago must no longer
        // hold up creates (it held them up for 10 s when locks went stale at 10 s).
        let (_dir, bucket) = bucket();
        let (lock, guard) = lock_and_guard(&bucket);
        leave_aged(&lock, Duration::from_millis(2200))?;
        let started = Instant::now();
        assert_eq!(bucket.increment("n", 1)?, 1);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
        assert!(!lock.exists() && !guard.exists());
        Ok(())
    }

    #[test]
    fn a_lock_younger_than_the_threshold_is_waited_for_until_it_goes_stale() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let (lock, guard) = lock_and_guard(&bucket);
        let young = STALE_LOCK - Duration::from_millis(600);
        leave_aged(&lock, young)?;
        break_if_stale(&lock, &guard)?;
        assert!(
            lock.exists(),
            "a lock younger than STALE_LOCK is not broken"
        );
        let started = Instant::now();
        assert_eq!(bucket.increment("n", 1)?, 1);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_millis(1500),
            "waited {waited:?} for a lock that goes stale 600 ms in"
        );
        Ok(())
    }

    #[test]
    fn a_holder_whose_lock_was_broken_writes_nothing_and_leaves_the_new_lock() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let (lock_path, guard) = lock_and_guard(&bucket);
        bucket.increment("n", 1)?;
        let lock = Lock::acquire(lock_path.clone(), &guard)?;
        // We stalled past STALE_LOCK: a waiter broke the lock and another instance took it.
        fs::remove_file(&lock_path)?;
        fs::write(&lock_path, "other-instance")?;
        assert_eq!(bucket.increment_holding(&lock, "n", 1)?, None);
        drop(lock);
        assert_eq!(
            bucket.get("n")?,
            Some(b"1".to_vec()),
            "no count was committed"
        );
        assert_eq!(
            read_token(&lock_path).as_deref(),
            Some("other-instance"),
            "the new holder keeps its lock"
        );
        assert_eq!(temp_files(&bucket)?, Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn a_holder_renews_its_lock_before_committing() -> io::Result<()> {
        let (_dir, bucket) = bucket();
        let (lock_path, guard) = lock_and_guard(&bucket);
        let lock = Lock::acquire(lock_path.clone(), &guard)?;
        // We overran STALE_LOCK, but nobody has broken the lock yet: the count is ours to
        // commit, and the lock must not look stale while we do.
        set_age(&lock_path, STALE_LOCK + Duration::from_secs(1))?;
        assert_eq!(bucket.increment_holding(&lock, "n", 1)?, Some(1));
        break_if_stale(&lock_path, &guard)?;
        assert!(
            lock_path.exists(),
            "a holder that just committed does not look stale"
        );
        drop(lock);
        assert!(!lock_path.exists(), "released");
        Ok(())
    }

    /// The names of the temp files anywhere in `bucket`, sorted.
    fn temp_files(bucket: &DirBucket) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        walk(&bucket.dir, Path::new(""), &mut |relative| {
            let name = relative.to_string_lossy().into_owned();
            if relative
                .file_name()
                .is_some_and(|file| file.to_string_lossy().starts_with(TEMP_PREFIX))
            {
                names.push(name);
            }
            Ok(())
        })?;
        names.sort_unstable();
        Ok(names)
    }

    #[test]
    fn opening_a_bucket_sweeps_temp_files_left_by_crashes_and_keeps_fresh_ones() -> io::Result<()> {
        let (dir, bucket) = bucket();
        let long = "x".repeat(450);
        bucket.set(&long, b"long")?;
        bucket.set("old value", b"kept")?;
        let nested = bucket
            .path(&long, Kind::Value)
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| io::Error::other("a long key lives in a + directory"))?;
        for crashed in [bucket.dir.join(".tmp-dead1"), nested.join(".tmp-dead2")] {
            leave_aged(&crashed, STALE_TEMP + Duration::from_secs(1))?;
        }
        // A value file as old as the debris is data, not debris.
        set_age(&bucket.path("old value", Kind::Value), STALE_TEMP * 10)?;
        fs::write(bucket.dir.join(".tmp-live"), "a writer is still using this")?;
        leave_aged(
            &nested.join(".tmp-young"),
            STALE_TEMP - Duration::from_secs(5),
        )?;

        // The first open of this bucket already swept it (there was nothing to sweep then).
        set_age(&bucket.dir.join(SWEPT), SWEEP_EVERY)?;
        let reopened = DirBucket::open(dir.path(), "")?;
        let nested_young = nested
            .strip_prefix(&bucket.dir)
            .map(|relative| relative.join(".tmp-young").to_string_lossy().into_owned())
            .map_err(io::Error::other)?;
        assert_eq!(
            temp_files(&reopened)?,
            vec![nested_young, ".tmp-live".to_owned()],
            "only the stale temp files are gone"
        );
        assert_eq!(reopened.get("old value")?, Some(b"kept".to_vec()));
        assert_eq!(reopened.get(&long)?, Some(b"long".to_vec()));
        Ok(())
    }

    #[test]
    fn a_bucket_is_swept_at_most_once_per_interval() -> io::Result<()> {
        let (dir, bucket) = bucket();
        let swept = bucket.dir.join(SWEPT);
        assert!(swept.exists(), "the first open swept");
        let crashed = bucket.dir.join(".tmp-dead");
        leave_aged(&crashed, STALE_TEMP + Duration::from_secs(1))?;
        DirBucket::open(dir.path(), "")?;
        assert!(crashed.exists(), "swept too recently to sweep again");
        set_age(&swept, SWEEP_EVERY)?;
        DirBucket::open(dir.path(), "")?;
        assert!(!crashed.exists(), "due again, and swept");
        assert!(!is_older_than(&swept, Duration::from_secs(1)), "and dated");
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
        let started = Instant::now();
        assert_eq!(bucket.increment("n", 1)?, 1);
        assert!(started.elapsed() >= Duration::from_millis(150), "it waited");
        holder
            .join()
            .map_err(|_| io::Error::other("holder panicked"))??;
        Ok(())
    }
}
