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

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::load::{self, Server, get, host_command};
use crate::workspace::Workspace;
use crate::workspace_root;

/// wrk settings: two threads (the machine has two cores), 32 connections.
const WRK_ARGS: &[&str] = &["-t2", "-c32"];

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
        let mut args = WRK_ARGS.to_vec();
        args.extend(["-d", duration]);
        let url = format!("{}{}", server.url(), scenario.path);
        let load::Report {
            rate,
            p50,
            p99,
            errors,
            ..
        } = load::wrk(&args, scenario.script, &url, work)?;
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
