//! The bounds a guest runs within: no network, no request body over `--max-body`, and no
//! more than `--max-instances` at once, with the rest queued for up to `--queue-timeout` and
//! only then refused with a 503.
//!
//! Guests that trap, spin or exhaust their memory, before or after their answer's head, are
//! rows of the fault table (`host/tests/faults/guest.rs`), checked under load.

use std::time::Duration;

use serde_json::json;

use crate::common::TestServer;

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
async fn a_body_over_max_body_is_413() {
    let server = TestServer::faulty(|config| config.max_body = 1024).await;
    let body = Some(("application/octet-stream", vec![0_u8; 2048]));
    let reply = crate::common::send_raw(server.addr, hyper::Method::POST, "/", body).await;
    assert_eq!(
        reply.expect(413),
        json!({ "detail": "Request body is larger than 1024 bytes" })
    );
    assert_eq!(
        server.get("/").await.expect(200),
        json!({ "component": "faulty" })
    );
    server.stop().await;
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
