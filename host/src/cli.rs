//! The command line: `task-host serve | healthcheck | check | precompile`. Every flag also
//! reads an environment variable, so a container is configured without rewriting its
//! command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand, ValueEnum};
use humantime::Duration as Span;
use tracing_subscriber::filter::Targets;

use crate::config::{self, Config};
use crate::kv::{StoreSpec, StoreTimeouts};

/// The environment variable of `--addr`, which `healthcheck` reads too.
pub const ADDR_ENV: &str = "TASK_HOST_ADDR";

/// Serves wasi:http components with a shared, durable wasi:keyvalue store.
#[derive(Debug, Parser)]
#[command(name = "task-host", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, env = "TASK_HOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Which events to log: a level (`info`), or targets with levels
    /// (`warn,task_host=debug`). A filter that does not parse stops the host at startup.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log: Targets,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a wasi:http component over HTTP/1.1.
    Serve(Box<ServeArgs>),
    /// Exit 0 only if a running server answers its health URL with 2xx (for images without curl).
    Healthcheck(HealthcheckArgs),
    /// List a component's imports and exports, and which imports this host cannot provide.
    Check(CheckArgs),
    /// Compile a component ahead of time for a target, into the directory that
    /// `serve --precompiled-dir` reads on a machine of that architecture.
    Precompile(PrecompileArgs),
    /// Print the name of the user this process runs as (the image has no `whoami`).
    Whoami,
    /// Print the arguments, separated by spaces (the image has no shell and no `echo`).
    Echo(EchoArgs),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// `task-host serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The wasi:http component to serve (a .wasm component, not a core module).
    #[arg(long, env = "TASK_HOST_COMPONENT", default_value = config::DEFAULT_COMPONENT)]
    pub component: PathBuf,

    /// Address to listen on; port 0 picks a free port (the startup line says which).
    #[arg(long, env = ADDR_ENV, default_value_t = config::DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Key-value store: `memory` (volatile), `redb:PATH` (durable; parent directories are
    /// created) or `redis://HOST:PORT[/DB]` (`rediss://` for TLS; shared by every replica
    /// that names it, as durable as its persistence settings).
    #[arg(long, env = "TASK_HOST_STORE", default_value = config::DEFAULT_STORE, hide_env_values = true, value_parser = StoreParser)]
    pub store: StoreSpec,

    /// Redis: how long connecting and each command may take; past it the request gets 503
    /// `Store unavailable`.
    #[arg(long, env = "TASK_HOST_STORE_TIMEOUT", default_value_t = config::DEFAULT_STORE_TIMEOUT.into(), value_parser = parse_nonzero_duration)]
    pub store_timeout: Span,

    /// Redis: how long startup keeps trying to reach the store before it exits with an error,
    /// so that the order in which containers start does not matter.
    #[arg(long, env = "TASK_HOST_STORE_WAIT", default_value_t = config::DEFAULT_STORE_WAIT.into())]
    pub store_wait: Span,

    /// Redis: serve even though its maxmemory-policy evicts keys (`allkeys-*`), which loses
    /// tasks and hands out their ids again. Off: such a Redis is refused at startup.
    #[arg(long, env = "TASK_HOST_REDIS_ALLOW_EVICTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_allow_eviction: bool,

    /// A request body not received by then gets 408; a guest that has not answered by then
    /// (counted from when it starts) is interrupted with 504, or cut off mid-body.
    #[arg(long, env = "TASK_HOST_REQUEST_TIMEOUT", default_value_t = config::DEFAULT_REQUEST_TIMEOUT.into())]
    pub request_timeout: Span,

    /// Most linear memory one guest instance may grow to; past it the request fails with 500.
    #[arg(long, env = "TASK_HOST_MAX_MEMORY", default_value_t = bytes(config::DEFAULT_MAX_MEMORY), value_parser = parse_bytes)]
    pub max_memory: ByteSize,

    /// Largest request body accepted; larger ones get 413 without running the guest. The
    /// guest is told it in bytes, in its environment variable TASK_API_MAX_BODY.
    #[arg(long, env = "TASK_HOST_MAX_BODY", default_value_t = bytes(config::DEFAULT_MAX_BODY), value_parser = parse_bytes)]
    pub max_body: ByteSize,

    /// The slowest a request body may arrive, in bytes a second (on average, once its first
    /// 5 s are over); a slower one gets 408 and its connection is closed.
    #[arg(long, env = "TASK_HOST_MIN_BODY_RATE", default_value_t = ByteSize(config::DEFAULT_MIN_BODY_RATE), value_parser = parse_bytes)]
    pub min_body_rate: ByteSize,

    /// Watch the component file and swap in each new version once it is validated
    /// (`--watch false` turns it off; SIGHUP reloads either way).
    #[arg(long, env = "TASK_HOST_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch: bool,

    /// A reload candidate must answer `GET` on this path with 2xx before it is swapped in.
    #[arg(long, env = "TASK_HOST_PROBE_PATH", default_value = config::DEFAULT_PROBE_PATH, value_parser = parse_probe_path)]
    pub probe_path: String,

    /// How long a reload candidate has to answer its probe before it is rejected (at most
    /// --request-timeout).
    #[arg(long, env = "TASK_HOST_PROBE_TIMEOUT", default_value_t = config::DEFAULT_PROBE_TIMEOUT.into(), value_parser = parse_nonzero_duration)]
    pub probe_timeout: Span,

    /// Most guest instances running at once. Requests beyond it wait up to --queue-timeout
    /// for a slot, then get 503 with Retry-After.
    #[arg(long, env = "TASK_HOST_MAX_INSTANCES", default_value_t = config::DEFAULT_MAX_INSTANCES, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_instances: u32,

    /// How many requests one guest instance serves, one after another, before it is
    /// replaced; 1 gives every request a fresh instance. A reused instance keeps its
    /// globals and heap from request to request; one that trapped, ran out its deadline,
    /// hit a limit or was serving during a swap is never reused.
    #[arg(long, env = "TASK_HOST_INSTANCE_REUSE", default_value_t = config::DEFAULT_INSTANCE_REUSE, value_parser = clap::value_parser!(u32).range(1..))]
    pub instance_reuse: u32,

    /// How long a request may wait for a free instance slot before it gets 503.
    #[arg(long, env = "TASK_HOST_QUEUE_TIMEOUT", default_value_t = config::DEFAULT_QUEUE_TIMEOUT.into())]
    pub queue_timeout: Span,

    /// How long a client may take to send a request's head (request line and headers),
    /// counted from when the server starts waiting for it: on a new connection, and on a
    /// keep-alive connection after its previous answer, so it is also the idle timeout.
    #[arg(long, env = "TASK_HOST_HEADER_TIMEOUT", default_value_t = config::DEFAULT_HEADER_TIMEOUT.into(), value_parser = parse_nonzero_duration)]
    pub header_timeout: Span,

    /// Most client connections open at once; more are answered 503 and closed at once.
    /// By default 4096, or less if the open-file limit is lower.
    #[arg(long, env = "TASK_HOST_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Serve `GET /metrics` (Prometheus), `/livez` and `/readyz` on this address, apart from
    /// the API. Off unless set; in a container, e.g. `0.0.0.0:9090`.
    #[arg(long, env = "TASK_HOST_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// Keep compiled components here, keyed by their sha256 and the engine's build, so that a
    /// restart or a swap back to a version seen before skips compiling. Default:
    /// `$XDG_CACHE_HOME/task-host`, else `$HOME/.cache/task-host` (in the image, `/data/.cache/
    /// task-host` on its volume). Created 0700; one others can write to is not used.
    #[arg(long, env = "TASK_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The most the compile cache keeps; past it, after each write, the entries used least
    /// recently are removed.
    #[arg(long, env = "TASK_HOST_CACHE_MAX_SIZE", default_value_t = ByteSize(config::DEFAULT_CACHE_MAX_SIZE), value_parser = parse_bytes)]
    pub cache_max_size: ByteSize,

    /// Components compiled ahead of time by `task-host precompile`, used when the cache has
    /// none for this machine (the image ships its component's here). Must belong to root or
    /// to this user, and be writable by no one else. Off unless set.
    #[arg(long, env = "TASK_HOST_PRECOMPILED_DIR")]
    pub precompiled_dir: Option<PathBuf>,

    /// `--compile-cache false` compiles the component on every start and reload, and neither
    /// reads nor writes --cache-dir.
    #[arg(long, env = "TASK_HOST_COMPILE_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub compile_cache: bool,

    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish.
    #[arg(long, env = "TASK_HOST_SHUTDOWN_TIMEOUT", default_value_t = config::DEFAULT_SHUTDOWN_TIMEOUT.into())]
    pub shutdown_timeout: Span,
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        // `parse_bytes` admitted only sizes that fit in memory.
        let in_memory = |size: ByteSize| usize::try_from(size.as_u64()).unwrap_or(usize::MAX);
        Self {
            component: args.component,
            store: args.store,
            store_timeouts: StoreTimeouts {
                operation: args.store_timeout.into(),
                startup: args.store_wait.into(),
            },
            redis_allow_eviction: args.redis_allow_eviction,
            request_timeout: args.request_timeout.into(),
            max_memory: in_memory(args.max_memory),
            max_body: in_memory(args.max_body),
            min_body_rate: args.min_body_rate.as_u64(),
            max_instances: args.max_instances,
            instance_reuse: args.instance_reuse,
            queue_timeout: args.queue_timeout.into(),
            header_timeout: args.header_timeout.into(),
            max_connections: args.max_connections,
            watch: args.watch,
            probe_path: args.probe_path,
            probe_timeout: args.probe_timeout.into(),
            shutdown_timeout: args.shutdown_timeout.into(),
            admin_addr: args.admin_addr,
            cache_max_size: args.cache_max_size.as_u64(),
            precompiled_dir: args.precompiled_dir,
            cache_dir: if args.compile_cache {
                args.cache_dir.or_else(config::default_cache_dir)
            } else {
                None
            },
        }
    }
}

