//! What an operator can see from outside: every metric the host keeps, in one registry,
//! encoded in the Prometheus text format by `prometheus-client` for `GET /metrics` on the
//! admin listener ([`crate::ops::admin`]).
//!
//! Each server owns one [`Metrics`] and hands it to the parts that count: the connection
//! loop, the handler and the response body, the reloader, and the key-value backend, which
//! is wrapped in [`crate::kv::Instrumented`]. Label values come from small fixed sets
//! (method names are folded into `other` past the common ones), so no client can grow the
//! number of series.

use std::time::Duration;

use hyper::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of a scrape.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Requests by method and status class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: &'static str,
}

/// A guest failure: what happened, and whether the head had gone out.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
    phase: &'static str,
}

/// One label named `reason`, `outcome` or the like.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// A reload's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Where a request's guest instance came from.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

/// The served component.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    sha256: String,
}

/// A key-value operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KvLabels {
    /// The WIT function, e.g. `get` or `increment`.
    pub(crate) op: &'static str,
    /// `memory`, `redb` or `redis`.
    pub(crate) backend: &'static str,
}

/// The build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Whether a guest failed before or after its response head went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The client got a JSON error.
    BeforeHead,
    /// The client got a cut-off body.
    AfterHead,
}

/// Every metric of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histogram,
    in_flight: Gauge,
    instance_slots: Gauge,
    instance_slots_in_use: Gauge,
    guest_instances: Family<SourceLabel, Counter>,
    guest_failures: Family<FailureLabels, Counter>,
    bodies_refused: Family<ReasonLabel, Counter>,
    connections_open: Gauge,
    connections_refused: Counter,
    reloads: Family<OutcomeLabel, Counter>,
    component: Family<ComponentLabel, Gauge>,
    kv_operations: Family<KvLabels, Counter>,
    kv_errors: Family<KvLabels, Counter>,
    kv_duration: Family<KvLabels, Histogram>,
    kv_batch_size: Histogram,
    compile_cache_lookups: Family<OutcomeLabel, Counter>,
    compile_cache_write_errors: Counter,
}

