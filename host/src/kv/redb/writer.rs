//! Group commit: the redb store's one writer.
//!
//! Every write of every request goes over a bounded channel to one thread, which owns
//! redb's write side: requests await their answer ([`Writer::queue`]), holding no thread,
//! and blocking callers block for it ([`Writer::submit`]). The thread takes everything
//! waiting, at most [`MAX_BATCH_WRITES`] writes and [`MAX_BATCH_BYTES`] of keys and values,
//! applies it in one write transaction, commits it with immediate durability, and only then
//! answers each caller with its own result. One fsync thus covers every write that was waiting, the way
//! PostgreSQL's group commit does, and while one batch is being committed the next one
//! gathers in the channel. The channel holds [`QUEUE`] writes; past that, callers wait to
//! send, so a writer that cannot keep up slows callers down instead of queueing without
//! limit.
//!
//! A batch is applied in arrival order, so each caller's writes keep their order and an
//! `increment` sees every write queued before it. Failure is per write where it can be, per
//! batch where it must be:
//! - a write refused before it changes anything (an `increment` of a value that is not a
//!   decimal counter, or past `u64::MAX`) fails alone, and the rest of its batch commits;
//! - a failure of redb itself (beginning the transaction, a table update, the commit) fails
//!   every write of the batch: none is acknowledged, and the transaction is rolled back.
//!   The database is then closed, and opened again for the next batch or read
//!   ([`Reopenable`]): after a failed fsync redb refuses all further I/O until it is.

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context as _;
use redb::{Database, Durability, ReadableTable as _, Table};

use super::reopen::Reopenable;
use tokio::sync::{mpsc, oneshot};

use super::table::ENTRIES;
use crate::kv::backend::{BatchObserver, add_to_counter};
use crate::kv::write::{Pending, Write};

/// Writes waiting for the writer, at most; a caller past this waits to send.
const QUEUE: usize = 1024;
/// Writes per transaction, at most. Every caller in a batch waits for all of it to be
/// applied, and applying a few hundred small writes takes well under a millisecond, less
/// than the fsync they share.
const MAX_BATCH_WRITES: usize = 512;
/// Bytes of keys and values per transaction, at most (a single larger write goes alone):
/// what one commit holds in redb's dirty pages and writes before its fsync.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// A write's answer: the counter's committed value for an increment, 0 for the others.
type Answer = anyhow::Result<u64>;

/// A write on its way to the writer, with the way back to its caller.
struct Queued {
    bucket: String,
    write: Write,
    reply: oneshot::Sender<Answer>,
}

impl Queued {
    /// `write` to `bucket`, and where its answer will arrive.
    fn new(bucket: String, write: Write) -> (Self, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        let queued = Self {
            bucket,
            write,
            reply,
        };
        (queued, answer)
    }
}

