//! `cargo xtask bench`: every server, one after another, under the same load from `wrk` on
//! 127.0.0.1; then a table per scenario, task-host's ratios to each peer, issue 12's targets,
//! the raw numbers in `target/bench/results.json` and the chart in [`CHART`]. Numbers only,
//! no thresholds: the same command serves for before/after comparisons on one machine.
//!
//! How the pieces fit:
//!
//! - [`server`] lists the servers, one entry each ([`server::SERVERS`]: task-host on memory
//!   and redb, stock `wasmtime serve` with the plain and the standalone component, the native
//!   baseline, the seed's FastAPI app), and builds their command lines; [`fastapi`] makes the
//!   seed app's venv.
//! - [`scenario`] says what each server is measured on. The loads run here, one server
//!   process taking them all in turn; [`start`] times starts, [`swap`] component swaps.
//! - [`results`] holds what was measured and makes every table from it; [`chart`] draws it.
//!
//! `GET /tasks` is measured with 100 and with 10,000 tasks stored: a full listing should cost
//! about a hundred times more at the larger size, and the ratio of the two rates says how
//! close it comes. After `POST /tasks` on a store that commits in batches (redb), the mean
//! number of writes per commit during that load is noted, from the host's metrics.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use crate::load::{self, Server};
use crate::root::workspace_root;
use crate::workspace::Workspace;
use crate::{cargo, standalone, wasm};

mod chart;
mod fastapi;
mod results;
mod scenario;
mod server;
mod start;
mod swap;

use fastapi::FastApi;
use results::{Cell, Machine, Outcome, Results, ServerRun, median};
use scenario::Scenario;
use server::{Binaries, Cache, SERVERS, Spec};

/// Where the chart goes, relative to the workspace: committed, and shown by the README.
pub(crate) const CHART: &str = "docs/bench.svg";
/// wrk's request timeout. Its default, 2 s, leaves a listing of 10,000 tasks from kv-fs at
/// 32 connections out of the numbers altogether, as timeouts.
const WRK_TIMEOUT: &str = "30s";

/// Builds the native baseline, runs every server for `seconds` per load, and prints and
/// writes the results.
pub(crate) fn run(seconds: u32) -> anyhow::Result<()> {
    cargo::run(
        "native baseline",
        &["build", "--release", "-p", "native-baseline"],
    )?;
    let workspace = Workspace::load()?;
    // The venv stays between runs; each run's servers start from nothing.
    let bench_dir = workspace_root().join("target/bench");
    let run_dir = bench_dir.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let wasm_dir = wasm::dir(&workspace, "release");
    let binaries = Binaries {
        task_host: workspace.target_dir.join("release/task-host"),
        task_api: wasm_dir.join("task_api.wasm"),
        standalone: wasm_dir.join(standalone::FILE),
        native: workspace.target_dir.join("release/native-baseline"),
        fastapi: FastApi::prepare(&bench_dir),
        wasmtime: wasmtime_available(),
    };
    let machine = Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    };
    eprintln!(
        "==> bench: {seconds} s per load, {} cores, load average {}",
        machine.cores, machine.load_average
    );
    let mut servers = Vec::with_capacity(SERVERS.len());
    for (n, spec) in SERVERS.iter().enumerate() {
        let dir = run_dir.join(format!("server-{n}"));
        std::fs::create_dir_all(&dir)?;
        servers.push(measure(spec, &binaries, &dir, seconds)?);
    }
    let swaps_ms = swap::measure(
        &binaries.task_api,
        &binaries.task_host,
        &run_dir.join("swap"),
    )?;
    let results = Results {
        seconds,
        machine,
        servers,
        swaps_ms,
    };
    println!();
    print!("{}", results.report());

    let json = bench_dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).context("serializing the results")?;
    std::fs::write(&json, text).with_context(|| format!("writing {}", json.display()))?;
    let chart = workspace_root().join(CHART);
    if let Some(dir) = chart.parent() {
        std::fs::create_dir_all(dir)?;
    }
    chart::render(&results, &chart).with_context(|| format!("drawing {}", chart.display()))?;
    println!("\nraw results: {}\nchart: {CHART}", json.display());
    Ok(())
}

/// Whether stock `wasmtime` can be started, or the line that says how to get it.
fn wasmtime_available() -> Result<(), String> {
    match Command::new("wasmtime").arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => {
            Err("`wasmtime` is not on PATH: run ../shared/tools/install-wasmtime-cli.sh".to_owned())
        }
    }
}

