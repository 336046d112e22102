//! The grouped writer: many callers at once, a write refused inside a batch, and a commit
//! that fails, on a disk whose fsyncs a test holds (so writes gather behind a commit) and
//! fails; and what a listing reads of that disk. The contract every backend keeps is tested
//! in `kv::tests`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redb::StorageBackend;
use redb::backends::InMemoryBackend;

use super::RedbBackend;
use crate::kv::backend::{Backend as _, LIST_PAGE_SIZE};
use crate::kv::tests::redb_at;
use crate::kv::write::Write;

/// How long a test waits for the writer to reach a state before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A disk in memory whose syncs a test can hold and fail, and which counts its reads.
#[derive(Debug, Default, Clone)]
struct Disk {
    memory: Arc<InMemoryBackend>,
    syncs: Arc<Syncs>,
    reads: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Syncs {
    state: Mutex<SyncState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Syncs wait while this is set, unless a pass lets one through.
    held: bool,
    passes: usize,
    /// Syncs fail from now on.
    failing: bool,
    /// Syncs begun so far.
    arrived: usize,
}

impl Disk {
    fn state(&self) -> MutexGuard<'_, SyncState> {
        self.syncs
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state and wakes every sync and waiter.
    fn update(&self, change: impl FnOnce(&mut SyncState)) {
        change(&mut self.state());
        self.syncs.changed.notify_all();
    }