/// `task-host healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe; by default `/health` on the port of TASK_HOST_ADDR (8000) at 127.0.0.1.
    #[arg(long, env = "TASK_HOST_HEALTHCHECK_URL")]
    pub url: Option<hyper::Uri>,

    /// Give up after this long.
    #[arg(long, env = "TASK_HOST_HEALTHCHECK_TIMEOUT", default_value_t = config::DEFAULT_HEALTHCHECK_TIMEOUT.into())]
    pub timeout: Span,
}

/// `task-host check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The component file to inspect.
    pub file: PathBuf,
}

/// `task-host precompile`.
#[derive(Debug, Clone, Args)]
pub struct PrecompileArgs {
    /// The component file to compile.
    pub file: PathBuf,

    /// The target triple to compile for, such as `aarch64-unknown-linux-musl`. By default
    /// this machine's architecture, assuming none of this CPU's optional features, so that
    /// the artifact loads on any machine of the architecture.
    #[arg(long)]
    pub target: Option<String>,

    /// Where to write the artifact (`{sha256}-{arch}.cwasm`); created if need be.
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// `task-host echo`.
#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// The words to print.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// Parses `--store`. clap's own message for a value that does not parse quotes the value,
/// and a Redis URL may carry a password, so this one says what is wrong without it.
#[derive(Debug, Clone, Copy)]
struct StoreParser;

impl clap::builder::TypedValueParser for StoreParser {
    type Value = StoreSpec;

