//! HTTP/1 as clients speak it, loosely or not: a request without a Host header, HTTP/1.0,
//! and a connection kept alive after its answer and then left idle.
//!
//! Clients that are slow, silent, too many or send huge heads are rows of the fault table
//! (`host/tests/faults/client.rs`), checked with normal requests beside them.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{TestServer, exchange_bytes, send_then_stall};

#[tokio::test(flavor = "multi_thread")]
async fn an_http_1_1_request_without_host_is_400_and_http_1_0_is_served() {
    let server = TestServer::faulty(|_| {}).await;
    let (answer, _) = exchange_bytes(
        server.addr,
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.ends_with(r#"{"detail":"Missing or invalid Host header"}"#),
        "{answer}"
    );
    // HTTP/1.0 has no Host: the request names the address served.
    let (answer, _) = exchange_bytes(server.addr, b"GET / HTTP/1.0\r\n\r\n".to_vec()).await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with(r#"{"component":"faulty"}"#), "{answer}");
    server.stop().await;
}

/// A first head that never completes, dribbled or never begun, is a row of the fault table;
/// this is the same timer on the next head of a connection kept alive.
#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connection_left_idle_after_an_answer_is_closed_by_the_header_timeout() {
    let server =
        TestServer::faulty(|config| config.header_timeout = Duration::from_millis(500)).await;
    let started = Instant::now();
    let answer = send_then_stall(server.addr, b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"component":"faulty"}"#), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection stayed open for {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.get("/").await.expect(200),
        json!({ "component": "faulty" })
    );
    server.stop().await;
}
