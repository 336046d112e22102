//! What `serve` runs with. The command line is one way to build it ([`Config::from`] a
//! [`ServeArgs`](crate::cli::ServeArgs)); tests and embedders build one directly with
//! [`Config::new`] and change the fields they care about. Every default lives here, and the
//! CLI shows these values as its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::kv::{StoreSpec, StoreTimeouts};

/// Where `serve` listens unless told otherwise: every interface, port 8000 (the seed's).
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8000);
/// The component served unless told otherwise (the path in the production image).
pub const DEFAULT_COMPONENT: &str = "/app/task_api.wasm";
/// The store opened unless told otherwise.
pub const DEFAULT_STORE: &str = "redb:./data/store.redb";
/// How long connecting to a networked store (Redis), and each of its commands, may take
/// before the request gets 503.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long startup keeps trying to reach a networked store before it gives up.
pub const DEFAULT_STORE_WAIT: Duration = Duration::from_secs(30);
/// Time for a request body to arrive, and for the guest's whole answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The cap on each of an instance's linear memories: the one the component sizes its
/// batches by.
pub const DEFAULT_MAX_MEMORY: usize = task_api_limits::DEFAULT_MAX_MEMORY;
/// The largest request body accepted: the component's own default, so that a component
/// served elsewhere refuses what task-host refuses.
pub const DEFAULT_MAX_BODY: usize = task_api_limits::DEFAULT_MAX_BODY;
/// How many bytes of compiled components the compile cache keeps: task_api.wasm compiles to
/// about 1 MB in release and several in debug, so this is hundreds of versions, and a
/// development session that swaps in every edit stays bounded.
pub const DEFAULT_CACHE_MAX_SIZE: u64 = 256 << 20;
/// Guest instances running at once.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// How many requests one guest instance serves, one after another.
pub const DEFAULT_INSTANCE_REUSE: u32 = 100;
/// The slowest a request body may arrive, in bytes a second, once [`BODY_GRACE`] is over.
/// A task is a few hundred bytes, which even a poor mobile link sends in well under the
/// grace; one that drips a byte a second is cut off instead of holding its connection.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;
/// How long every request body has before [`DEFAULT_MIN_BODY_RATE`] (`--min-body-rate`)
/// counts.
pub const BODY_GRACE: Duration = Duration::from_secs(5);
/// How long a request waits for a free instance slot.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for a request head to arrive; also the keep-alive idle timeout.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a drain waits for requests in flight.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Client connections open at once, if the open-file limit allows that many.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
/// How long `task-host healthcheck` waits for an answer.
pub const DEFAULT_HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a reload candidate has to answer its probe: a candidate that loops must not
/// hold reloads for a whole request timeout.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The path a reload candidate must answer with 2xx, and `task-host healthcheck` probes.
pub const DEFAULT_PROBE_PATH: &str = "/health";

/// Where compiled components are kept unless told otherwise: the user's cache directory,
/// `$XDG_CACHE_HOME/task-host`, else `$HOME/.cache/task-host`; `None` if neither variable is
/// set. Compiled code is derived, machine-specific data that can be deleted at any time, so
/// it belongs with caches rather than beside the store. In the production image `HOME` is
/// the `/data` volume, the only writable path of a scratch image, so the cache survives a
/// container restart there as the store does.
pub fn default_cache_dir() -> Option<PathBuf> {
    let nonempty = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|dir| dir.join("task-host"))
}

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The wasi:http component to serve.
    pub component: PathBuf,
    /// The key-value store every request shares.
    pub store: StoreSpec,
    /// How long a networked store may take, per command and at startup.
    pub store_timeouts: StoreTimeouts,
    /// Whether to serve from a Redis that evicts keys under memory pressure (losing tasks,
    /// and handing out ids again); refused by default.
    pub redis_allow_eviction: bool,
    /// A body not received by then gets 408; a guest that has not answered by then (from its
    /// start) gets 504, and one still writing its body is cut off.
    pub request_timeout: Duration,
    /// The cap on each of an instance's linear memories, in bytes.
    pub max_memory: usize,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// The slowest a request body may arrive after [`BODY_GRACE`], in bytes a second.
    pub min_body_rate: u64,
    /// Guest instances running at once; the pool is sized for this many of the component.
    pub max_instances: u32,
    /// How many requests one guest instance serves, one after another; 1 gives every
    /// request a fresh instance. Globals of the guest live on between them.
    pub instance_reuse: u32,
    /// How long a request waits for a free instance slot before its 503.
    pub queue_timeout: Duration,
    /// Time for a request head to arrive, from when the server waits for one.
    pub header_timeout: Duration,
    /// Open connections at most; `None` picks a default below the open-file limit.
    pub max_connections: Option<u32>,
    /// Whether to watch the component file and swap in new versions.
    pub watch: bool,
    /// The path a reload candidate must answer `GET` on with 2xx.
    pub probe_path: String,
    /// How long a reload candidate has to answer its probe, at most the request timeout.
    pub probe_timeout: Duration,
    /// How long a drain waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// Where `/metrics`, `/livez` and `/readyz` are served; `None` turns them off.
    pub admin_addr: Option<SocketAddr>,
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// The cache's budget in bytes: past it, the entries used least recently are removed.
    pub cache_max_size: u64,
    /// Where components compiled ahead of time are looked for; `None` looks nowhere.
    pub precompiled_dir: Option<PathBuf>,
}

impl Config {
    /// Serving `component` with every other setting at its default, and a volatile store.
    pub fn new(component: impl Into<PathBuf>) -> Self {
        Self {
            component: component.into(),
            store: StoreSpec::Memory,
            store_timeouts: StoreTimeouts {
                operation: DEFAULT_STORE_TIMEOUT,
                startup: DEFAULT_STORE_WAIT,
            },
            redis_allow_eviction: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
            max_body: DEFAULT_MAX_BODY,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            max_instances: DEFAULT_MAX_INSTANCES,
            instance_reuse: DEFAULT_INSTANCE_REUSE,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: None,
            watch: true,
            probe_path: DEFAULT_PROBE_PATH.to_owned(),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            admin_addr: None,
            cache_dir: default_cache_dir(),
            cache_max_size: DEFAULT_CACHE_MAX_SIZE,
            precompiled_dir: None,
        }
    }
}