    fn parse_ref(
        &self,
        command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<StoreSpec, clap::Error> {
        let refuse = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --store: {reason}\n"),
            )
            .with_cmd(command)
        };
        value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8".to_owned()))?
            .parse()
            .map_err(refuse)
    }
}

/// A timeout that is off at zero would be a trap in a flag meant to bound clients.
fn parse_nonzero_duration(text: &str) -> Result<Span, String> {
    match humantime::parse_duration(text).map_err(|error| error.to_string())? {
        Duration::ZERO => Err("must be greater than zero".to_owned()),
        duration => Ok(duration.into()),
    }
}

/// A probe path is an absolute request path, like `/health`.
fn parse_probe_path(text: &str) -> Result<String, String> {
    match text.parse::<hyper::Uri>() {
        Ok(uri) if text.starts_with('/') && uri.scheme().is_none() => Ok(text.to_owned()),
        _ => Err(format!("{text:?} is not a request path like /health")),
    }
}

/// Parses `1048576`, `1MiB`, `64 MB` and the like into a byte count that fits in memory.
fn parse_bytes(text: &str) -> Result<ByteSize, String> {
    let size: ByteSize = text.parse()?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{text} does not fit in memory"))?;
    Ok(size)
}

/// A byte count as the CLI shows it.
fn bytes(count: usize) -> ByteSize {
    ByteSize(count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_accept_units() {
        assert_eq!(parse_bytes("1MiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(parse_bytes("4096"), Ok(ByteSize(4096)));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn the_cli_defaults_are_the_config_defaults() {
        let argv = [
            "task-host",
            "serve",
            "--component",
            "app.wasm",
            "--store",
            "memory",
        ];
        let Command::Serve(args) = Cli::try_parse_from(argv).expect("valid").command else {
            panic!("serve parses as serve");
        };
        let from_cli = Config::from(*args);
        let direct = Config::new("app.wasm");
        assert_eq!(format!("{from_cli:?}"), format!("{direct:?}"));
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
