//! `cargo xtask bench`: load from `wrk` on 127.0.0.1 against the release task-host (redb and
//! memory stores) and against stock `wasmtime serve`, printed as a table; then the time a
//! component swap takes, from the file's rename to the first response from the new version.
//! Numbers only: no thresholds, so the same command serves for before/after comparisons on
//! one machine.
//!
//! `GET /tasks` is measured with 100 and with 10,000 tasks stored: a full listing should
//! cost about a hundred times more at the larger size, and the ratio of the two rates says
//! how close it comes. After `POST /tasks` on a store that commits in batches (redb), the
//! mean number of writes per commit during that load is printed, from the host's metrics.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use test_support::ServerChild;

use crate::workspace::Workspace;
use crate::workspace_root;

/// wrk settings: two threads (the machine has two cores), 32 connections.
const WRK_ARGS: &[&str] = &["-t2", "-c32", "--latency"];
/// Connections seeding tasks at once.
const SEEDERS: usize = 8;

/// One measured scenario.
struct Scenario {
    name: &'static str,
    path: &'static str,
    /// Tasks stored when the load starts; scenarios run in order and tasks are only added.
    tasks: usize,
    /// The wrk Lua script that shapes each request, if it is not a plain `GET path`.
    script: Option<&'static str>,
}

const POST_SCRIPT: &str = r#"wrk.method = "POST"
wrk.body = '{"title":"bench","description":"load"}'
wrk.headers["Content-Type"] = "application/json"
"#;

const HEALTH: Scenario = Scenario {
    name: "GET /health",
    path: "/health",
    tasks: 0,
    script: None,
};

/// What a task-host is measured on, in this order.
const TASK_HOST_SCENARIOS: &[Scenario] = &[
    HEALTH,
    Scenario {
        name: "GET /tasks (100 tasks)",
        path: "/tasks",
        tasks: 100,
        script: None,
    },
    Scenario {
        name: "GET /tasks (10,000 tasks)",
        path: "/tasks",
        tasks: 10_000,
        script: None,
    },
    Scenario {
        name: "POST /tasks",
        path: "/tasks",
        tasks: 10_000,
        script: Some(POST_SCRIPT),
    },
];

/// Runs every scenario for `seconds` each and prints the table.
pub(crate) fn run(seconds: u32) -> anyhow::Result<()> {
    let workspace = Workspace::load()?;
    let component = workspace.wasm_dir("release").join("task_api.wasm");
    let host = workspace.target_dir.join("release/task-host");
    let work = workspace_root().join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let duration = format!("{seconds}s");

    println!(
        "{:<34} {:<26} {:>10} {:>9} {:>9}",
        "server", "scenario", "req/s", "p50", "p99"
    );
    let redb = format!("redb:{}", work.join("store.redb").display());
    let servers: [(&str, Command, &[Scenario]); 3] = [
        (
            "task-host --store redb",
            host_command(&host, &component, &redb),
            TASK_HOST_SCENARIOS,
        ),
        (
            "task-host --store memory",
            host_command(&host, &component, "memory"),
            TASK_HOST_SCENARIOS,
        ),
        // Its store is empty for every request: only what needs no state compares.
        (
            "wasmtime serve -S keyvalue",
            test_support::wasmtime_serve(&component),
            &[HEALTH],
        ),
    ];
    for (label, command, scenarios) in servers {
        measure_throughput(label, command, scenarios, &duration, &work)?;
    }
    measure_swaps(&component, &host, &work)
}

/// Runs every wrk scenario against one server; wrk's scripts are written to `work`.
fn measure_throughput(
    label: &str,
    command: Command,
    scenarios: &[Scenario],
    duration: &str,
    work: &Path,
) -> anyhow::Result<()> {
    let mut server = Server::start(command, label, &work.join("server.log"))?;
    // (tasks, req/s) of each `GET /tasks`, in the order run, which is by size.
    let mut listings = Vec::new();
    for scenario in scenarios {
        server.seed(scenario.tasks)?;
        let batches_before = server.batches()?;
        let mut wrk = Command::new("wrk");
        wrk.args(WRK_ARGS).args(["-d", duration]);
        if let Some(source) = scenario.script {
            let script = work.join("scenario.lua");
            std::fs::write(&script, source)?;
            wrk.arg("-s").arg(script);
        }
        let report = wrk
            .arg(format!("http://{}{}", server.addr(), scenario.path))
            .output()
            .context("running wrk")?;
        let (rate, p50, p99, errors) = parse_wrk(&String::from_utf8_lossy(&report.stdout));
        let mut notes = Vec::new();
        if !errors.is_empty() {
            notes.push(errors);
        }
        if let (Some(before), Some(after)) = (batches_before, server.batches()?) {
            let (writes, commits) = (after.0 - before.0, after.1 - before.1);
            if commits > 0.0 {
                notes.push(format!("{:.1} writes per commit", writes / commits));
            }
        }
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        println!(
            "{label:<34} {:<26} {rate:>10} {p50:>9} {p99:>9}{note}",
            scenario.name
        );
        if scenario.path == "/tasks" && scenario.script.is_none() {
            listings.extend(rate.parse::<f64>().ok().map(|rate| (scenario.tasks, rate)));
        }
    }
    // Under full load a listing's cost is the inverse of its rate.
    if let (Some((fewest, rate_of_fewest)), Some((most, rate_of_most))) =
        (listings.first(), listings.last())
        && most > fewest
    {
        println!(
            "{label:<34} a listing of {most} tasks costs {:.0}x one of {fewest} (linear: {}x)",
            rate_of_fewest / rate_of_most,
            most / fewest.max(&1)
        );
    }
    Ok(())
}