/// Every scenario on one server: the loads on one process, then the starts.
fn measure(
    spec: &Spec,
    binaries: &Binaries,
    dir: &Path,
    seconds: u32,
) -> anyhow::Result<ServerRun> {
    let mut run = ServerRun {
        label: spec.label.to_owned(),
        role: spec.role,
        skipped: None,
        cells: Vec::new(),
        notes: Vec::new(),
    };
    if let Err(why) = spec.available(binaries) {
        println!("{}: skipped: {why}", spec.label);
        run.skipped = Some(why);
        return Ok(run);
    }
    eprintln!("==> {}", spec.label);
    let excluded = |scenario| {
        spec.excluded
            .iter()
            .find(|(excluded, _)| *excluded == scenario)
            .map(|(_, reason)| Outcome::Excluded {
                reason: (*reason).to_owned(),
            })
    };

    let command = spec.command(binaries, dir, Cache::Warm)?;
    let mut server = Server::start(command, spec.label, &dir.join("server.log"))?;
    for scenario in Scenario::LOAD_ORDER {
        let outcome = match excluded(scenario) {
            Some(outcome) => outcome,
            None => apply_load(&mut server, scenario, seconds, dir)
                .with_context(|| format!("{}: {}", spec.label, scenario.title()))?,
        };
        eprintln!("  {:<28} {}", scenario.title(), progress(&outcome));
        run.cells.push(Cell { scenario, outcome });
    }
    server.stop()?;
    if let (Some(small), Some(large)) = (
        run.value(Scenario::ListSmall),
        run.value(Scenario::ListLarge),
    ) {
        run.notes.push(format!(
            "a listing of 10,000 tasks costs {:.0}× one of 100 (linear: 100×)",
            small / large
        ));
    }

    let mut cold = None;
    for (scenario, cache) in [
        (Scenario::StartCold, Cache::Cold),
        (Scenario::StartWarm, Cache::Warm),
    ] {
        let outcome = match (excluded(scenario), cold.take()) {
            (Some(outcome), _) => outcome,
            // Nothing to cache: a warm start is a cold one, measured already.
            (
                None,
                Some(Outcome::Start {
                    p50_ms, samples_ms, ..
                }),
            ) if !spec.compiles() => Outcome::Start {
                p50_ms,
                samples_ms,
                note: "no compile step: the cold starts".to_owned(),
            },
            (None, _) => {
                let samples = start::measure(spec, binaries, dir, cache)
                    .with_context(|| format!("{}: {}", spec.label, scenario.title()))?;
                Outcome::Start {
                    p50_ms: median(&samples),
                    samples_ms: samples,
                    note: String::new(),
                }
            }
        };
        eprintln!("  {:<28} {}", scenario.title(), progress(&outcome));
        cold = Some(outcome.clone());
        run.cells.push(Cell { scenario, outcome });
    }
    Ok(run)
}

/// Seeds the tasks `scenario` needs, runs wrk, and reads its report.
fn apply_load(
    server: &mut Server,
    scenario: Scenario,
    seconds: u32,
    dir: &Path,
) -> anyhow::Result<Outcome> {
    let load = scenario.load().context("not a load")?;
    server.seed(load.tasks)?;
    let mut notes = Vec::new();
    if load.tasks > 0 && load.script.is_none() {
        let listed = server.listed()?;
        if listed != load.tasks {
            notes.push(format!("a listing held {listed} of {} tasks", load.tasks));
        }
    }
    let batches_before = server.batches()?;
    let duration = format!("{seconds}s");
    let mut args = load.wrk.to_vec();
    args.extend(["-d", &duration, "--timeout", WRK_TIMEOUT]);
    let url = format!("{}{}", server.url(), load.path);
    let report = load::wrk(&args, load.script, &url, dir)?;
    server.settle()?;
    if report.requests == "0" {
        return Ok(Outcome::Excluded {
            reason: format!("no request was answered within the {seconds} s of load"),
        });
    }
    if !report.errors.is_empty() {
        notes.push(report.errors.clone());
    }
    if let (Some(before), Some(after)) = (batches_before, server.batches()?) {
        let (writes, commits) = (after.0 - before.0, after.1 - before.1);
        if commits > 0.0 {
            notes.push(format!("{:.1} writes per commit", writes / commits));
        }
    }
    let latency =
        |text: &str| load::micros(text).with_context(|| format!("wrk printed no latency ({text})"));
    Ok(Outcome::Load {
        rate: report
            .rate_per_second()
            .with_context(|| format!("wrk printed no rate ({})", report.rate))?,
        p50_us: latency(&report.p50)?,
        p99_us: latency(&report.p99)?,
        note: notes.join("; "),
    })
}

/// One line of progress while the bench runs; the tables come at the end.
fn progress(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Load {
            rate,
            p50_us,
            p99_us,
            note,
        } => format!(
            "{} req/s, p50 {}, p99 {} {note}",
            results::format_rate(*rate),
            results::format_us(*p50_us),
            results::format_us(*p99_us)
        )
        .trim_end()
        .to_owned(),
        Outcome::Start { p50_ms, .. } => format!("p50 {}", results::format_ms(*p50_ms)),
        Outcome::Excluded { reason } => format!("– ({reason})"),
    }
}
