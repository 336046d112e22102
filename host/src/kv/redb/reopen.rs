//! The store's database, opened again after an I/O error.
//!
//! Once a write or an fsync has failed, redb refuses all further work with `PreviousIo`
//! until the database is closed and opened again: what reached the disk is unknown, and
//! opening the file reads what did (the last commit that completed). So the writer closes
//! the database after a batch fails, and whoever needs it next, a reader or the writer,
//! opens it again. While the fault lasts every open fails and the request gets its 500;
//! once the fault goes, the store serves again without a restart.
//!
//! redb locks its file: it cannot be opened while the old handle lives, which a read begun
//! before the close may still hold for a moment. That open fails like any other, and the
//! next caller tries again.

use std::sync::{Arc, PoisonError, RwLock};

use redb::Database;

/// How the database is opened: the file at the store's path, or a test's disk.
pub(super) type Opener = Box<dyn Fn() -> anyhow::Result<Database> + Send + Sync>;

/// The open database, or the way to open it again.
pub(super) struct Reopenable {
    open: Opener,
    current: RwLock<Option<Arc<Database>>>,
}

impl Reopenable {
    /// Opens the database with `open`, which is kept for opening it again.
    pub(super) fn new(open: Opener) -> anyhow::Result<Self> {
        let db = open()?;
        Ok(Self {
            open,
            current: RwLock::new(Some(Arc::new(db))),
        })
    }

    /// The open database, opened again first if a failure closed it.
    pub(super) fn get(&self) -> anyhow::Result<Arc<Database>> {
        if let Some(db) = self.read_current() {
            return Ok(db);
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = current.as_ref() {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new((self.open)()?);
        tracing::info!("the store is open again after an I/O error");
        *current = Some(Arc::clone(&db));
        Ok(db)
    }

    /// Closes the database once the last caller holding it lets go; the next
    /// [`Self::get`] opens it again.
    pub(super) fn close(&self) {
        self.current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn read_current(&self) -> Option<Arc<Database>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
