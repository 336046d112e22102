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

use anyhow::bail;

use crate::load::{self, Server, host_command};
use crate::workspace_root;

/// wrk settings: two threads (the machine has two cores), 32 connections.
const WRK_ARGS: &[&str] = &["-t2", "-c32"];
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
    let root = workspace_root();
    let component = root.join("target/wasm32-wasip2/release/task_api.wasm");
    let host = root.join("target/release/task-host");
    let work = root.join("target/bench");
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
    measure_swaps(&root, &host, &work)
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
        let mut args = WRK_ARGS.to_vec();
        args.extend(["-d", duration]);
        let url = format!("{}{}", server.url, scenario.path);
        let report = load::wrk(&args, scenario.script, &url, work)?;
        let note = if report.errors.is_empty() {
            String::new()
        } else {
            format!("  ({})", report.errors)
        };
        println!(
            "{label:<34} {:<24} {:>10} {:>9} {:>9}{note}",
            scenario.name, report.rate, report.p50, report.p99
        );
    }
    Ok(())
}

/// Swaps between task_api.wasm and hello_component.wasm under a running release task-host
/// and prints the time from the rename to the first response from the new version.
fn measure_swaps(root: &Path, host: &Path, work: &Path) -> anyhow::Result<()> {
    const SWAPS: usize = 6;
    let release = root.join("target/wasm32-wasip2/release");
    let versions = [
        (release.join("hello_component.wasm"), "swapped-in"),
        (release.join("task_api.wasm"), "Task Manager API"),
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