/// The caller's side of the writer; dropping it lets the writer finish what is queued, and
/// waits for it.
pub(super) struct Writer {
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Queued>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread, which owns `db`'s write side from now on and tells
    /// `on_batch` the size of every batch it commits.
    pub(super) fn start(db: Arc<Reopenable>, on_batch: BatchObserver) -> anyhow::Result<Self> {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("kv-writer".to_owned())
            .spawn(move || run(&db, waiting, &on_batch))
            .context("starting the store's writer thread")?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `write` to `bucket`; the future resolves once it is committed (or has failed).
    /// While it waits for room in the queue or for the commit, it holds no thread.
    pub(super) fn queue(&self, bucket: String, write: Write) -> Pending {
        let queue = self.queue.clone();
        Box::pin(async move {
            let (queued, answer) = Queued::new(bucket, write);
            // The sender goes as soon as the write is queued: only queued writes keep the
            // writer from ending.
            queue
                .context("the store is closed")?
                .send(queued)
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
    }

    /// [`Self::queue`] for a thread that may block (tokio's blocking pool, a plain thread),
    /// which it does until the write is committed. It must not be called from async code.
    pub(super) fn submit(&self, bucket: &str, write: Write) -> Answer {
        let (queued, answer) = Queued::new(bucket.to_owned(), write);
        self.queue
            .as_ref()
            .context("the store is closed")?
            .blocking_send(queued)
            .map_err(|_| stopped())?;
        answer.blocking_recv().map_err(|_| stopped())?
    }

    /// Writes queued and not yet taken into a batch.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |queue| queue.max_capacity() - queue.capacity())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // With the last sender gone, the writer commits what is queued, then ends.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

/// The writer is gone: it panicked, or the store was closed before it answered.
fn stopped() -> anyhow::Error {
    anyhow::anyhow!("the store's writer stopped before committing")
}

/// Applies `write` to `bucket` in `table`. An `Err` is redb's and dooms the whole batch; an
/// `Ok(Err)` refuses this write alone, which has then changed nothing.
fn apply_one(
    write: &Write,
    bucket: &str,
    table: &mut Table<'_, (&str, &str), &[u8]>,
) -> Result<Answer, redb::StorageError> {
    match write {
        Write::Set { key, value } => {
            table.insert((bucket, key.as_str()), value.as_slice())?;
        }
        Write::SetMany(entries) => {
            for (key, value) in entries {
                table.insert((bucket, key.as_str()), value.as_slice())?;
            }
        }
        Write::Delete { key } => {
            table.remove((bucket, key.as_str()))?;
        }
        Write::DeleteMany(keys) => {
            for key in keys {
                table.remove((bucket, key.as_str()))?;
            }
        }
        Write::Increment { key, delta } => {
            let counted = {
                let current = table.get((bucket, key.as_str()))?;
                add_to_counter(current.as_ref().map(|value| value.value()), key, *delta)
            };
            let next = match counted {
                Ok(next) => next,
                Err(refused) => return Ok(Err(refused)),
            };
            table.insert((bucket, key.as_str()), next.to_string().as_bytes())?;
            return Ok(Ok(next));
        }
    }
    Ok(Ok(0))
}

/// The writer thread: batch, commit, answer, until every [`Writer`] is gone and the queue
/// is empty. Logs how many writes each commit carried, on average, when it ends.
fn run(db: &Reopenable, mut waiting: mpsc::Receiver<Queued>, on_batch: &BatchObserver) {
    let mut held_over = None;
    let (mut batches, mut writes) = (0_u64, 0_u64);
    while let Some(first) = held_over.take().or_else(|| waiting.blocking_recv()) {
        let batch = gather(first, &mut waiting, &mut held_over);
        on_batch(batch.len());
        batches += 1;
        writes += batch.len() as u64;
        commit(db, batch);
    }
    tracing::info!(
        batches,
        writes,
        mean_batch = format_args!("{:.1}", writes as f64 / batches.max(1) as f64),
        "store writer stopped",
    );
}

/// `first` and whatever else is waiting, within the batch limits. A write that would take
/// the batch past [`MAX_BATCH_BYTES`] is held over to start the next one.
fn gather(
    first: Queued,
    waiting: &mut mpsc::Receiver<Queued>,
    held_over: &mut Option<Queued>,
) -> Vec<Queued> {
    let mut bytes = first.write.bytes();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_WRITES {
        let Ok(next) = waiting.try_recv() else { break };
        bytes += next.write.bytes();
        if bytes > MAX_BATCH_BYTES {
            *held_over = Some(next);
            break;
        }
        batch.push(next);
    }
    batch
}

/// Applies and commits `batch`, then answers every caller in it: each with its own result,
/// or all with the failure if the batch could not be committed, after which the database is
/// closed, to be opened again.
fn commit(db: &Reopenable, batch: Vec<Queued>) {
    let applied = db.get().and_then(|open| apply(&open, &batch));
    if applied.is_err() {
        db.close();
    }
    match applied {
        Ok(answers) => {
            for (queued, answer) in batch.into_iter().zip(answers) {
                // A caller that is gone has nobody to tell.
                let _ = queued.reply.send(answer);
            }
        }
        Err(error) => {
            tracing::error!(
                writes = batch.len(),
                "the store could not commit a batch; every write in it failed: {error:#}"
            );
            for write in batch {
                let _ = write.reply.send(Err(anyhow::anyhow!(
                    "the store could not commit: {error:#}"
                )));
            }
        }
    }
}

/// One transaction for the whole batch, durable when this returns `Ok`.
fn apply(db: &Database, batch: &[Queued]) -> anyhow::Result<Vec<Answer>> {
    let mut txn = db.begin_write()?;
    // redb's default, stated because every answer relies on it: the commit fsyncs.
    txn.set_durability(Durability::Immediate)?;
    let answers = {
        let mut table = txn.open_table(ENTRIES)?;
        batch
            .iter()
            .map(|queued| apply_one(&queued.write, &queued.bucket, &mut table))
            .collect::<Result<Vec<_>, _>>()?
    };
    txn.commit()?;
    Ok(answers)
}
