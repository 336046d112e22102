//! What an operator sees: the admin listener's metrics, checked by `promtool` on a real
//! scrape, and the liveness and readiness probes, including readiness during a drain.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hyper::Method;
use rustix::process::Signal;
use serde_json::json;
use task_host::kv::StoreSpec;

use crate::common::{ServerProcess, TestServer, components, send_raw};

fn with_admin(config: &mut task_host::config::Config) {
    config.admin_addr = Some("127.0.0.1:0".parse().expect("an address"));
}

async fn scrape(admin: SocketAddr) -> String {
    let reply = send_raw(admin, Method::GET, "/metrics", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    reply.text
}

/// Runs `promtool check metrics` on `scrape` and returns what it said, failing on errors.
fn promtool_accepts(scrape: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(scrape.as_bytes())
        .expect("feed promtool");
    let output = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool rejected the scrape:\n{}{}\n---\n{scrape}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_scrape_passes_promtool_and_counts_guest_failures_by_kind() {
    let server = TestServer::faulty(|config| {
        with_admin(config);
        config.request_timeout = Duration::from_millis(500);
        config.max_memory = 16 << 20;
    })
    .await;
    let admin = server.admin.expect("the admin listener is on");
    server.get("/").await.expect(200);
    server.get("/trap").await.expect(500);
    server.get("/loop").await.expect(504);
    server.get("/alloc").await.expect(500);
    // Cut off after the head: the client sees an error, not a status.
    let _ = crate::common::exchange_bytes(
        server.addr,
        b"GET /partial?then=trap HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
    )
    .await;
    let text = scrape(admin).await;
    promtool_accepts(&text);
    for line in [
        r#"task_host_requests_total{method="GET",status="2xx"}"#,
        r#"task_host_guest_failures_total{kind="trap",phase="before_head"} 1"#,
        r#"task_host_guest_failures_total{kind="timeout",phase="before_head"} 1"#,
        r#"task_host_guest_failures_total{kind="memory_limit",phase="before_head"} 1"#,
        r#"task_host_guest_failures_total{kind="trap",phase="after_head"} 1"#,
        "task_host_instance_slots 1000",
        "task_host_request_duration_seconds_bucket",
        "task_host_build_info{version=",
        "task_host_component_info{sha256=",
        "task_host_connections_open",
    ] {
        assert!(text.contains(line), "no {line:?} in the scrape:\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_operations_and_refused_bodies_are_counted() {
    let server = TestServer::start_with(&components().task_api, |config| {
        with_admin(config);
        config.store = StoreSpec::Memory;
        config.max_body = 64;
    })
    .await;
    let admin = server.admin.expect("the admin listener is on");
    server
        .post("/tasks", json!({ "title": "counted" }))
        .await
        .expect(200);
    crate::common::post_long_title(server.addr, 1000)
        .await
        .expect(413);
    let text = scrape(admin).await;
    promtool_accepts(&text);
    for line in [
        r#"task_host_kv_operations_total{op="increment",backend="memory"} 1"#,
        r#"task_host_kv_operations_total{op="set",backend="memory"} 1"#,
        r#"task_host_kv_operation_duration_seconds_count{op="set",backend="memory"} 1"#,
        r#"task_host_bodies_refused_total{reason="too_large"} 1"#,
    ] {
        assert!(text.contains(line), "no {line:?} in the scrape:\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_turns_503_once_a_drain_begins_while_livez_stays_200() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut host = ServerProcess::faulty(dir.path(), &["--admin-addr", "127.0.0.1:0"]);
    let probe = host.admin().await;
    assert_eq!(
        probe.get("/readyz").await.expect(200),
        json!({ "status": "ready" })
    );
    assert_eq!(
        probe.get("/livez").await.expect(200),
        json!({ "status": "live" })
    );
    probe.get("/other").await.expect(404);
    // A slow request keeps the drain going while the probes are asked again.
    let client = host.client();
    let slow = tokio::spawn(async move { client.get("/slow?ms=2000").await.status });
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.signal(Signal::TERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        probe.get("/readyz").await.expect(503),
        json!({ "status": "not ready", "reason": "draining" })
    );
    probe.get("/livez").await.expect(200);
    assert_eq!(slow.await.expect("the slow request"), 200);
    assert!(host.wait(Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_cannot_starve_the_probes() {
    let server = TestServer::faulty(with_admin).await;
    let admin = server.admin.expect("the admin listener is on");
    // More idle connections than the admin listener keeps open, each sending nothing.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(
            tokio::net::TcpStream::connect(admin)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for path in ["/livez", "/readyz", "/metrics"] {
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            task_host::ops::client::send(
                hyper::Request::get(format!("http://{admin}{path}"))
                    .body(Default::default())
                    .expect("a request"),
            ),
        )
        .await;
        let status = match probe {
            Ok(Ok(response)) => response.status().as_u16(),
            Ok(Err(error)) => panic!("{path} failed beside 100 idle connections: {error:#}"),
            Err(_) => panic!("{path} got no answer within 2 s beside 100 idle connections"),
        };
        assert_eq!(status, 200, "{path}");
    }
    drop(idle);
    server.stop().await;
}