/// Latency buckets from 100 µs to about 26 s, a factor of 4 apart.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 4.0, 10)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("task_host");
        let metrics = Self {
            requests: Family::default(),
            request_duration: Histogram::new(latency_buckets()),
            in_flight: Gauge::default(),
            instance_slots: Gauge::default(),
            instance_slots_in_use: Gauge::default(),
            guest_instances: Family::default(),
            guest_failures: Family::default(),
            bodies_refused: Family::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            reloads: Family::default(),
            component: Family::default(),
            kv_operations: Family::default(),
            kv_errors: Family::default(),
            kv_duration: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            // 1, 2, 4, … 512: a batch holds at most 512 writes.
            kv_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            compile_cache_lookups: Family::default(),
            compile_cache_write_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "HTTP requests answered, by method and status class",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "From a request's arrival to the end of its answer's body",
            Unit::Seconds,
            metrics.request_duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being answered",
            metrics.in_flight.clone(),
        );
        registry.register(
            "instance_slots",
            "Guest instances that may run at once",
            metrics.instance_slots.clone(),
        );
        registry.register(
            "instance_slots_in_use",
            "Guest instances running",
            metrics.instance_slots_in_use.clone(),
        );
        registry.register(
            "guest_instances",
            "Requests handed to a guest instance, by its source: instantiated for the request (new), or kept from an earlier one (reused, see --instance-reuse)",
            metrics.guest_instances.clone(),
        );
        registry.register(
            "guest_failures",
            "Guest traps, timeouts, memory limit hits, full pools and store outages, by kind and by whether the response head had gone out",
            metrics.guest_failures.clone(),
        );
        registry.register(
            "bodies_refused",
            "Request bodies refused: too_large (413) or too_slow (408)",
            metrics.bodies_refused.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open",
            metrics.connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Client connections refused over --max-connections",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "reloads",
            "Component reloads by outcome: swapped, rejected or unchanged",
            metrics.reloads.clone(),
        );
        registry.register(
            "component_info",
            "The served component, by sha256 (always 1)",
            metrics.component.clone(),
        );
        registry.register(
            "kv_operations",
            "Key-value operations, by operation and backend",
            metrics.kv_operations.clone(),
        );
        registry.register(
            "kv_errors",
            "Key-value operations that failed, by operation and backend",
            metrics.kv_errors.clone(),
        );
        registry.register_with_unit(
            "kv_operation_duration",
            "Key-value operation latency, by operation and backend",
            Unit::Seconds,
            metrics.kv_duration.clone(),
        );
        registry.register(
            "kv_batch_size",
            "Writes per commit of a store that commits them in batches (redb): each batch shares one fsync",
            metrics.kv_batch_size.clone(),
        );
        registry.register(
            "compile_cache_lookups",
            "Compile cache lookups for a component to serve, by outcome: hit, miss, or invalid (an entry refused and compiled afresh)",
            metrics.compile_cache_lookups.clone(),
        );
        registry.register(
            "compile_cache_write_errors",
            "Compiled components that could not be written to the compile cache",
            metrics.compile_cache_write_errors.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The task-host build (always 1)", build);
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// The scrape: every metric in the Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// A request arrived; it counts as in flight until the mark is dropped, which also
    /// covers a request whose client went away before any answer.
    pub(crate) fn request_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// A request's answer is over.
    pub(crate) fn request_finished(&self, method: &Method, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: method_label(method),
            status: match status {
                100..=199 => "1xx",
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            },
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration.observe(took.as_secs_f64());
    }

    /// A guest failed: `kind` is `trap`, `timeout`, `memory_limit`, `busy`,
    /// `store_unavailable` or `error`.
    pub(crate) fn guest_failed(&self, kind: &'static str, phase: Phase) {
        let phase = match phase {
            Phase::BeforeHead => "before_head",
            Phase::AfterHead => "after_head",
        };
        self.guest_failures
            .get_or_create(&FailureLabels { kind, phase })
            .inc();
    }

    /// A request body was refused: `too_large` or `too_slow`.
    pub(crate) fn body_refused(&self, reason: &'static str) {
        self.bodies_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The gate admits `slots` instances at once.
    pub(crate) fn set_instance_slots(&self, slots: u32) {
        self.instance_slots.set(i64::from(slots));
    }

    /// A guest instance took a slot (`true`) or gave it back.
    pub(crate) fn instance_slot(&self, taken: bool) {
        if taken {
            self.instance_slots_in_use.inc();
        } else {
            self.instance_slots_in_use.dec();
        }
    }

    /// A request was handed to a guest instance kept from an earlier request (`true`), or
    /// to one instantiated for it.
    pub(crate) fn guest_instance(&self, reused: bool) {
        let source = if reused { "reused" } else { "new" };
        self.guest_instances
            .get_or_create(&SourceLabel { source })
            .inc();
    }

    /// A connection opened (`true`) or closed.
    pub(crate) fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.inc();
        } else {
            self.connections_open.dec();
        }
    }

    /// A connection was refused over the cap; returns how many were, so far.
    pub(crate) fn connection_refused(&self) -> u64 {
        self.connections_refused.inc() + 1
    }

    /// A reload ended: `swapped`, `rejected` or `unchanged`.
    pub(crate) fn reloaded(&self, outcome: &'static str) {
        self.reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// `sha256` is served from now on (and no other).
    pub(crate) fn serving(&self, sha256: &str) {
        self.component.clear();
        self.component
            .get_or_create(&ComponentLabel {
                sha256: sha256.to_owned(),
            })
            .set(1);
    }

    /// The compile cache was asked for a component: `hit`, `miss` or `invalid`.
    pub(crate) fn compile_cache_lookup(&self, outcome: &'static str) {
        self.compile_cache_lookups
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// A compiled component could not be written to the compile cache.
    pub(crate) fn compile_cache_write_failed(&self) {
        self.compile_cache_write_errors.inc();
    }

    /// A key-value operation took `took`, and failed or not.
    pub(crate) fn kv_operation(&self, labels: &KvLabels, took: Duration, failed: bool) {
        self.kv_operations.get_or_create(labels).inc();
        self.kv_duration
            .get_or_create(labels)
            .observe(took.as_secs_f64());
        if failed {
            self.kv_errors.get_or_create(labels).inc();
        }
    }

    /// The store committed `writes` writes together.
    pub(crate) fn kv_batch(&self, writes: usize) {
        self.kv_batch_size.observe(writes as f64);
    }
}

/// A request in flight, from [`Metrics::request_started`] until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A method as a label: the common ones by name, anything else as `other`, so that clients
/// cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_family_with_the_prefix() {
        let metrics = Metrics::default();
        drop(metrics.request_started());
        metrics.request_finished(
            &Method::from_bytes(b"BREW").expect("a method"),
            418,
            Duration::from_millis(3),
        );
        metrics.serving("abc");
        metrics.serving("def");
        let text = metrics.encode();
        assert!(
            text.contains(r#"task_host_requests_total{method="other",status="4xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"task_host_component_info{sha256="def"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"sha256="abc""#),
            "only the served one: {text}"
        );
        assert!(text.contains("task_host_build_info{version="), "{text}");
        assert!(text.contains("task_host_requests_in_flight 0"), "{text}");
    }
}
