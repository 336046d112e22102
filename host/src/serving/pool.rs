//! How many guest instances can run at once, and the gate that keeps requests within it.
//!
//! wasmtime's pooling allocator reserves its slots up front and counts core instances,
//! linear memories and tables separately, for all component instances together. One
//! component instance uses several of each: task_api.wasm takes four core instances per
//! request. Sizing every kind at `--max-instances` therefore let only a quarter of that many
//! requests run, and the rest failed with 503 while the pool still had component slots.
//!
//! So the [`Shape`] of a component is read from its bytes before the engine exists, the pool
//! is sized for `--max-instances` instances of that shape ([`Capacity`]), and the [`Gate`]
//! admits as many requests as the pool holds for the component being served. A swap to a
//! component of another shape resizes the gate rather than the pool, which is fixed once
//! the engine is built.
//!
//! Memories are counted exactly and are what costs: each one reserves gigabytes of address
//! space. Core instances and tables cost little, and wasmtime adds core instances of its own
//! that no binary shows (the fused adapters between two nested components: a composed
//! task_api_standalone.wasm has six in its bytes and seven at run time), so those two get
//! headroom.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use wasmparser::{Instance, Parser, Payload};
use wasmtime::PoolingAllocationConfig;

use crate::ops::metrics::Metrics;

/// What one instance of a component takes from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Core module instances.
    pub(crate) core_instances: u32,
    /// Linear memories defined (not imported) by those modules.
    pub(crate) memories: u32,
    /// Tables defined (not imported) by those modules.
    pub(crate) tables: u32,
}

impl Shape {
    /// Counts what instantiating the component in `bytes` allocates: every core
    /// instantiation, and the memories and tables every module defines, at any nesting
    /// depth. That is exact for components that instantiate each module once, which is what
    /// wit-component and wac produce; a component that instantiates one module twice is
    /// under-counted, and the pool then refuses some of its instances with a 503.
    pub(crate) fn of(bytes: &[u8]) -> wasmtime::Result<Self> {
        let mut shape = Self {
            core_instances: 0,
            memories: 0,
            tables: 0,
        };
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::InstanceSection(instances) => {
                    for instance in instances {
                        if let Instance::Instantiate { .. } = instance? {
                            shape.core_instances += 1;
                        }
                    }
                }
                Payload::MemorySection(memories) => shape.memories += memories.count(),
                Payload::TableSection(tables) => shape.tables += tables.count(),
                _ => {}
            }
        }
        Ok(shape)
    }

    /// What the pool sets aside per instance: the memories counted, and twice the core
    /// instances and tables plus eight, for what wasmtime adds at run time.
    fn with_headroom(self) -> Self {
        let roomy = |count: u32| count.saturating_mul(2).saturating_add(8);
        Self {
            core_instances: roomy(self.core_instances),
            memories: self.memories,
            tables: roomy(self.tables),
        }
    }
}

/// The pool's totals: room for a number of instances of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity {
    instances: u32,
    shape: Shape,
}

impl Capacity {
    /// Room for `instances` instances shaped like `shape`.
    pub(crate) fn new(instances: u32, shape: Shape) -> Self {
        Self { instances, shape }
    }

    /// How many instances the pool was sized for.
    pub(crate) fn instances(&self) -> u32 {
        self.instances
    }

    /// The allocator settings: every total is the instance count times what one instance
    /// may take, with headroom for core instances and tables (see the module docs).
    pub(crate) fn configure(&self, pool: &mut PoolingAllocationConfig) {
        let per_instance = self.shape.with_headroom();
        let total = |per_instance: u32| self.instances.saturating_mul(per_instance.max(1));
        pool.total_component_instances(self.instances)
            .total_core_instances(total(per_instance.core_instances))
            .total_memories(total(per_instance.memories))
            .total_tables(total(per_instance.tables))
            // Any one component may use the whole pool; the gate keeps them apart.
            .max_core_instances_per_component(total(per_instance.core_instances))
            .max_memories_per_component(total(per_instance.memories))
            .max_tables_per_component(total(per_instance.tables));
    }

    /// How many instances of `shape` fit: the scarcest kind decides.
    pub(crate) fn fits(&self, shape: Shape) -> u32 {
        let (ours, theirs) = (self.shape.with_headroom(), shape.with_headroom());
        let total = |per_instance: u32| self.instances.saturating_mul(per_instance.max(1));
        let fit = |ours: u32, theirs: u32| total(ours) / theirs.max(1);
        fit(ours.core_instances, theirs.core_instances)
            .min(fit(ours.memories, theirs.memories))
            .min(fit(ours.tables, theirs.tables))
            .min(self.instances)
    }
}

