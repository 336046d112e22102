//! The compile cache through the real binary: a restart loads the component it compiled
//! before, and an entry that was damaged on disk is logged, compiled afresh and rewritten,
//! with the component served all along. And `task-host precompile`, whose artifact a server
//! with no cache loads instead of compiling.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;
use serde_json::json;

use crate::common::{ServerProcess, components, host_command};

/// Long enough for a compile on a busy two-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Serves the task API with a memory store, the admin listener, and its cache in `dir`.
async fn start(dir: &Path) -> ServerProcess {
    let component = components().task_api.to_string_lossy().into_owned();
    let host = ServerProcess::host(
        dir,
        &[
            "--component",
            &component,
            "--store",
            "memory",
            "--admin-addr",
            "127.0.0.1:0",
        ],
    );
    let reply = host.client().get("/").await;
    assert_eq!(reply.expect(200)["version"], json!("1.0.0"));
    host
}

async fn stop(mut host: ServerProcess) {
    host.signal(Signal::TERM);
    assert_eq!(host.wait(PATIENCE).code(), Some(0));
}

/// The one entry in the cache directory of `dir`.
fn entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.join("cache"))
        .expect("the cache directory exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    assert_eq!(entries.len(), 1, "one entry: {entries:?}");
    entries.into_iter().next().expect("one entry")
}

/// The scrape's line for compile cache lookups with `outcome`.
async fn lookups(host: &ServerProcess, outcome: &str) -> String {
    let scrape = host.admin().await.get("/metrics").await;
    let text = scrape.text;
    let series = format!("task_host_compile_cache_lookups_total{{outcome=\"{outcome}\"}}");
    text.lines()
        .find(|line| line.starts_with(&series))
        .map_or_else(|| format!("no {series} in:\n{text}"), str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_start_loads_the_component_from_the_cache() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let first = start(dir.path()).await;
    first.wait_for_log("cache=miss", 1, PATIENCE).await;
    let miss = lookups(&first, "miss").await;
    assert!(miss.ends_with(" 1"), "{miss}");
    stop(first).await;

    let second = start(dir.path()).await;
    second.wait_for_log("cache=hit", 1, PATIENCE).await;
    let hit = lookups(&second, "hit").await;
    assert!(hit.ends_with(" 1"), "{hit}");
    assert!(
        !second.log_text().contains("component compiled"),
        "{}",
        second.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_entry_is_logged_compiled_afresh_and_rewritten() {
    let dir = tempfile::tempdir().expect("a temp dir");
    stop(start(dir.path()).await).await;
    let path = entry(dir.path());
    let whole = std::fs::read(&path).expect("read the entry");

    let mut flipped = whole.clone();
    let middle = flipped.len() / 2;
    if let Some(byte) = flipped.get_mut(middle) {
        *byte ^= 0x40;
    }
    let truncated = whole.get(..middle).expect("half the entry").to_vec();
    let foreign = std::fs::read(&components().task_api).expect("read task_api.wasm");
    for (damage, bytes, reason) in [
        ("a flipped byte", flipped, "does not match its sha256"),
        ("truncation", truncated, "should be"),
        ("a foreign file", foreign, "not a task-host cache entry"),
    ] {
        std::fs::write(&path, &bytes).expect("damage the entry");
        let host = start(dir.path()).await;
        let refused = host.wait_for_log("refused", 1, PATIENCE).await;
        assert!(refused[0].contains(reason), "{damage}: {refused:?}");
        host.wait_for_log("cache=invalid", 1, PATIENCE).await;
        let invalid = lookups(&host, "invalid").await;
        assert!(invalid.ends_with(" 1"), "{damage}: {invalid}");
        stop(host).await;
        assert_ne!(
            std::fs::read(&path).expect("read the entry again"),
            bytes,
            "{damage}: the entry is rewritten"
        );
    }
    let again = start(dir.path()).await;
    again.wait_for_log("cache=hit", 1, PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_precompiled_component_is_served_without_compiling() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let precompiled = dir.path().join("precompiled");
    let output = host_command()
        .arg("precompile")
        .arg("--out-dir")
        .arg(&precompiled)
        .arg(&components().task_api)
        .output()
        .expect("task-host runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let suffix = format!("-{}.cwasm", std::env::consts::ARCH);
    assert!(stdout.trim_end().ends_with(&suffix), "{stdout}");

    let component = components().task_api.to_string_lossy().into_owned();
    let flags = [
        "--component",
        &component,
        "--store",
        "memory",
        "--compile-cache",
        "false",
        "--precompiled-dir",
        &precompiled.to_string_lossy(),
    ];
    let host = ServerProcess::host(dir.path(), &flags);
    host.wait_for_log("component loaded precompiled", 1, PATIENCE)
        .await;
    let reply = host.client().get("/").await;
    assert_eq!(reply.expect(200)["version"], json!("1.0.0"));
    assert!(
        !host.log_text().contains("component compiled"),
        "{}",
        host.log_text()
    );
    stop(host).await;
    assert!(
        !dir.path().join("cache").exists(),
        "with the cache off, nothing is written"
    );

    // A component with no artifact there is compiled, and that is no cause for a warning.
    let hello = components().hello.to_string_lossy().into_owned();
    let mut other = flags;
    other[1] = &hello;
    let host = ServerProcess::host(dir.path(), &other);
    host.wait_for_log("component compiled", 1, PATIENCE).await;
    assert!(!host.log_text().contains("WARN"), "{}", host.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_candidate_is_not_cached_and_evicts_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let app = dir.path().join("app.wasm");
    std::fs::copy(&components().task_api, &app).expect("copy task_api.wasm");
    let app_flag = app.to_string_lossy().into_owned();
    // A budget smaller than any entry: every write would evict every other entry.
    let host = ServerProcess::host(
        dir.path(),
        &[
            "--component",
            &app_flag,
            "--store",
            "memory",
            "--cache-max-size",
            "1",
        ],
    );
    host.client().get("/").await.expect(200);
    let served = entry(dir.path());
    // The faulty component answers GET /health with 500: the candidate is rejected.
    let temp = app.with_extension("tmp");
    std::fs::copy(&components().faulty, &temp).expect("copy the candidate");
    std::fs::rename(&temp, &app).expect("rename it over the served file");
    host.wait_for_log("reload rejected", 1, PATIENCE).await;
    assert_eq!(
        entry(dir.path()),
        served,
        "the served version's entry is the only one"
    );
}
