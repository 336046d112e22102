//! The seed's contract, through task-host and the real task_api.wasm.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use task_api_limits::DEFAULT_MAX_BODY;
use task_host::kv::StoreSpec;

use crate::common::{
    Client, TestServer, chunked_post, components, exchange_bytes, post_long_title, send_raw,
    send_then_stall,
};

async fn task_api() -> TestServer {
    TestServer::start(&components().task_api).await
}

#[tokio::test(flavor = "multi_thread")]
async fn root_and_health_answer() {
    let server = task_api().await;
    assert_eq!(
        server.get("/").await.expect(200),
        json!({ "message": "Task Manager API", "version": "1.0.0" })
    );
    let health = server.get("/health").await.expect(200);
    assert_eq!(health["status"], json!("healthy"));
    assert!(
        health["timestamp"].as_f64().is_some_and(|t| t > 1.7e9),
        "{health}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_go_through_their_whole_life() {
    let server = task_api().await;
    check_task_life(*server).await;
    server.stop().await;
}

/// A task created, read, listed, completed, updated and deleted, as in the seed. Shared with the standalone component under `wasmtime serve`.
pub(crate) async fn check_task_life(server: Client) {
    let created = server
        .post(
            "/tasks",
            json!({ "title": "Test task", "description": "Testing the API" }),
        )
        .await
        .expect(200);
    assert_eq!(
        (&created["id"], &created["completed"]),
        (&json!(1), &json!(false))
    );
    assert!(
        created["created_at"]
            .as_f64()
            .is_some_and(|t| t.fract() != 0.0),
        "sub-second created_at: {created}"
    );
    assert_eq!(server.get("/tasks/1").await.expect(200), created);
    assert_eq!(server.get("/tasks").await.expect(200), json!([created]));

    let completed = server
        .send(Method::PUT, "/tasks/1/complete", None)
        .await
        .expect(200);
    assert_eq!(completed["completed"], json!(true));
    let updated = server
        .send(Method::PUT, "/tasks/1", Some(json!({ "title": "Renamed" })))
        .await
        .expect(200);
    assert_eq!(
        (
            &updated["title"],
            &updated["description"],
            &updated["completed"]
        ),
        (&json!("Renamed"), &json!(""), &json!(true))
    );

    let deleted = server
        .send(Method::DELETE, "/tasks/1", None)
        .await
        .expect(200);
    assert_eq!(deleted, json!({ "message": "Task deleted" }));
    assert_eq!(
        server.get("/tasks/1").await.expect(404),
        json!({ "detail": "Task not found" })
    );
    assert_eq!(server.get("/tasks").await.expect(200), json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_never_reused() {
    let server = task_api().await;
    check_ids_never_reused(*server).await;
    server.stop().await;
}

/// Deleting the newest task does not free its id. Shared with the standalone component under `wasmtime serve`.
pub(crate) async fn check_ids_never_reused(server: Client) {
    server.create_tasks(&["a", "b"]).await;
    server
        .send(Method::DELETE, "/tasks/2", None)
        .await
        .expect(200);
    assert_eq!(
        server
            .post("/tasks", json!({ "title": "c" }))
            .await
            .expect(200)["id"],
        json!(3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_get_distinct_ids() {
    let server = task_api().await;
    check_concurrent_creates(*server, 200).await;
    server.stop().await;
}

/// `count` creates at once get ids 1..=count, all listed. Shared with `wasmtime serve`.
pub(crate) async fn check_concurrent_creates(server: Client, count: u64) {
    let creates = (1..=count).map(|i| {
        let addr = server.addr;
        tokio::spawn(async move {
            let body = Some((
                "application/json",
                format!(r#"{{"title":"t{i}"}}"#).into_bytes(),
            ));
            send_raw(addr, Method::POST, "/tasks", body)
                .await
                .expect(200)["id"]
                .as_u64()
        })
    });
    let mut ids = Vec::new();
    for create in creates {
        ids.push(
            create
                .await
                .expect("the create task ran")
                .expect("an integer id"),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=count).collect::<Vec<u64>>());
    assert_eq!(
        server.listed_ids().await,
        ids,
        "every created task is listed, in id order"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_keep_fastapi_shapes() {
    let server = task_api().await;
    check_error_shapes(*server).await;
    server.stop().await;
}

/// Every error answer in FastAPI's shape. Shared with the standalone component under `wasmtime serve`.
pub(crate) async fn check_error_shapes(server: Client) {
    assert_eq!(
        server.get("/nope").await.expect(404),
        json!({ "detail": "Not Found" })
    );
    assert_eq!(
        server.get("/tasks/9").await.expect(404),
        json!({ "detail": "Task not found" })
    );
    assert_eq!(
        server.get("/tasks/-1").await.expect(404),
        json!({ "detail": "Task not found" })
    );

    server
        .send(Method::PATCH, "/tasks", None)
        .await
        .expect_method_not_allowed("GET, POST");

    let detail = |reply: Value| reply["detail"][0].clone();
    let missing = detail(
        server
            .post("/tasks", json!({ "description": "d" }))
            .await
            .expect(422),
    );
    assert_eq!(
        (&missing["type"], &missing["loc"]),
        (&json!("missing"), &json!(["body", "title"]))
    );
    let wrong_type = detail(
        server
            .post("/tasks", json!({ "title": null }))
            .await
            .expect(422),
    );
    assert_eq!(wrong_type["type"], json!("string_type"));
    let bad_id = detail(server.get("/tasks/abc").await.expect(422));
    assert_eq!(
        (&bad_id["type"], &bad_id["loc"]),
        (&json!("int_parsing"), &json!(["path", "task_id"]))
    );

    let broken = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", br#"{"title": }"#.to_vec())),
    )
    .await;
    assert_eq!(detail(broken.expect(422))["loc"], json!(["body", 10]));
    let form = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("text/plain", b"title=x".to_vec())),
    )
    .await;
    assert_eq!(
        detail(form.expect(422))["type"],
        json!("model_attributes_type")
    );
    let empty = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", Vec::new())),
    )
    .await;
    assert_eq!(detail(empty.expect(422))["loc"], json!(["body"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_413_and_store_nothing() {
    let server = task_api().await;
    // Far more than the socket buffers hold, so the client is still sending when the 413 is
    // ready: the server must read on rather than reset the connection under it.
    let reply = post_long_title(server.addr, 32 << 20).await;
    assert!(
        reply.expect(413)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("larger than")),
        "{}",
        reply.text
    );
    assert_eq!(server.get("/tasks").await.expect(200), json!([]));
    server.stop().await;
}

/// The bytes `post_long_title` adds to the title: `{"title":""}`.
const TITLE_FRAME: usize = r#"{"title":""}"#.len();

#[tokio::test(flavor = "multi_thread")]
async fn by_default_a_body_of_1_mib_is_accepted_and_one_byte_more_is_413() {
    let server = task_api().await;
    // Host and component share the default: a component with a smaller one would refuse this.
    let created = post_long_title(server.addr, DEFAULT_MAX_BODY - TITLE_FRAME).await;
    assert_eq!(
        created.expect(200)["title"].as_str().map(str::len),
        Some(DEFAULT_MAX_BODY - TITLE_FRAME)
    );
    let refused = post_long_title(server.addr, DEFAULT_MAX_BODY - TITLE_FRAME + 1).await;
    assert_eq!(
        refused.expect(413),
        json!({ "detail": format!("Request body is larger than {DEFAULT_MAX_BODY} bytes") })
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raised_max_body_raises_the_component_limit_too() {
    let server =
        TestServer::start_with(&components().task_api, |config| config.max_body = 8 << 20).await;
    let title_len = 2 << 20;
    let created = post_long_title(server.addr, title_len).await.expect(200);
    assert_eq!(created["title"].as_str().map(str::len), Some(title_len));
    let listed = server.listed("title").await;
    assert_eq!(
        listed
            .iter()
            .map(|title| title.as_str().map(str::len))
            .collect::<Vec<_>>(),
        [Some(title_len)],
        "the stored task is listed whole"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_chunked_body_is_refused_and_drained() {
    let server = task_api().await;
    let (answer, written) = exchange_bytes(server.addr, chunked_post("", 32)).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(written, "the server stopped reading before the body ended");
    assert_eq!(server.get("/tasks").await.expect(200), json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_slower_than_the_request_timeout_is_408() {
    let server = TestServer::start_with(&components().task_api, |config| {
        config.request_timeout = Duration::from_millis(500)
    })
    .await;
    // Nine of the hundred declared bytes, then nothing: the host must not wait forever.
    let answer = send_then_stall(
        server.addr,
        b"POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"title\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains(r#"{"detail":"Request body not received within 500ms"}"#),
        "{answer}"
    );
    assert_eq!(server.get("/tasks").await.expect(200), json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_expecting_100_continue_is_refused_before_it_sends() {
    let server = task_api().await;
    // Headers only: a client that asked for 100-continue waits for it before the body, so
    // the answer must come without one.
    let request = format!(
        "POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        32 << 20
    );
    let (answer, _) = exchange_bytes(server.addr, request.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("larger than"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_is_json_and_carries_a_request_id() {
    let server = task_api().await;
    for path in [
        "/",
        "/health",
        "/tasks",
        "/nope",
        "/tasks/abc",
        "/openapi.json",
    ] {
        let reply = server.get(path).await;
        assert_eq!(
            reply
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{path}"
        );
        assert!(reply.headers.contains_key("x-request-id"), "{path}");
        reply.json();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_every_route() {
    let server = task_api().await;
    let document = server.get("/openapi.json").await.expect(200);
    assert_eq!(document["openapi"], json!("3.1.0"));
    for path in [
        "/",
        "/health",
        "/tasks",
        "/tasks/{task_id}",
        "/tasks/{task_id}/complete",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_store_is_shared_across_requests() {
    let server = TestServer::start_with(&components().task_api, |config| {
        config.store = StoreSpec::Memory
    })
    .await;
    server
        .post("/tasks", json!({ "title": "kept" }))
        .await
        .expect(200);
    assert_eq!(
        server.get("/tasks/1").await.expect(200)["title"],
        json!("kept")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_larger_than_guest_memory_is_streamed_complete() {
    // 120 tasks of 100 kB are 12 MB of JSON, half again the 8 MiB a guest may hold: the list
    // can only be answered a batch at a time.
    let server = TestServer::start_with(&components().task_api, |config| {
        config.max_memory = 8 << 20;
        config.store = StoreSpec::Memory;
    })
    .await;
    let description = "d".repeat(100_000);
    for n in 0..120 {
        server
            .post(
                "/tasks",
                json!({ "title": format!("task {n}"), "description": description }),
            )
            .await
            .expect(200);
    }
    let ids = server.listed("id").await;
    let expected: Vec<Value> = (1..=120).map(|id| json!(id)).collect();
    assert_eq!(ids, expected, "every task, in id order");
    server.stop().await;
}
