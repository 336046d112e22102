//! HTTP/1 as clients speak it, loosely or not: a request without a Host header, with two, or
//! with one that is no authority; HTTP/1.0; a connection kept alive after its answer and then
//! left idle; and bodies drip-fed to hold the connection cap.
//!
//! Clients that are slow, silent, too many or send huge heads are rows of the fault table
//! (`host/tests/faults/client.rs`), checked with normal requests beside them.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_or_a_host_that_is_not_an_authority_is_400() {
    let server = TestServer::faulty(|_| {}).await;
    for host in [
        "Host: a\r\nHost: b",
        "Host: a/b",
        "Host: u@a",
        "Host: a:port",
    ] {
        let request = format!("GET / HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n");
        let (answer, _) = exchange_bytes(server.addr, request.into_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{host:?}: {answer}");
        assert!(
            answer.ends_with(r#"{"detail":"Missing or invalid Host header"}"#),
            "{host:?}: {answer}"
        );
    }
    let request = b"GET / HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n";
    let (answer, _) = exchange_bytes(server.addr, request.to_vec()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drip_fed_bodies_do_not_lock_out_a_fresh_client() {
    const CAP: u32 = 8;
    let server = TestServer::faulty(|config| config.max_connections = Some(CAP)).await;
    let mut drips = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            .await
            .expect("send the head");
        // One byte a second: the body would take 100 s, past the 30 s request timeout.
        drips.push(tokio::spawn(async move {
            for _ in 0..100 {
                if stream.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            answer
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    // Over the cap, a connection is answered 503 and closed at once, often as a reset.
    let try_get = async || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(server.addr).await?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    };
    loop {
        let answer = try_get().await;
        if answer
            .as_ref()
            .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a fresh client was locked out for 15 s: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for drip in drips {
        let answer = drip.await.expect("a drip task");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.ends_with(r#"{"detail":"Request body arrived slower than 1024 bytes/s"}"#),
            "{answer}"
        );
    }
    server.stop().await;
}
