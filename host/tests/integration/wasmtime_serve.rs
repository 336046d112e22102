//! Stock `wasmtime serve` (from ../shared/tools/install-wasmtime-cli.sh).
//!
//! - The plain task_api.wasm with `-S keyvalue`: the component is portable, not tied to
//!   task-host. That store is fresh for every request, so only stateless answers and
//!   single-request effects are checked.
//! - task_api_standalone.wasm with `--dir`: the kv-fs adapter makes the state real, so it
//!   passes the same contract checks as task-host, in parallel instances and across restarts.

use std::process::Command;
use std::time::Duration;

use hyper::Method;
use rustix::process::Signal;
use serde_json::json;

use crate::common::{
    ServerProcess, chunked_post, components, exchange_bytes, post_long_title, send_raw,
    send_then_stall,
};
use crate::contract;

fn wasmtime_serve(dir: &tempfile::TempDir) -> ServerProcess {
    let mut command = Command::new("wasmtime");
    command
        .args([
            "serve",
            "-S",
            "cli",
            "-S",
            "keyvalue",
            "--addr",
            "127.0.0.1:0",
        ])
        .arg(&components().task_api);
    ServerProcess::spawn(command, dir.path(), "Serving HTTP on http://")
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_wasmtime_serve_answers_the_stateless_contract() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = wasmtime_serve(&dir);
    let get = |path: &'static str| send_raw(server.addr, Method::GET, path, None);

    assert_eq!(
        get("/").await.expect(200),
        json!({ "message": "Task Manager API", "version": "1.0.0" })
    );
    assert_eq!(get("/health").await.expect(200)["status"], json!("healthy"));
    assert_eq!(
        get("/nope").await.expect(404),
        json!({ "detail": "Not Found" })
    );
    assert_eq!(
        get("/tasks/abc").await.expect(422)["detail"][0]["type"],
        json!("int_parsing")
    );

    send_raw(server.addr, Method::DELETE, "/tasks", None)
        .await
        .expect_method_not_allowed("GET, POST");

    let invalid = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", b"{}".to_vec())),
    )
    .await;
    assert_eq!(
        invalid.expect(422)["detail"][0]["loc"],
        json!(["body", "title"])
    );

    let created = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", br#"{"title":"x"}"#.to_vec())),
    );
    // 32 MiB is far more than the socket buffers hold, so the client is still sending when
    // the 413 goes out: the component must drain the rest, or wasmtime serve's close resets
    // the connection and the answer is lost.
    let too_large = post_long_title(server.addr, 32 << 20);
    assert_eq!(
        too_large.await.expect(413),
        json!({ "detail": "Request body is larger than 1048576 bytes" }),
        "the component enforces its own limit where the host has none"
    );
    let (answer, written) =
        exchange_bytes(server.addr, chunked_post("Connection: close\r\n", 32)).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(written, "the body was cut off before it ended");
    assert_eq!(
        created.await.expect(200)["title"],
        json!("x"),
        "the store works within one request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_oversized_upload_is_answered_then_let_go() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = wasmtime_serve(&dir);
    // Past the limit, then silence with the connection held open. The component answers,
    // drains until its deadline and returns; wasmtime serve then closes the connection. With
    // no deadline the instance would wait for bytes that never come, and so would this read.
    let mut request = chunked_post("", 2);
    request.truncate(request.len() - b"0\r\n\r\n".len());
    let answer = send_then_stall(server.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

/// `wasmtime serve -S cli --dir <dir>::/data task_api_standalone.wasm`: the kv-fs adapter
/// keeps the state in `dir`.
fn standalone(dir: &tempfile::TempDir) -> ServerProcess {
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("a data dir");
    let mut command = Command::new("wasmtime");
    command
        .args(["serve", "-S", "cli", "--addr", "127.0.0.1:0", "--dir"])
        .arg(format!("{}::/data", data.display()))
        .arg(&components().standalone);
    ServerProcess::spawn(command, dir.path(), "Serving HTTP on http://")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_passes_the_task_life_contract() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_task_life(standalone(&dir).client()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_never_reuses_ids() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_ids_never_reused(standalone(&dir).client()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_keeps_fastapi_error_shapes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_error_shapes(standalone(&dir).client()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_in_parallel_instances_get_distinct_ids() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_concurrent_creates(standalone(&dir).client(), 100).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_and_the_id_sequence_survive_a_wasmtime_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut first = standalone(&dir);
    let client = first.client();
    client.create_tasks(&["a", "b", "c"]).await;
    client
        .send(Method::DELETE, "/tasks/3", None)
        .await
        .expect(200);
    first.signal(Signal::TERM);
    first.wait(Duration::from_secs(10));

    let second = standalone(&dir);
    let client = second.client();
    assert_eq!(client.listed("title").await, [json!("a"), json!("b")]);
    assert_eq!(
        client
            .post("/tasks", json!({ "title": "d" }))
            .await
            .expect(200)["id"],
        json!(4)
    );
}
