//! The plain task_api.wasm under stock `wasmtime serve` (from
//! ../shared/tools/install-wasmtime-cli.sh): the component is portable, not tied to task-host.
//! wasmtime's `-S keyvalue` store is fresh for every request, so only stateless answers and
//! single-request effects are checked here.

use std::process::Command;

use hyper::Method;
use serde_json::json;

use crate::common::{ServerProcess, components, send_raw};

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

    let not_allowed = send_raw(server.addr, Method::DELETE, "/tasks", None).await;
    assert_eq!(
        not_allowed.expect(405),
        json!({ "detail": "Method Not Allowed" })
    );
    assert_eq!(
        not_allowed
            .headers
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );

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
    assert_eq!(
        created.await.expect(200)["title"],
        json!("x"),
        "the store works within one request"
    );
}