    /// Waits until `ready` holds of the state, for at most [`PATIENCE`].
    fn wait_until(&self, what: &str, ready: impl Fn(&SyncState) -> bool) {
        let started = Instant::now();
        let mut state = self.state();
        while !ready(&state) {
            assert!(started.elapsed() < PATIENCE, "waited too long for {what}");
            state = self
                .syncs
                .changed
                .wait_timeout(state, Duration::from_millis(10))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Syncs begun so far.
    fn arrived(&self) -> usize {
        self.state().arrived
    }

    /// A store on this disk, and the size of every batch it commits, as it commits them.
    fn store(&self) -> (RedbBackend, Arc<Mutex<Vec<usize>>>) {
        self.store_with(redb::Builder::new)
    }

    /// [`Self::store`], with redb configured by `builder`, each time the store opens it.
    fn store_with(
        &self,
        builder: impl Fn() -> redb::Builder + Send + Sync + 'static,
    ) -> (RedbBackend, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        let disk = self.clone();
        let store = RedbBackend::new(
            Box::new(move || Ok(builder().create_with_backend(disk.clone())?)),
            Box::new(move |writes| {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(writes);
            }),
        )
        .expect("a store");
        (store, batches)
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        self.memory.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.memory.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.memory.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state();
        state.arrived += 1;
        self.syncs.changed.notify_all();
        while state.held && state.passes == 0 {
            state = self
                .syncs
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.held {
            state.passes -= 1;
        }
        if state.failing {
            return Err(io::Error::other("injected: the disk failed to sync"));
        }
        drop(state);
        self.memory.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.memory.write(offset, data)
    }
}

/// Runs `write` on its own thread, as the blocking pool would.
fn spawn<R: Send + 'static>(
    store: &Arc<RedbBackend>,
    write: impl FnOnce(&RedbBackend) -> anyhow::Result<R> + Send + 'static,
) -> std::thread::JoinHandle<anyhow::Result<R>> {
    let store = Arc::clone(store);
    std::thread::spawn(move || write(&store))
}

fn join<R>(thread: std::thread::JoinHandle<anyhow::Result<R>>) -> anyhow::Result<R> {
    thread.join().expect("the writing thread did not panic")
}

/// Holds the disk's syncs, starts one write whose commit then waits at its fsync, and
/// returns it: whatever is written next gathers behind that commit, into one batch.
fn hold_a_commit(
    disk: &Disk,
    store: &Arc<RedbBackend>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    disk.update(|state| state.held = true);
    let before = disk.arrived();
    let first = spawn(store, |store| store.set("", "first", b"1"));
    disk.wait_until("the first commit's fsync", |state| state.arrived > before);
    first
}

/// Waits until `count` writes are queued behind the held commit.
fn wait_for_queued(store: &RedbBackend, count: usize) {
    let started = Instant::now();
    while store.writer.queued() < count {
        assert!(
            started.elapsed() < PATIENCE,
            "{count} writes were not queued in time"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn sizes(batches: &Mutex<Vec<usize>>) -> Vec<usize> {
    batches
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[test]
fn concurrent_increments_from_many_threads_never_repeat_and_are_committed() -> anyhow::Result<()> {
    const THREADS: u64 = 32;
    const EACH: u64 = 40;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let store = Arc::new(redb_at(&path)?);
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            spawn(&store, move |store| {
                let mut ids = Vec::new();
                for _ in 0..EACH {
                    let id = store.increment("", "n", 1)?;
                    // Each caller reads its own write as soon as it is acknowledged.
                    let key = format!("task/{id}");
                    store.set("", &key, &thread.to_be_bytes())?;
                    anyhow::ensure!(store.get("", &key)? == Some(thread.to_be_bytes().to_vec()));
                    ids.push(id);
                }
                Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for thread in threads {
        ids.extend(join(thread)?);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=THREADS * EACH).collect::<Vec<_>>());
    drop(store);
    let reopened = redb_at(&path)?;
    assert_eq!(
        reopened.get("", "n")?,
        Some((THREADS * EACH).to_string().into_bytes()),
        "the last id handed out is the committed counter"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_increments_awaited_from_many_tasks_never_repeat() -> anyhow::Result<()> {
    const TASKS: u64 = 64;
    const EACH: u64 = 20;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(redb_at(&dir.path().join("store.redb"))?);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..EACH {
                    let increment = Write::Increment {
                        key: "n".into(),
                        delta: 1,
                    };
                    ids.push(Arc::clone(&store).write(String::new(), increment).await?);
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await??);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=TASKS * EACH).collect::<Vec<_>>());
    assert_eq!(
        store.get("", "n")?,
        Some((TASKS * EACH).to_string().into_bytes())
    );
    Ok(())
}

#[test]
fn writes_that_wait_behind_a_commit_share_the_next_one() -> anyhow::Result<()> {
    let disk = Disk::default();
    let (store, batches) = disk.store();
    let store = Arc::new(store);
    let first = hold_a_commit(&disk, &store);
    let writers: Vec<_> = (0..8)
        .map(|i| spawn(&store, move |store| store.set("", &format!("k{i}"), b"v")))
        .collect();
    wait_for_queued(&store, 8);
    disk.update(|state| state.held = false);
    join(first)?;
    for writer in writers {
        join(writer)?;
    }
    assert!(sizes(&batches).ends_with(&[1, 8]), "{:?}", sizes(&batches));
    assert_eq!(store.get("", "k7")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_refused_write_fails_alone_and_the_rest_of_its_batch_commits() -> anyhow::Result<()> {
    let disk = Disk::default();
    let (store, batches) = disk.store();
    store.set("", "text", b"not a counter")?;
    let store = Arc::new(store);
    let first = hold_a_commit(&disk, &store);
    let before = spawn(&store, |store| store.increment("", "n", 1));
    wait_for_queued(&store, 1);
    let refused = spawn(&store, |store| store.increment("", "text", 1));
    wait_for_queued(&store, 2);
    let after = spawn(&store, |store| store.increment("", "n", 1));
    wait_for_queued(&store, 3);
    let set = spawn(&store, |store| store.set("", "k", b"v"));
    wait_for_queued(&store, 4);
    disk.update(|state| state.held = false);
    join(first)?;

    let error = join(refused).expect_err("text is not a counter");
    assert!(
        format!("{error:#}").contains("not a decimal counter"),
        "{error:#}"
    );
    assert_eq!((join(before)?, join(after)?), (1, 2), "in arrival order");
    join(set)?;
    assert!(sizes(&batches).ends_with(&[1, 4]), "{:?}", sizes(&batches));
    assert_eq!(store.get("", "text")?, Some(b"not a counter".to_vec()));
    assert_eq!(store.get("", "n")?, Some(b"2".to_vec()));
    assert_eq!(store.get("", "k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_failed_commit_fails_every_write_in_its_batch_and_the_store_opens_again_once_the_disk_heals()
-> anyhow::Result<()> {
    let disk = Disk::default();
    let (store, batches) = disk.store();
    let store = Arc::new(store);
    let first = hold_a_commit(&disk, &store);
    let doomed: Vec<_> = (0..8)
        .map(|i| {
            spawn(&store, move |store| {
                store.set("", &format!("k{i}"), b"v")?;
                Ok(None)
            })
        })
        .chain((0..4).map(|_| spawn(&store, |store| store.increment("", "n", 1).map(Some))))
        .collect();
    wait_for_queued(&store, doomed.len());
    // Let the first commit through, then fail the next one: the batch of twelve.
    let arrived = disk.arrived();
    disk.update(|state| state.passes = 1);
    disk.wait_until("the second commit's fsync", |state| state.arrived > arrived);
    disk.update(|state| {
        state.failing = true;
        state.held = false;
    });
    join(first)?;
    for (i, write) in doomed.into_iter().enumerate() {
        let error = join(write).expect_err("its commit failed");
        assert!(
            format!("{error:#}").contains("the store could not commit"),
            "write {i}: {error:#}"
        );
    }
    assert!(sizes(&batches).ends_with(&[1, 12]), "{:?}", sizes(&batches));
    // What reached the disk is unknown now: while the disk still fails, so does every write,
    // and once it heals the store opens again and serves. The failed batch was never
    // acknowledged, and it is there whole or not at all: here its pages were written before
    // the fsync failed, as a crash after the write could leave them too.
    assert!(store.set("", "during", b"v").is_err());
    disk.update(|state| state.failing = false);
    store.set("", "later", b"v")?;
    assert_eq!(store.get("", "later")?, Some(b"v".to_vec()));
    let doomed: Vec<bool> = (0..8)
        .map(|i| store.exists("", &format!("k{i}")))
        .collect::<anyhow::Result<_>>()?;
    let counter = store.get("", "n")?;
    let whole = doomed.iter().all(|present| *present) && counter == Some(b"4".to_vec());
    let none = doomed.iter().all(|present| !present) && counter.is_none();
    assert!(whole || none, "half a batch: {doomed:?}, n = {counter:?}");
    Ok(())
}

#[test]
fn a_page_deep_in_a_listing_reads_no_more_of_the_disk_than_the_first() -> anyhow::Result<()> {
    const PAGES: usize = 20;
    let disk = Disk::default();
    // No cache: every page of the B-tree that a listing visits is read from the disk.
    let (store, _) = disk.store_with(|| {
        let mut builder = redb::Builder::new();
        builder.set_cache_size(0);
        builder
    });
    let keys: Vec<(String, Vec<u8>)> = (0..PAGES * LIST_PAGE_SIZE)
        .map(|i| (format!("task/{i:020}"), b"{}".to_vec()))
        .collect();
    store.set_many("", &keys)?;
    let mut reads_per_page = Vec::new();
    let mut cursor = None;
    for _ in 0..PAGES {
        let before = disk.reads.load(Ordering::Relaxed);
        let page = store.list_keys("", cursor.as_deref())?;
        reads_per_page.push(disk.reads.load(Ordering::Relaxed) - before);
        cursor = page.cursor;
    }
    assert_eq!(cursor, None, "{PAGES} pages hold every key");
    // Skipping to a page from the start, as an offset does, reads every page before it:
    // the last page would read about twenty times what the first does.
    let first = reads_per_page[0];
    assert!(
        reads_per_page.iter().all(|reads| *reads <= 2 * first),
        "disk reads per page: {reads_per_page:?}"
    );
    Ok(())
}
