//! The real binary: startup line, durability across SIGTERM and `kill -9`, draining a slow
//! request but not idle or half-sent ones, and the healthcheck and check subcommands.

use std::time::{Duration, Instant};

use hyper::Method;
use rustix::process::Signal;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::common::{
    Reply, ServerProcess, components, exchange_bytes, host_command, send_raw, task_api_on_redb,
};

async fn create(host: &ServerProcess, title: &str) -> u64 {
    let body = Some((
        "application/json",
        format!(r#"{{"title":"{title}"}}"#).into_bytes(),
    ));
    let reply = send_raw(host.addr, Method::POST, "/tasks", body).await;
    reply.expect(200)["id"].as_u64().expect("an integer id")
}

async fn titles(host: &ServerProcess) -> Vec<String> {
    let titles = host.client().listed("title").await;
    titles
        .iter()
        .filter_map(|title| title.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_startup_line_names_the_port_this_process_answers_on() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let component = components().task_api.to_string_lossy().into_owned();
    let host = ServerProcess::host(
        dir.path(),
        &["--component", &component, "--store", "memory"],
    );
    let reply = send_raw(host.addr, Method::GET, "/", None).await;
    assert_eq!(reply.expect(200)["version"], json!("1.0.0"));
    // Other tests' servers listen on 127.0.0.1 too: the answer must be in this process's
    // own access log, under the request id it carried, as a body sent whole (hyper stops
    // polling it once its Content-Length is out, so its end is never seen as such).
    let request_id = reply
        .headers
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .expect("an x-request-id header");
    let access =
        format!("request_id={request_id} method=GET path=\"/\" status=200 body=\"complete\"");
    host.wait_for_log(&access, 1, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_made_answers_and_head_are_logged_as_complete() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let component = components().task_api.to_string_lossy().into_owned();
    let host = ServerProcess::host(
        dir.path(),
        &[
            "--component",
            &component,
            "--store",
            "memory",
            "--max-body",
            "16",
        ],
    );
    // hyper never polls the body of an answer to HEAD, whatever its status.
    let head = send_raw(host.addr, Method::HEAD, "/", None).await;
    // A host-made 400 (two Host headers) and 413 (a body over --max-body): the guest never
    // ran, and the whole JSON answer went out.
    let (answer, _) = exchange_bytes(
        host.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let too_large = send_raw(
        host.addr,
        Method::POST,
        "/tasks",
        Some((
            "application/json",
            br#"{"title": "longer than sixteen bytes"}"#.to_vec(),
        )),
    )
    .await;
    assert_eq!(too_large.status, 413);
    for line in [
        format!(
            "method=HEAD path=\"/\" status={} body=\"complete\"",
            head.status
        ),
        "method=GET path=\"/\" status=400 body=\"complete\"".to_owned(),
        "method=POST path=\"/tasks\" status=413 body=\"complete\"".to_owned(),
    ] {
        host.wait_for_log(&line, 1, Duration::from_secs(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_survive_a_sigterm_restart_and_ids_continue() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let flags = task_api_on_redb(dir.path());

    let mut first = ServerProcess::host(dir.path(), &flags);
    for title in ["a", "b", "c"] {
        create(&first, title).await;
    }
    let log = first.log_text();
    assert!(
        log.contains("INFO: Created task: a request_id="),
        "guest stderr is tagged with the request id:\n{log}"
    );
    assert!(
        log.contains("method=POST path=\"/tasks\" status=200"),
        "one access line per request:\n{log}"
    );
    first.signal(Signal::TERM);
    assert_eq!(
        first.wait(Duration::from_secs(15)).code(),
        Some(0),
        "clean exit on SIGTERM"
    );

    let second = ServerProcess::host(dir.path(), &flags);
    assert_eq!(titles(&second).await, ["a", "b", "c"]);
    assert_eq!(create(&second, "d").await, 4, "the id sequence continues");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_create_survives_kill_9() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let flags = task_api_on_redb(dir.path());

    let mut first = ServerProcess::host(dir.path(), &flags);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        create(&first, &format!("t{i}")).await;
        acknowledged.push(format!("t{i}"));
    }
    first.signal(Signal::KILL);
    first.wait(Duration::from_secs(10));

    let second = ServerProcess::host(dir.path(), &flags);
    assert_eq!(titles(&second).await, acknowledged);
}

/// A host serving the faulty component, with a request that sleeps `ms` in flight.
async fn slow_request_in_flight(
    ms: u32,
) -> (
    tempfile::TempDir,
    ServerProcess,
    tokio::task::JoinHandle<Reply>,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let component = components().faulty.to_string_lossy().into_owned();
    let host = ServerProcess::host(
        dir.path(),
        &["--component", &component, "--store", "memory"],
    );
    let addr = host.addr;
    let path = format!("/slow?ms={ms}");
    let slow = tokio::spawn(async move { send_raw(addr, Method::GET, &path, None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (dir, host, slow)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let (_dir, mut host, slow) = slow_request_in_flight(1500).await;
    host.signal(Signal::TERM);
    let reply = slow.await.expect("the slow request ran");
    assert_eq!(reply.expect(200), json!({ "slept": true }));
    assert_eq!(host.wait(Duration::from_secs(15)).code(), Some(0));
    assert!(host.log_text().contains("drained"), "{}", host.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_exits_at_once_without_waiting_for_the_drain() {
    let (_dir, mut host, slow) = slow_request_in_flight(20_000).await;
    host.signal(Signal::TERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.signal(Signal::TERM);
    assert_eq!(
        host.wait(Duration::from_secs(5)).code(),
        Some(130),
        "forced exit"
    );
    slow.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_does_not_wait_for_idle_or_half_sent_requests() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut host = ServerProcess::faulty(dir.path(), &[]);
    let mut half_sent = TcpStream::connect(host.addr).await.expect("connect");
    half_sent
        .write_all(b"GET / HTTP/1.1\r\nHost: te")
        .await
        .expect("send half a head");
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(host.addr).await.expect("connect"));
    }
    host.client().get("/").await.expect(200);
    let started = Instant::now();
    host.signal(Signal::TERM);
    let status = host.wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the drain waited {:?} on connections whose request had not started (default \
         header and shutdown timeouts: 10 s)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_passes_against_a_live_server_and_fails_without_one() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let component = components().task_api.to_string_lossy().into_owned();
    let host = ServerProcess::host(
        dir.path(),
        &["--component", &component, "--store", "memory"],
    );
    let url = format!("http://{}/health", host.addr);
    let ok = host_command()
        .args(["healthcheck", "--url", &url])
        .output()
        .expect("healthcheck runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let missing = format!("http://{}/nope", host.addr);
    let not_found = host_command()
        .args(["healthcheck", "--url", &missing])
        .output()
        .expect("healthcheck runs");
    assert_eq!(not_found.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_found.stderr).contains("404"));
    drop(host);

    let down = host_command()
        .args(["healthcheck", "--url", &url, "--timeout", "2s"])
        .output()
        .expect("healthcheck runs");
    assert_eq!(down.status.code(), Some(1), "nothing listens any more");
}

/// `task-host check FILE`'s listing, asserting that it accepts the component.
fn checked(component: &std::path::Path) -> String {
    let output = host_command()
        .arg("check")
        .arg(component)
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn check_lists_imports_and_accepts_the_task_api() {
    let stdout = checked(&components().task_api);
    let imports: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("import ")?.split('@').next())
        .collect();
    // The world's imports and nothing more: no filesystem, no sockets (the Rust standard
    // library adds wasi:cli environment, exit and terminal-*).
    for import in &imports {
        let allowed = [
            "wasi:keyvalue/",
            "wasi:http/types",
            "wasi:io/",
            "wasi:clocks/",
            "wasi:cli/",
        ];
        assert!(
            allowed.iter().any(|prefix| import.starts_with(prefix)),
            "unexpected import {import}"
        );
    }
    for needed in [
        "wasi:keyvalue/store",
        "wasi:keyvalue/atomics",
        "wasi:keyvalue/batch",
        "wasi:http/types",
    ] {
        assert!(
            imports.contains(&needed),
            "{needed} missing from {imports:?}"
        );
    }
    assert!(
        stdout.contains("import wasi:keyvalue/atomics@0.2.0-draft  ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export wasi:http/incoming-handler@0.2.12"),
        "{stdout}"
    );
}

#[test]
fn check_sizes_the_pool_for_a_composed_component() {
    // The composition of task_api.wasm and kv_fs.wasm: wasmtime adds an adapter instance
    // between the two that its bytes do not show, which the pool must make room for.
    let stdout = checked(&components().standalone);
    assert!(
        stdout.contains("pool shape: 2 memories, 4 tables and 6 core instances"),
        "{stdout}"
    );
}

#[test]
fn check_names_every_import_the_host_cannot_provide() {
    let output = host_command()
        .arg("check")
        .arg(&components().unprovided)
        .output()
        .expect("check runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("import test:unprovided/greeter  MISSING"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("imports test:unprovided/greeter, which this host does not provide"),
        "{stderr}"
    );
}

#[test]
fn whoami_and_echo_answer_the_seeds_checklist_without_a_shell() {
    let whoami = host_command()
        .arg("whoami")
        .output()
        .expect("task-host runs");
    assert!(whoami.status.success(), "{whoami:?}");
    let expected = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        String::from_utf8_lossy(&expected.stdout)
    );
    let echo = host_command()
        .args(["echo", "Container started"])
        .output()
        .expect("task-host runs");
    assert!(echo.status.success(), "{echo:?}");
    assert_eq!(String::from_utf8_lossy(&echo.stdout), "Container started\n");
}
