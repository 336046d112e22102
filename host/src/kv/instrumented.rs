//! A [`Backend`] that counts and times every operation of the backend it wraps, for the
//! `task_host_kv_*` metrics. The WIT glue and the backends stay unaware of metrics.

use std::sync::Arc;
use std::time::Instant;

use super::backend::{Backend, KeyPage};
use super::write::{Pending, Write};
use crate::ops::metrics::{KvLabels, Metrics};

/// See the module docs.
pub(crate) struct Instrumented {
    inner: Arc<dyn Backend>,
    backend: &'static str,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    /// Wraps `inner`, labelled `backend` (`memory`, `redb`, `redis`).
    pub(crate) fn new(
        inner: Arc<dyn Backend>,
        backend: &'static str,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner,
            backend,
            metrics,
        }
    }

    fn measure<R>(
        &self,
        op: &'static str,
        call: impl FnOnce(&dyn Backend) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let started = Instant::now();
        let result = call(self.inner.as_ref());
        self.record(op, started, result.is_err());
        result
    }

    /// `op`, begun at `started`, is over, and failed or not.
    fn record(&self, op: &'static str, started: Instant, failed: bool) {
        let labels = KvLabels {
            op,
            backend: self.backend,
        };
        self.metrics
            .kv_operation(&labels, started.elapsed(), failed);
    }
}

impl Backend for Instrumented {
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.measure("get", |inner| inner.get(bucket, key))
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.measure("set", |inner| inner.set(bucket, key, value))
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.measure("delete", |inner| inner.delete(bucket, key))
    }

    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool> {
        self.measure("exists", |inner| inner.exists(bucket, key))
    }

    fn list_keys(&self, bucket: &str, cursor: Option<&str>) -> anyhow::Result<KeyPage> {
        self.measure("list_keys", |inner| inner.list_keys(bucket, cursor))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64> {
        self.measure("increment", |inner| inner.increment(bucket, key, delta))
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        self.measure("get_many", |inner| inner.get_many(bucket, keys))
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        self.measure("set_many", |inner| inner.set_many(bucket, entries))
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        self.measure("delete_many", |inner| inner.delete_many(bucket, keys))
    }

    fn write(self: Arc<Self>, bucket: String, write: Write) -> Pending {
        let op = write.op();
        Box::pin(async move {
            let started = Instant::now();
            let result = Arc::clone(&self.inner).write(bucket, write).await;
            self.record(op, started, result.is_err());
            result
        })
    }
}
