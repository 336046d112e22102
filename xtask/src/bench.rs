//! `cargo xtask bench`: load from `wrk` on 127.0.0.1 against the release task-host (redb and
//! memory stores) and against stock `wasmtime serve`, printed as a table; then the time a
//! component swap takes, from the file's rename to the first response from the new version.
//! Numbers only: no thresholds, so the same command serves for before/after comparisons on
//! one machine.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use test_support::ServerChild;

use crate::{target_dir, wasm_release_dir, workspace_root};

/// wrk settings: two threads (the machine has two cores), 32 connections.
const WRK_ARGS: &[&str] = &["-t2", "-c32", "--latency"];
/// Tasks stored before the listing scenario, so `GET /tasks` reads a realistic page.
const SEEDED_TASKS: usize = 100;

/// One measured scenario.
struct Scenario {
    name: &'static str,
    path: &'static str,
    /// Tasks created before the load starts.
    seeded_tasks: usize,
    /// The wrk Lua script that shapes each request, if it is not a plain `GET path`.
    script: Option<&'static str>,
}

const POST_SCRIPT: &str = r#"wrk.method = "POST"
wrk.body = '{"title":"bench","description":"load"}'
wrk.headers["Content-Type"] = "application/json"
"#;

/// Runs every scenario for `seconds` each and prints the table.
pub(crate) fn run(seconds: u32) -> anyhow::Result<()> {
    let component = wasm_release_dir()?.join("task_api.wasm");
    let host = target_dir()?.join("release/task-host");
    let work = workspace_root().join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let duration = format!("{seconds}s");

    let scenarios = [
        Scenario {
            name: "GET /health",
            path: "/health",
            seeded_tasks: 0,
            script: None,
        },
        Scenario {
            name: "GET /tasks (100 tasks)",
            path: "/tasks",
            seeded_tasks: SEEDED_TASKS,
            script: None,
        },
        Scenario {
            name: "POST /tasks",
            path: "/tasks",
            seeded_tasks: 0,
            script: Some(POST_SCRIPT),
        },
    ];
    println!(
        "{:<34} {:<24} {:>10} {:>9} {:>9}",
        "server", "scenario", "req/s", "p50", "p99"
    );
    let redb = format!("redb:{}", work.join("store.redb").display());
    let servers: [(&str, Command); 3] = [
        (
            "task-host --store redb",
            host_command(&host, &component, &redb),
        ),
        (
            "task-host --store memory",
            host_command(&host, &component, "memory"),
        ),
        (
            "wasmtime serve -S keyvalue",
            test_support::wasmtime_serve(&component),
        ),
    ];
    for (label, command) in servers {
        measure_throughput(label, command, &scenarios, &duration, &work)?;
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
    let server = Server::start(command, label)?;
    for scenario in scenarios {
        server.seed(scenario.seeded_tasks)?;
        let mut wrk = Command::new("wrk");
        wrk.args(WRK_ARGS).args(["-d", duration]);
        if let Some(source) = scenario.script {
            let script = work.join("scenario.lua");
            std::fs::write(&script, source)?;
            wrk.arg("-s").arg(script);
        }
        let report = wrk
            .arg(format!("{}{}", server.url, scenario.path))
            .output()
            .context("running wrk")?;
        let (rate, p50, p99, errors) = parse_wrk(&String::from_utf8_lossy(&report.stdout));
        let note = if errors.is_empty() {
            String::new()
        } else {
            format!("  ({errors})")
        };
        println!(
            "{label:<34} {:<24} {rate:>10} {p50:>9} {p99:>9}{note}",
            scenario.name
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
    let server = Server::start(host_command(host, &served, "memory"), "task-host --watch")?;
    let addr = server.child.addr();
    println!();
    println!("component swap: rename to first response from the new version (release task-host)");
    for swap in 0..SWAPS {
        let (candidate, marker) = &versions[swap % 2];
        let temp = work.join("candidate.tmp");
        std::fs::copy(candidate, &temp)?;
        let renamed = Instant::now();
        std::fs::rename(&temp, &served)?;
        while !get_root(addr).is_ok_and(|body| body.contains(marker)) {
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

/// `GET /` over a raw HTTP/1.0 connection: the body, or an error.
fn get_root(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn host_command(host: &Path, component: &Path, store: &str) -> Command {
    let mut command = test_support::task_host_serve(Command::new(host));
    command
        .args(["--store", store, "--component"])
        .arg(component)
        .env("RUST_LOG", "warn");
    command
}

/// A server under load, killed on drop.
struct Server {
    child: ServerChild,
    url: String,
}

impl Server {
    /// Starts `command` and reads its address from the startup line.
    fn start(mut command: Command, label: &str) -> anyhow::Result<Self> {
        let child = ServerChild::spawn(&mut command, std::io::sink())
            .with_context(|| format!("starting {label}"))?;
        Ok(Self {
            url: format!("http://{}", child.addr()),
            child,
        })
    }

    fn seed(&self, tasks: usize) -> anyhow::Result<()> {
        for i in 0..tasks {
            let status = Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-H",
                    "content-type: application/json",
                    "-d",
                ])
                .arg(format!(r#"{{"title":"seed {i}"}}"#))
                .arg(format!("{}/tasks", self.url))
                .status()?;
            if !status.success() {
                bail!("seeding task {i} failed");
            }
        }
        Ok(())
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
