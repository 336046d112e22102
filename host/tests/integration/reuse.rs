//! Instance reuse, seen from a guest that counts its requests in a global: the count goes
//! on while one instance serves, and starts again from 1 in a fresh instance, after
//! `--instance-reuse` requests, and after a request that trapped, ran out its deadline or
//! hit the memory cap.

use std::time::Duration;

use hyper::Method;

use crate::common::{TestServer, send_raw};

/// `GET /count`: how many requests the instance that answered has served.
async fn count(server: &TestServer) -> u64 {
    let reply = server.get("/count").await;
    reply.expect(200)["count"]
        .as_u64()
        .expect("an integer count")
}

async fn counts(server: &TestServer, requests: usize) -> Vec<u64> {
    let mut counts = Vec::new();
    for _ in 0..requests {
        counts.push(count(server).await);
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_serves_instance_reuse_requests_then_a_fresh_one_takes_over() {
    let server = TestServer::faulty(|config| {
        config.instance_reuse = 3;
        config.admin_addr = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await;
    assert_eq!(counts(&server, 7).await, [1, 2, 3, 1, 2, 3, 1]);
    // An operator sees the same: three instances made, four requests on kept ones.
    let admin = server.admin.expect("the admin listener is on");
    let scrape = send_raw(admin, Method::GET, "/metrics", None).await.text;
    for line in [
        r#"task_host_guest_instances_total{source="new"} 3"#,
        r#"task_host_guest_instances_total{source="reused"} 4"#,
    ] {
        assert!(
            scrape.lines().any(|seen| seen == line),
            "{line} in:\n{scrape}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_reuse_1_gives_every_request_a_fresh_instance() {
    let server = TestServer::faulty(|config| config.instance_reuse = 1).await;
    assert_eq!(counts(&server, 3).await, [1, 1, 1]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_trapped_timed_out_or_hit_the_memory_cap_is_not_reused() {
    let server = TestServer::faulty(|config| {
        config.instance_reuse = 100;
        config.request_timeout = Duration::from_millis(500);
        config.max_memory = 16 << 20;
    })
    .await;
    for (path, status) in [("/trap", 500), ("/loop", 504), ("/alloc", 500)] {
        assert_eq!(counts(&server, 2).await, [1, 2], "before {path}");
        // Served by the instance that just counted to 2, the only idle one.
        assert_eq!(server.get(path).await.status, status, "{path}");
        assert_eq!(count(&server).await, 1, "{path}: a fresh instance after it");
        // The same fate for the instance that counted 1, so that the next round starts
        // with no idle instance.
        assert_eq!(server.get(path).await.status, status, "{path} again");
    }
    server.stop().await;
}
