//! Misbehaving guests get a JSON answer and the host keeps serving.

use std::time::{Duration, Instant};

use serde_json::json;
use task_host::kv::StoreSpec;

use crate::common::{ServerProcess, TestServer};

async fn assert_still_serving(server: &TestServer) {
    assert_eq!(
        server.get("/").await.expect(200),
        json!({ "component": "faulty" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_get_no_network_outgoing_requests_are_denied() {
    let server = TestServer::faulty(|_| {}).await;
    assert_eq!(
        server.get("/outgoing").await.expect(200),
        json!({ "outgoing": "denied" })
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_is_a_500_and_the_host_keeps_serving() {
    let server = TestServer::faulty(|_| {}).await;
    assert_eq!(
        server.get("/trap").await.expect(500),
        json!({ "detail": "Internal Server Error" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_interrupted_with_a_504() {
    let server =
        TestServer::faulty(|config| config.request_timeout = Duration::from_millis(300)).await;
    assert_eq!(
        server.get("/loop").await.expect(504),
        json!({ "detail": "Gateway Timeout" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_hits_the_memory_cap_with_a_500() {
    let server = TestServer::faulty(|config| config.max_memory = 16 << 20).await;
    assert_eq!(
        server.get("/alloc").await.expect(500),
        json!({ "detail": "Internal Server Error" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_max_body_is_413() {
    let server = TestServer::faulty(|config| config.max_body = 1024).await;
    let body = Some(("application/octet-stream", vec![0_u8; 2048]));
    let reply = crate::common::send_raw(server.addr, hyper::Method::POST, "/", body).await;
    assert_eq!(
        reply.expect(413),
        json!({ "detail": "Request body is larger than 1024 bytes" })
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

/// Sends `GET path` on a fresh connection and returns the raw answer, read until the server
/// closes the connection, and how long that took.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (String, Duration) {
    let started = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let (answer, _) = crate::common::exchange_bytes(addr, request.into_bytes()).await;
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_that_never_stop_computing_do_not_stall_other_requests() {
    let timeout = Duration::from_secs(3);
    let server = TestServer::faulty(|config| {
        config.request_timeout = Duration::from_secs(3);
        config.store = StoreSpec::Memory;
    })
    .await;
    // Twice as many runaway guests as there are cores: before guests yielded, they held
    // every worker thread until their deadline, and the queue behind them for longer.
    let loops = 2 * std::thread::available_parallelism().map_or(2, usize::from);
    let client = *server;
    let runaway: Vec<_> = (0..loops)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                let reply = client.get("/loop").await;
                (reply.status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        let started = Instant::now();
        assert_still_serving(&server).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "a normal request took {took:?} beside {loops} looping guests"
        );
    }
    for task in runaway {
        let (status, took) = task.await.expect("the looping request");
        assert_eq!(status, 504);
        assert!(
            took < timeout + Duration::from_secs(1),
            "a looping guest was stopped only after {took:?}, with a {timeout:?} deadline"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_failing_after_the_head_cuts_the_answer_off_and_is_logged() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let host = ServerProcess::faulty(
        dir.path(),
        &["--request-timeout", "1s", "--max-memory", "16MiB"],
    );
    for then in ["trap", "alloc", "loop", "sleep"] {
        let (answer, took) = raw_get(host.addr, &format!("/partial?then={then}")).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains(r#"{"partial":"#),
            "{then}: the head and the start of the body went out: {answer:?}"
        );
        assert!(
            !answer.ends_with("0\r\n\r\n"),
            "{then}: the chunked body must not be terminated as if complete: {answer:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{then}: the answer was cut off only after {took:?}, with a 1 s request timeout"
        );
    }
    let failures = host
        .wait_for_log(
            "guest failed after the response head",
            4,
            Duration::from_secs(10),
        )
        .await;
    assert!(
        failures.iter().all(|line| line.contains("request_id")),
        "each late failure names its request: {failures:#?}"
    );
    host.wait_for_log("body=\"aborted\"", 4, Duration::from_secs(10))
        .await;
    assert_eq!(
        host.client().get("/").await.expect(200),
        json!({ "component": "faulty" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_over_the_instance_slots_queues_and_only_then_gets_503() {
    // Eight slots for slow requests: the pool is sized for eight instances of the
    // component's real shape, so all eight run at once.
    let queued = TestServer::faulty(|config| {
        config.max_instances = 8;
        config.queue_timeout = Duration::from_secs(5);
    })
    .await;
    let statuses = concurrent_gets(&queued, "/slow?ms=300", 12).await;
    assert_eq!(
        statuses,
        vec![200; 12],
        "four waited for a slot, none refused"
    );
    queued.stop().await;

    let impatient = TestServer::faulty(|config| {
        config.max_instances = 8;
        config.queue_timeout = Duration::from_millis(50);
    })
    .await;
    let client = *impatient;
    let slow: Vec<_> = (0..8)
        .map(|_| tokio::spawn(async move { client.get("/slow?ms=3000").await.status }))
        .collect();
    // Long enough for all eight to be running even on a loaded machine.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let refused = impatient.get("/").await;
    assert_eq!(
        refused.expect(503),
        json!({ "detail": "Service Unavailable" })
    );
    assert_eq!(
        refused
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    for task in slow {
        assert_eq!(task.await.expect("a slow request"), 200);
    }
    impatient.stop().await;
}

/// Sends `count` concurrent `GET path` and returns their statuses.
async fn concurrent_gets(server: &TestServer, path: &'static str, count: usize) -> Vec<u16> {
    let client = **server;
    let tasks: Vec<_> = (0..count)
        .map(|_| tokio::spawn(async move { client.get(path).await.status }))
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("a request"));
    }
    statuses
}
