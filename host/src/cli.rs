//! The command line: `task-host serve | healthcheck | check`. Every flag also reads an
//! environment variable, so a container is configured without rewriting its command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kv::StoreSpec;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8000";
/// The component `serve` loads unless told otherwise (the path in the production image).
pub const DEFAULT_COMPONENT: &str = "/app/task_api.wasm";
/// The cap on one instance's linear memory unless told otherwise (`--max-memory 64MiB`).
pub const DEFAULT_MAX_MEMORY: usize = 64 << 20;
/// The store `serve` opens unless told otherwise.
pub const DEFAULT_STORE: &str = "redb:./data/store.redb";

/// Serves wasi:http components with a shared, durable wasi:keyvalue store.
#[derive(Debug, Parser)]
#[command(name = "task-host", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log line format on stderr. Filter with RUST_LOG (default `info`).
    #[arg(long, env = "TASK_HOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a wasi:http component over HTTP/1.1.
    Serve(ServeArgs),
    /// Exit 0 only if a running server answers its health URL with 2xx (for images without curl).
    Healthcheck(HealthcheckArgs),
    /// List a component's imports and exports, and which imports this host cannot provide.
    Check(CheckArgs),
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
    #[arg(long, env = "TASK_HOST_COMPONENT", default_value = DEFAULT_COMPONENT)]
    pub component: PathBuf,

    /// Address to listen on; port 0 picks a free port (the startup line says which).
    #[arg(long, env = "TASK_HOST_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Key-value store: `memory` (volatile) or `redb:PATH` (durable; parent directories are created).
    #[arg(long, env = "TASK_HOST_STORE", default_value = DEFAULT_STORE)]
    pub store: StoreSpec,

    /// A request body not received by then gets 408; a guest that has not responded by then
    /// (counted from when it starts) is interrupted and the client gets 504.
    #[arg(long, env = "TASK_HOST_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Most linear memory one guest instance may grow to; past it the request fails with 500.
    #[arg(long, env = "TASK_HOST_MAX_MEMORY", default_value = "64MiB", value_parser = parse_bytes)]
    pub max_memory: usize,

    /// Largest request body accepted; larger ones get 413 without running the guest. The
    /// guest is told it in bytes, in its environment variable TASK_API_MAX_BODY.
    #[arg(long, env = "TASK_HOST_MAX_BODY", default_value_t = task_api_limits::DEFAULT_MAX_BODY, value_parser = parse_bytes)]
    pub max_body: usize,

    /// Watch the component file and swap in each new version once it is validated
    /// (`--watch false` turns it off; SIGHUP reloads either way).
    #[arg(long, env = "TASK_HOST_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch: bool,

    /// A reload candidate must answer `GET` on this path with 2xx before it is swapped in.
    #[arg(long, env = "TASK_HOST_PROBE_PATH", default_value = "/health", value_parser = parse_probe_path)]
    pub probe_path: String,

    /// Most guest instances running at once. Requests beyond it wait up to --queue-timeout
    /// for a slot, then get 503 with Retry-After.
    #[arg(long, env = "TASK_HOST_MAX_INSTANCES", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_instances: u32,

    /// How long a request may wait for a free instance slot before it gets 503.
    #[arg(long, env = "TASK_HOST_QUEUE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub queue_timeout: Duration,

    /// How long a client may take to send a request's head (request line and headers),
    /// counted from when the server starts waiting for it: on a new connection, and on a
    /// keep-alive connection after its previous answer, so it is also the idle timeout.
    #[arg(long, env = "TASK_HOST_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_nonzero_duration)]
    pub header_timeout: Duration,

    /// Most client connections open at once; more are answered 503 and closed at once.
    /// By default 4096, or less if the open-file limit is lower.
    #[arg(long, env = "TASK_HOST_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish.
    #[arg(long, env = "TASK_HOST_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// `task-host healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe; by default `/health` on the port of TASK_HOST_ADDR (8000) at 127.0.0.1.
    #[arg(long, env = "TASK_HOST_HEALTHCHECK_URL")]
    pub url: Option<hyper::Uri>,

    /// Give up after this long.
    #[arg(long, env = "TASK_HOST_HEALTHCHECK_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `task-host check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The component file to inspect.
    pub file: PathBuf,
}

/// `task-host echo`.
#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// The words to print.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// A timeout that is off at zero would be a trap in a flag meant to bound clients.
fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text).map_err(|error| error.to_string())? {
        Duration::ZERO => Err("must be greater than zero".to_owned()),
        duration => Ok(duration),
    }
}

/// A probe path is an absolute request path, like `/health`.
fn parse_probe_path(text: &str) -> Result<String, String> {
    match text.parse::<hyper::Uri>() {
        Ok(uri) if text.starts_with('/') && uri.scheme().is_none() => Ok(text.to_owned()),
        _ => Err(format!("{text:?} is not a request path like /health")),
    }
}

/// Parses `1048576`, `1MiB`, `64 MB` and the like into a byte count.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text.parse()?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{text} does not fit in memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_memory_cap_is_the_constant() {
        assert_eq!(parse_bytes("64MiB"), Ok(DEFAULT_MAX_MEMORY));
    }

    #[test]
    fn byte_sizes_accept_units() {
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