/// Swaps between task_api.wasm and hello_component.wasm under a running release task-host
/// and prints the time from the rename to the first response from the new version.
fn measure_swaps(task_api: &Path, host: &Path, work: &Path) -> anyhow::Result<()> {
    const SWAPS: usize = 6;
    let hello = task_api.with_file_name("hello_component.wasm");
    let versions = [
        (hello, "swapped-in"),
        (task_api.to_path_buf(), "Task Manager API"),
    ];
    let served = work.join("served.wasm");
    std::fs::copy(&versions[1].0, &served)?;
    let server = Server::start(
        host_command(host, &served, "memory"),
        "task-host --watch",
        &work.join("swap.log"),
    )?;
    let addr = server.addr();
    println!();
    println!("component swap: rename to first response from the new version (release task-host)");
    for swap in 0..SWAPS {
        let (candidate, marker) = &versions[swap % 2];
        let temp = work.join("candidate.tmp");
        std::fs::copy(candidate, &temp)?;
        let renamed = Instant::now();
        std::fs::rename(&temp, &served)?;
        while !get(addr, "/").is_ok_and(|body| body.contains(marker)) {
            if renamed.elapsed() > Duration::from_secs(30) {
                bail!("swap {swap} was not served within 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let name = candidate
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "  swap {:>2} -> {name:<22} {:>7.0} ms",
            swap + 1,
            renamed.elapsed().as_secs_f64() * 1000.0
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

/// One request over a fresh connection, closed by the server after its answer: the whole
/// answer, head and body.
fn exchange(addr: SocketAddr, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// `GET path` over HTTP/1.0: the answer, or an error.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
}

/// `POST /tasks` for task `n`, which must succeed.
fn create(addr: SocketAddr, n: usize) -> anyhow::Result<()> {
    let body = format!(r#"{{"title":"seed {n}"}}"#);
    let answer = exchange(
        addr,
        &format!(
            "POST /tasks HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )?;
    if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
        bail!(
            "seeding task {n}: {}",
            answer.lines().next().unwrap_or("no answer")
        );
    }
    Ok(())
}

fn host_command(host: &Path, component: &Path, store: &str) -> Command {
    let mut command = test_support::task_host_serve(Command::new(host));
    command
        .args([
            "--store",
            store,
            "--admin-addr",
            "127.0.0.1:0",
            "--component",
        ])
        .arg(component)
        // The startup line below names the admin address; nothing else under warn is
        // logged per request.
        .env("RUST_LOG", "warn,task_host::server=info");
    command
}

/// A server under load, killed on drop.
struct Server {
    child: ServerChild,
    /// Where task-host serves `/metrics`, from its log; `None` for other servers.
    admin: Option<SocketAddr>,
    /// Tasks created so far.
    tasks: usize,
}

impl Server {
    /// Starts `command`, logging to `log`, and reads its address from the startup line.
    fn start(mut command: Command, label: &str, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child =
            ServerChild::spawn(&mut command, file).with_context(|| format!("starting {label}"))?;
        // The admin address is logged just before the startup line is printed.
        let admin = std::fs::read_to_string(log)?
            .split_whitespace()
            .find_map(|word| word.strip_prefix("admin=http://")?.parse().ok());
        Ok(Self {
            child,
            admin,
            tasks: 0,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.child.addr()
    }

    /// Creates tasks until `tasks` are stored, over [`SEEDERS`] connections at once.
    fn seed(&mut self, tasks: usize) -> anyhow::Result<()> {
        let addr = self.addr();
        let next = AtomicUsize::new(self.tasks);
        std::thread::scope(|scope| {
            let seeders: Vec<_> = (0..SEEDERS)
                .map(|_| {
                    scope.spawn(|| {
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= tasks {
                                return Ok(());
                            }
                            create(addr, n)?;
                        }
                    })
                })
                .collect();
            seeders.into_iter().try_for_each(|seeder| {
                seeder
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a seeding thread panicked")))
            })
        })?;
        self.tasks = self.tasks.max(tasks);
        Ok(())
    }

    /// The store's committed writes and commits so far, from the `task_host_kv_batch_size`
    /// histogram: `None` for a server without one, or before its first batch.
    fn batches(&self) -> anyhow::Result<Option<(f64, f64)>> {
        let Some(admin) = self.admin else {
            return Ok(None);
        };
        let metrics = get(admin, "/metrics").context("scraping /metrics")?;
        let value = |name: &str| {
            metrics.lines().find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
        };
        Ok(value("task_host_kv_batch_size_sum").zip(value("task_host_kv_batch_size_count")))
    }
}

/// Pulls requests/second, the 50th and 99th latency percentiles and any error line out of
/// wrk's report.
fn parse_wrk(report: &str) -> (String, String, String, String) {
    let field = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map_or_else(
                || "-".to_owned(),
                |rest| rest.split_whitespace().next().unwrap_or("-").to_owned(),
            )
    };
    let errors = report
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("Socket errors") || line.starts_with("Non-2xx"))
        .collect::<Vec<_>>()
        .join("; ");
    (field("Requests/sec:"), field("50%"), field("99%"), errors)
}

#[cfg(test)]
mod tests {
    use super::parse_wrk;

    #[test]
    fn wrk_reports_are_parsed() {
        let report = "  Latency Distribution\n     50%    1.20ms\n     99%    9.87ms\n  Non-2xx or 3xx responses: 5\nRequests/sec:  12345.67\n";
        let (rate, p50, p99, errors) = parse_wrk(report);
        assert_eq!(
            (rate.as_str(), p50.as_str(), p99.as_str()),
            ("12345.67", "1.20ms", "9.87ms")
        );
        assert_eq!(errors, "Non-2xx or 3xx responses: 5");
    }
}
