//! A write as a value: what [`super::Backend::write`] takes, so that a write can travel to where it
//! is committed (redb's writer thread) and its caller can await the commit without holding
//! a thread.

use std::future::Future;
use std::pin::Pin;

/// One write to one bucket: a `wasi:keyvalue` function that changes the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// `store.set`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// `store.delete`.
    Delete {
        /// The key.
        key: String,
    },
    /// `atomics.increment`.
    Increment {
        /// The counter.
        key: String,
        /// What to add.
        delta: u64,
    },
    /// `batch.set-many`: every pair, in one step.
    SetMany(Vec<(String, Vec<u8>)>),
    /// `batch.delete-many`: every key, in one step.
    DeleteMany(Vec<String>),
}

/// A write on its way: it resolves once the write is durable, to the counter's new value
/// for an [`Write::Increment`] and to 0 for the others.
pub(crate) type Pending = Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>;

impl Write {
    /// The operation's name, as metrics label it (the backend method's).
    pub(crate) fn op(&self) -> &'static str {
        match self {
            Self::Set { .. } => "set",
            Self::Delete { .. } => "delete",
            Self::Increment { .. } => "increment",
            Self::SetMany(_) => "set_many",
            Self::DeleteMany(_) => "delete_many",
        }
    }

    /// Keys and values, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Self::Set { key, value } => key.len() + value.len(),
            Self::Delete { key } | Self::Increment { key, .. } => key.len(),
            Self::SetMany(entries) => entries
                .iter()
                .map(|(key, value)| key.len() + value.len())
                .sum(),
            Self::DeleteMany(keys) => keys.iter().map(String::len).sum(),
        }
    }
}
