//! Swapping the served component while running: every way a file gets replaced, SIGHUP,
//! every kind of rejected candidate, and swaps under load from a second process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::common::{Client, ServerProcess, components};

/// How long a test waits for something that normally takes well under a second; generous,
/// because the other tests share the machine's two cores. Waits end as soon as they can.
const PATIENCE: Duration = Duration::from_secs(45);

/// Which component answered `GET /`.
async fn version(client: Client) -> &'static str {
    let reply = client.get("/").await;
    match reply.text.as_str() {
        text if text.contains("Task Manager API") => "task-api",
        text if text.contains("swapped-in") => "hello",
        _ => "other",
    }
}

/// Polls `GET /` until `want` answers; returns how long that took.
async fn wait_for(client: Client, want: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    while version(client).await != want {
        assert!(
            started.elapsed() < timeout,
            "{want} was not served within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// Replaces `path` the way editors and `docker cp` do: write a sibling, rename it over.
fn rename_over(source: &Path, path: &Path) {
    let temp = path.with_extension("tmp");
    std::fs::copy(source, &temp).expect("copy the candidate");
    std::fs::rename(&temp, path).expect("rename it over the served file");
}

/// A temp dir holding a copy of task_api.wasm at `app.wasm`, and a host serving it.
fn serve_copy(dir: &tempfile::TempDir, extra: &[&str]) -> (PathBuf, ServerProcess) {
    let app = dir.path().join("app.wasm");
    std::fs::copy(&components().task_api, &app).expect("copy task_api.wasm");
    let app_flag = app.to_string_lossy().into_owned();
    let mut flags = vec!["--component", app_flag.as_str(), "--store", "memory"];
    flags.extend(extra);
    (app.clone(), ServerProcess::host(dir.path(), &flags))
}

#[tokio::test(flavor = "multi_thread")]
async fn renames_and_in_place_writes_are_swapped_in() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (app, host) = serve_copy(&dir, &[]);
    let client = host.client();
    assert_eq!(version(client).await, "task-api");

    rename_over(&components().hello, &app);
    wait_for(client, "hello", PATIENCE).await;

    let bytes = std::fs::read(&components().task_api).expect("read task_api.wasm");
    std::fs::write(&app, bytes).expect("write in place");
    wait_for(client, "task-api", PATIENCE).await;
    host.wait_for_log("component swapped", 2, PATIENCE).await;
    // The version swapped back to was compiled at start: its machine code is read back.
    host.wait_for_log("cache=hit", 1, PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_flip_is_swapped_in() {
    // The layout Kubernetes uses for ConfigMap and Secret volumes.
    let dir = tempfile::tempdir().expect("a temp dir");
    for (version, component) in [("v1", &components().task_api), ("v2", &components().hello)] {
        std::fs::create_dir(dir.path().join(version)).expect("a version dir");
        std::fs::copy(component, dir.path().join(version).join("app.wasm")).expect("copy");
    }
    std::os::unix::fs::symlink("v1", dir.path().join("..data")).expect("..data -> v1");
    let app = dir.path().join("app.wasm");
    std::os::unix::fs::symlink("..data/app.wasm", &app).expect("app.wasm -> ..data/app.wasm");
    let app_flag = app.to_string_lossy().into_owned();
    let host = ServerProcess::host(dir.path(), &["--component", &app_flag, "--store", "memory"]);
    assert_eq!(version(host.client()).await, "task-api");

    std::os::unix::fs::symlink("v2", dir.path().join("..data_tmp")).expect("..data_tmp -> v2");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("flip");
    wait_for(host.client(), "hello", PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_even_with_watching_off() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (app, host) = serve_copy(&dir, &["--watch", "false"]);
    rename_over(&components().hello, &app);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        version(host.client()).await,
        "task-api",
        "not watching: nothing changes by itself"
    );
    host.signal(Signal::HUP);
    wait_for(host.client(), "hello", PATIENCE).await;
    host.wait_for_log("trigger=\"SIGHUP\"", 1, PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_candidates_leave_the_old_version_serving() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"this is not wasm at all").expect("write garbage");
    let module = dir.path().join("module.bin");
    std::fs::write(&module, b"\0asm\x01\0\0\0").expect("write a core module");
    let candidates: [(&Path, &str); 4] = [
        (&garbage, "is not a WebAssembly file"),
        (&module, "is a core WebAssembly module, not a component"),
        (
            &components().unprovided,
            "component imports test:unprovided/greeter, which this host does not provide",
        ),
        (
            &components().faulty,
            "the candidate answered GET /health with 500",
        ),
    ];
    let (app, host) = serve_copy(&dir, &[]);
    for (rejected, (candidate, reason)) in candidates.into_iter().enumerate() {
        rename_over(candidate, &app);
        let lines = host
            .wait_for_log("reload rejected", rejected + 1, PATIENCE)
            .await;
        assert!(
            lines[rejected].contains(reason),
            "{:?} should say {reason:?}",
            lines[rejected]
        );
        assert_eq!(
            version(host.client()).await,
            "task-api",
            "the old version still serves"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_whose_probe_never_answers_is_rejected_long_before_the_request_timeout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // The faulty component spins forever on /loop; task-api, served first, is never probed.
    let (app, host) = serve_copy(
        &dir,
        &["--probe-path", "/loop", "--request-timeout", "120s"],
    );
    let started = Instant::now();
    rename_over(&components().faulty, &app);
    let lines = host.wait_for_log("reload rejected", 1, PATIENCE).await;
    assert!(
        lines[0].contains("the candidate failed GET /loop: no complete response within"),
        "{:?}",
        lines[0]
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a looping probe held reloads for {:?}",
        started.elapsed()
    );
    assert_eq!(version(host.client()).await, "task-api");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_swaps_under_load_drop_no_request() {
    const SWAPS: u32 = 10;
    const LOAD: Duration = Duration::from_secs(30);
    const BETWEEN_SWAPS: Duration = Duration::from_millis(1500);
    let dir = tempfile::tempdir().expect("a temp dir");
    let (app, host) = serve_copy(&dir, &[]);
    let client = host.client();
    // wrk runs longer than LOAD, so the load is still on when the last swap lands.
    let mut wrk = Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            &format!("-d{}s", LOAD.as_secs() + 10),
            &format!("http://{}/", host.addr),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk runs (apt-get install wrk)");
    let mut switches = Vec::new();
    for swap in 0..SWAPS {
        tokio::time::sleep(BETWEEN_SWAPS).await;
        let (candidate, name) = if swap % 2 == 0 {
            (&components().hello, "hello")
        } else {
            (&components().task_api, "task-api")
        };
        rename_over(candidate, &app);
        switches.push(wait_for(client, name, PATIENCE).await);
    }
    assert!(
        wrk.try_wait().expect("wrk can be polled").is_none(),
        "the swaps must all happen while the load runs"
    );
    let report = wrk.wait_with_output().expect("wrk finishes");
    let report = String::from_utf8_lossy(&report.stdout);
    eprintln!("{report}");
    assert!(
        !report.contains("Non-2xx"),
        "some answers were not 2xx:\n{report}"
    );
    assert!(
        !report.contains("Socket errors"),
        "connection errors:\n{report}"
    );

    // Each switch may take the watcher's poll and settle time plus validation (compiling and
    // probing the candidate, reported in the log), and not a second more.
    let swapped = host
        .wait_for_log("component swapped", switches.len(), PATIENCE)
        .await;
    let validations: Vec<f64> = swapped
        .iter()
        .filter_map(|line| {
            line.split("validate_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(validations.len(), switches.len(), "{swapped:?}");
    for (switch, validate_ms) in switches.iter().zip(&validations) {
        let allowed = Duration::from_secs(1) + Duration::from_secs_f64(validate_ms / 1000.0);
        eprintln!("switched in {switch:.0?} (validation {validate_ms:.0} ms)");
        assert!(
            *switch <= allowed,
            "a switch took {switch:?}, allowed {allowed:?}"
        );
    }
}
