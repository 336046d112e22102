//! Which servers the bench runs, in [`SERVERS`], and each one's command line.
//!
//! The list is data: a server is one entry, a [`Kind`] saying how it is started and the
//! [`Role`] it plays in the ratio table. task-host runs on each store twice: with instance
//! reuse at its default, and with `--instance-reuse 1`, a fresh instance per request.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::bench::fastapi::FastApi;
use crate::bench::scenario::Scenario;
use crate::load::host_command;

/// One server the bench runs.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Its name in the tables and the chart.
    pub(crate) label: &'static str,
    pub(crate) kind: Kind,
    pub(crate) role: Role,
    /// Scenarios it cannot take part in, each with the footnote that says why.
    pub(crate) excluded: &'static [(Scenario, &'static str)],
}

/// How a server is started.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// The release task-host serving task_api.wasm on `store`, with more `flags`.
    TaskHost {
        store: Store,
        flags: &'static [&'static str],
    },
    /// Stock `wasmtime serve -S cli -S keyvalue` with the plain task_api.wasm.
    WasmtimePlain,
    /// Stock `wasmtime serve` with task_api_standalone.wasm and a `--dir` for its files.
    WasmtimeStandalone,
    /// `bench/native-baseline`: the API's own code on hyper, with no wasm.
    Native,
    /// The seed's FastAPI app under gunicorn, 2 uvicorn workers.
    FastApi,
}

/// task-host's `--store`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Store {
    Memory,
    /// A redb file in the server's directory.
    Redb,
}

/// What a server is in the ratio table: task-host rows, the others columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    TaskHost,
    WasmtimePlain,
    WasmtimeStandalone,
    Native,
    FastApi,
}

impl Role {
    /// The peers task-host is compared with, in column order.
    pub(crate) const PEERS: [Self; 4] = [
        Self::WasmtimePlain,
        Self::WasmtimeStandalone,
        Self::Native,
        Self::FastApi,
    ];

    /// A column heading of the ratio table.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::TaskHost => "task-host",
            Self::WasmtimePlain => "vs wasmtime serve",
            Self::WasmtimeStandalone => "vs standalone",
            Self::Native => "vs native",
            Self::FastApi => "vs FastAPI",
        }
    }
}

const EMPTY_STORE: &str = "stock `wasmtime serve -S keyvalue` gives every request an empty \
                           store: its POST and GET /tasks are not comparable";
const NO_CACHE_FLAG: &str = "wasmtime serve's starts are measured once, with the plain component";

/// task-host with a fresh instance for every request, as before instance reuse.
const NO_REUSE: &[&str] = &["--instance-reuse", "1"];

/// Every server, in the order they run.
pub(crate) const SERVERS: &[Spec] = &[
    Spec {
        label: "task-host, memory",
        kind: Kind::TaskHost {
            store: Store::Memory,
            flags: &[],
        },
        role: Role::TaskHost,
        excluded: &[],
    },
    Spec {
        label: "task-host, redb",
        kind: Kind::TaskHost {
            store: Store::Redb,
            flags: &[],
        },
        role: Role::TaskHost,
        excluded: &[],
    },
    Spec {
        label: "task-host, memory, no reuse",
        kind: Kind::TaskHost {
            store: Store::Memory,
            flags: NO_REUSE,
        },
        role: Role::TaskHost,
        excluded: &[],
    },
    Spec {
        label: "task-host, redb, no reuse",
        kind: Kind::TaskHost {
            store: Store::Redb,
            flags: NO_REUSE,
        },
        role: Role::TaskHost,
        excluded: &[],
    },
    Spec {
        label: "wasmtime serve, plain",
        kind: Kind::WasmtimePlain,
        role: Role::WasmtimePlain,
        excluded: &[
            (Scenario::Create, EMPTY_STORE),
            (Scenario::ListSmall, EMPTY_STORE),
            (Scenario::ListLarge, EMPTY_STORE),
        ],
    },
    Spec {
        label: "wasmtime serve, standalone",
        kind: Kind::WasmtimeStandalone,
        role: Role::WasmtimeStandalone,
        excluded: &[
            (Scenario::StartCold, NO_CACHE_FLAG),
            (Scenario::StartWarm, NO_CACHE_FLAG),
        ],
    },
    Spec {
        label: "native baseline (hyper)",
        kind: Kind::Native,
        role: Role::Native,
        excluded: &[],
    },
    Spec {
        label: "FastAPI, gunicorn -w 2",
        kind: Kind::FastApi,
        role: Role::FastApi,
        excluded: &[],
    },
];

