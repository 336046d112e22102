//! `cargo xtask soak`: a release task-host on redb under `wrk` for a minute (by default) at
//! 64 connections, reads and writes mixed ([`MIX`]), sampling the server's resident memory
//! every second. It fails if any request failed, or if the memory is not flat over the second half
//! of the run: its samples there must lie within 10% of each other. Not part of `cargo
//! xtask test`: a minute of load is more than CI's budget allows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::load::{self, Server, host_command};
use crate::root::workspace_root;
use crate::workspace::Workspace;
use crate::{release, wasm};

/// Tasks created before the load, which its reads and updates address by id.
const SEEDED_TASKS: usize = 100;
/// How much the resident memory may vary over the second half of the run.
const FLAT: f64 = 0.10;

/// Per wrk thread: 50% reads of a seeded task, 20% creates, 20% deletes of a task this
/// thread created, 7% updates and 3% completions of a seeded task. Every request should
/// answer 200. Deletes keep up with creates, so the store stays about the same size and
/// memory that grows is not just a growing file in redb's cache (a first run with creates
/// alone grew the file to 16 MB and the resident memory by 15% over 30–60 s).
const MIX: &str = r#"local headers = { ["Content-Type"] = "application/json" }
local seeded = 100
local created = {}
local n = 0

request = function()
  n = n + 1
  local id = math.random(seeded)
  local pick = math.random(100)
  if pick <= 50 then
    return wrk.format("GET", "/tasks/" .. id)
  elseif pick <= 70 and #created > 0 then
    return wrk.format("DELETE", "/tasks/" .. table.remove(created, 1))
  elseif pick <= 90 then
    return wrk.format("POST", "/tasks", headers, '{"title":"soak-new"}')
  elseif pick <= 97 then
    return wrk.format("PUT", "/tasks/" .. id, headers, '{"title":"soak ' .. n .. '"}')
  else
    return wrk.format("PUT", "/tasks/" .. id .. "/complete")
  end
end

-- Only a create answers with a task titled soak-new: remember its id for a delete.
response = function(status, headers, body)
  local id = body:match('^{"id":(%d+),"title":"soak%-new"')
  if id then
    created[#created + 1] = id
  end
end
"#;

/// Builds task-host and task_api.wasm in release, runs the soak and prints what it saw.
pub(crate) fn run(seconds: u32, connections: u32) -> anyhow::Result<()> {
    let work = workspace_root().join("target/soak");
    let (host, component) = release_build(&work)?;
    let store = format!("redb:{}", work.join("store.redb").display());
    let mut server = Server::start(
        host_command(&host, &component, &store),
        "task-host",
        &work.join("server.log"),
    )?;
    server.seed(SEEDED_TASKS)?;
    let status = Path::new("/proc")
        .join(server.child.id().to_string())
        .join("status");
    eprintln!(
        "==> soak: {seconds} s, {connections} connections, task-host on redb, {SEEDED_TASKS} \
         tasks seeded; 50% reads, 50% writes (creates, deletes, updates)"
    );
    let running = AtomicBool::new(true);
    let (report, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_rss(&status, seconds, &running));
        let connections = format!("-c{connections}");
        let duration = format!("-d{seconds}s");
        let args = ["-t2", &connections, &duration, "--timeout", "5s"];
        let report = load::wrk(&args, Some(MIX), &server.url(), &work);
        running.store(false, Ordering::Relaxed);
        (report, sampler.join())
    });
    let report = report?;
    let samples = samples.map_err(|_| anyhow::anyhow!("the memory sampler panicked"))??;
    drop(server);

    let errors = if report.errors.is_empty() {
        "none"
    } else {
        &report.errors
    };
    println!(
        "requests: {} ({}/s), p50 {}, p99 {}, errors: {errors}",
        report.requests, report.rate, report.p50, report.p99
    );
    let every_ten: Vec<String> = samples
        .iter()
        .filter(|(second, _)| second % 10 == 0)
        .map(|(second, kib)| format!("{second} s {}", mib(*kib)))
        .collect();
    println!("task-host VmRSS: {}", every_ten.join(", "));
    let file = std::fs::metadata(work.join("store.redb")).map_or(0, |meta| meta.len());
    println!("store file at the end: {}", mib(file / 1024));
    let half = seconds / 2;
    let (low, high) = samples
        .iter()
        .filter(|(second, _)| *second >= half)
        .fold(None, |range: Option<(u64, u64)>, (_, kib)| {
            Some(range.map_or((*kib, *kib), |(low, high)| (low.min(*kib), high.max(*kib))))
        })
        .with_context(|| format!("no memory samples from {half} s on"))?;
    let spread = (high - low) as f64 / low as f64;
    println!(
        "{half}–{seconds} s: {} to {}, a spread of {:.1}% (at most {:.0}%)",
        mib(low),
        mib(high),
        spread * 100.0,
        FLAT * 100.0
    );
    if !report.errors.is_empty() {
        bail!("requests failed under the soak: {}", report.errors);
    }
    if spread > FLAT {
        bail!(
            "task-host's memory varied {:.1}% over the second half of the soak",
            spread * 100.0
        );
    }
    Ok(())
}

/// Builds task-host and task_api.wasm in release and copies them into `work`, emptied first,
/// so that no other build sharing the target dir replaces them mid-run.
fn release_build(work: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    release::build()?;
    let workspace = Workspace::load()?;
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let copies = [
        (
            workspace.target_dir.join("release/task-host"),
            work.join("task-host"),
        ),
        (
            wasm::dir(&workspace, "release").join("task_api.wasm"),
            work.join("task_api.wasm"),
        ),
    ];
    for (from, to) in &copies {
        std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    let [(_, host), (_, component)] = copies;
    Ok((host, component))
}

/// Reads VmRSS from `status` once a second, from 0 to `seconds` or until `running` clears,
/// as (second, KiB).
fn sample_rss(
    status: &Path,
    seconds: u32,
    running: &AtomicBool,
) -> anyhow::Result<Vec<(u32, u64)>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    for second in 0..=seconds {
        let due = started + Duration::from_secs(u64::from(second));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if !running.load(Ordering::Relaxed) {
            break;
        }
        let text = std::fs::read_to_string(status)
            .with_context(|| format!("reading {}", status.display()))?;
        let kib = text
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        samples.push((second, kib));
    }
    Ok(samples)
}

/// `41.3 MiB` for a size in KiB.
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
