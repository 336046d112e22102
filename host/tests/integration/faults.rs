//! Misbehaving guests get a JSON answer and the host keeps serving.

use serde_json::json;

use crate::common::{TestServer, components};

async fn faulty(flags: &[&str]) -> TestServer {
    TestServer::start_with(&components().faulty, flags).await
}

async fn assert_still_serving(server: &TestServer) {
    assert_eq!(
        server.get("/").await.expect(200),
        json!({ "component": "faulty" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_is_a_500_and_the_host_keeps_serving() {
    let server = faulty(&[]).await;
    assert_eq!(
        server.get("/trap").await.expect(500),
        json!({ "detail": "Internal Server Error" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_interrupted_with_a_504() {
    let server = faulty(&["--request-timeout", "300ms"]).await;
    assert_eq!(
        server.get("/loop").await.expect(504),
        json!({ "detail": "Gateway Timeout" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_hits_the_memory_cap_with_a_500() {
    let server = faulty(&["--max-memory", "16MiB"]).await;
    assert_eq!(
        server.get("/alloc").await.expect(500),
        json!({ "detail": "Internal Server Error" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_max_body_is_413() {
    let server = faulty(&["--max-body", "1KiB"]).await;
    let body = Some(("application/octet-stream", vec![0_u8; 2048]));
    let reply = crate::common::send_raw(server.addr, hyper::Method::POST, "/", body).await;
    assert_eq!(
        reply.expect(413),
        json!({ "detail": "Request body is larger than 1024 bytes" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}