/// How a start treats compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    /// A compile cache that may hold the component already.
    Warm,
    /// No compiled code: task-host gets an empty cache directory, wasmtime no cache.
    Cold,
}

/// What the servers are started from.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) task_host: PathBuf,
    pub(crate) task_api: PathBuf,
    pub(crate) standalone: PathBuf,
    pub(crate) native: PathBuf,
    /// The seed app's venv, or the one line that says why there is none.
    pub(crate) fastapi: Result<FastApi, String>,
    /// Whether `wasmtime` can be started, or why not.
    pub(crate) wasmtime: Result<(), String>,
}

impl Spec {
    /// Whether the server can run at all here, or the one line that says why not.
    pub(crate) fn available(&self, binaries: &Binaries) -> Result<(), String> {
        match self.kind {
            Kind::WasmtimePlain | Kind::WasmtimeStandalone => binaries.wasmtime.clone(),
            Kind::FastApi => binaries.fastapi.as_ref().map(|_| ()).map_err(Clone::clone),
            Kind::TaskHost { .. } | Kind::Native => Ok(()),
        }
    }

    /// Whether its cold and warm starts differ: only a wasm server compiles.
    pub(crate) fn compiles(&self) -> bool {
        matches!(
            self.kind,
            Kind::TaskHost { .. } | Kind::WasmtimePlain | Kind::WasmtimeStandalone
        )
    }

    /// The command line that starts it on a free port of 127.0.0.1, keeping its files
    /// (store, compile cache) in `dir`, with compiled code as `cache` says.
    pub(crate) fn command(
        &self,
        binaries: &Binaries,
        dir: &Path,
        cache: Cache,
    ) -> anyhow::Result<Command> {
        Ok(match self.kind {
            Kind::TaskHost { store, flags } => {
                let store = match store {
                    Store::Memory => "memory".to_owned(),
                    Store::Redb => format!("redb:{}", dir.join("store.redb").display()),
                };
                let mut command = host_command(&binaries.task_host, &binaries.task_api, &store);
                let cache_dir = match cache {
                    Cache::Warm => dir.join("compile-cache"),
                    // A directory no start has used: the cache misses.
                    Cache::Cold => unused_dir(dir, "cold-cache")?,
                };
                command.arg("--cache-dir").arg(cache_dir).args(flags);
                command
            }
            Kind::WasmtimePlain => {
                let cache = match cache {
                    Cache::Warm => "cache=y",
                    Cache::Cold => "cache=n",
                };
                test_support::wasmtime_serve_with(&["-C", cache], &binaries.task_api)
            }
            Kind::WasmtimeStandalone => {
                std::fs::create_dir_all(dir.join("data"))?;
                test_support::wasmtime_serve_standalone(&binaries.standalone, dir)
            }
            Kind::Native => {
                let mut command = Command::new(&binaries.native);
                command.args(["--addr", "127.0.0.1:0"]);
                command
            }
            Kind::FastApi => match &binaries.fastapi {
                Ok(fastapi) => fastapi.command()?,
                Err(why) => anyhow::bail!("{why}"),
            },
        })
    }
}

/// A directory under `dir` that does not exist yet, named from `prefix`.
fn unused_dir(dir: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    for n in 0.. {
        let candidate = dir.join(format!("{prefix}-{n}"));
        if !candidate.exists() {
            return Ok(candidate);
        }
    }
    anyhow::bail!("no free name for a {prefix} directory in {}", dir.display())
}