/// Admits requests while the pool has room for the served component, queueing the excess
/// for a short while before refusing it.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    size: AtomicU32,
    queue_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// A request's place through the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.instance_slot(false);
    }
}

impl Gate {
    /// A gate of `size` slots; a request waits up to `queue_timeout` for one.
    pub(crate) fn new(size: u32, queue_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        metrics.set_instance_slots(size);
        Self {
            permits: Arc::new(Semaphore::new(size as usize)),
            size: AtomicU32::new(size),
            queue_timeout,
            metrics,
        }
    }

    /// How many requests the gate admits at once.
    pub(crate) fn size(&self) -> u32 {
        self.size.load(Ordering::Relaxed)
    }

    /// A slot, held until the guest is done; `None` if none freed up within the queue
    /// timeout.
    pub(crate) async fn enter(&self) -> Option<Admission> {
        let permit = Arc::clone(&self.permits).acquire_owned();
        let permit = tokio::time::timeout(self.queue_timeout, permit)
            .await
            .ok()?
            .ok()?;
        self.metrics.instance_slot(true);
        Some(Admission {
            _permit: permit,
            metrics: Arc::clone(&self.metrics),
        })
    }

    /// Makes the gate admit `size` requests at once from now on. Shrinking takes slots out
    /// as the requests holding them finish.
    pub(crate) fn resize(&self, size: u32) {
        let old = self.size.swap(size, Ordering::Relaxed);
        self.metrics.set_instance_slots(size);
        if size > old {
            self.permits.add_permits((size - old) as usize);
        } else if size < old {
            let permits = Arc::clone(&self.permits);
            tokio::spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(old - size).await {
                    taken.forget();
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component with two modules, instantiated once each, and one instance made of
    /// exports, which allocates nothing.
    fn two_modules() -> Vec<u8> {
        use wasm_encoder::{
            Component, InstanceSection, MemorySection, MemoryType, Module, ModuleSection, RefType,
            TableSection, TableType,
        };
        let table = TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 1,
            maximum: None,
            shared: false,
        };
        let mut a = Module::new();
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut one_table = TableSection::new();
        one_table.table(table);
        a.section(&one_table).section(&memories);
        let mut b = Module::new();
        let mut two_tables = TableSection::new();
        two_tables.table(table).table(table);
        b.section(&two_tables);
        let mut instances = InstanceSection::new();
        let no_args: [(&str, wasm_encoder::ModuleArg); 0] = [];
        let no_exports: [(&str, wasm_encoder::ExportKind, u32); 0] = [];
        instances
            .instantiate(0, no_args)
            .instantiate(1, no_args)
            .export_items(no_exports);
        let mut component = Component::new();
        component
            .section(&ModuleSection(&a))
            .section(&ModuleSection(&b))
            .section(&instances);
        component.finish()
    }

    #[test]
    fn a_shape_counts_instantiations_and_defined_memories_and_tables() {
        assert_eq!(
            Shape::of(&two_modules()).expect("a component"),
            Shape {
                core_instances: 2,
                memories: 1,
                tables: 3,
            }
        );
    }

    #[test]
    fn the_scarcest_kind_decides_how_many_instances_fit() {
        let sized_for = Shape {
            core_instances: 4,
            memories: 1,
            tables: 2,
        };
        let capacity = Capacity::new(100, sized_for);
        assert_eq!(capacity.fits(sized_for), 100);
        let more_memories = Shape {
            memories: 3,
            ..sized_for
        };
        assert_eq!(capacity.fits(more_memories), 33);
        let more_instances = Shape {
            core_instances: 20,
            ..sized_for
        };
        assert_eq!(
            capacity.fits(more_instances),
            100 * 16 / 48,
            "core instances count with their headroom"
        );
        let smaller = Shape {
            core_instances: 1,
            memories: 1,
            tables: 1,
        };
        assert_eq!(
            capacity.fits(smaller),
            100,
            "never more than the component slots"
        );
    }

    #[tokio::test]
    async fn the_gate_queues_then_refuses_and_resizes() {
        let gate = Gate::new(1, Duration::from_millis(50), Arc::default());
        let held = gate.enter().await.expect("a free slot");
        assert!(
            gate.enter().await.is_none(),
            "full: refused after the queue timeout"
        );
        drop(held);
        let again = gate.enter().await.expect("a slot once it is released");
        gate.resize(2);
        assert!(gate.enter().await.is_some(), "grown by one");
        drop(again);
        gate.resize(1);
        assert_eq!(gate.size(), 1);
    }
}
