//! Scaling out: two task-host processes on one Redis (a `redis-server` of each test's own)
//! serve one set of tasks, hand out ids that never collide, answer 503 at once while Redis
//! is away, and recover on their own when it returns.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use test_support::RedisServer;

use crate::common::{Client, Reply, ServerProcess, components};

/// The store timeout the replicas run with: short, so that the outage test is quick.
const STORE_TIMEOUT: &str = "500ms";
/// Longer than any answer may take while Redis is away: the store timeout, and the rest.
const NO_HANG: Duration = Duration::from_secs(3);

/// Two replicas of the task API on `redis`, with their admin listeners.
fn two_replicas(dir: &tempfile::TempDir, redis: &RedisServer) -> [ServerProcess; 2] {
    let component = components().task_api.to_string_lossy().into_owned();
    let url = redis.url();
    let flags = [
        "--component",
        &component,
        "--store",
        &url,
        "--store-timeout",
        STORE_TIMEOUT,
        "--admin-addr",
        "127.0.0.1:0",
    ];
    [
        ServerProcess::host(dir.path(), &flags),
        ServerProcess::host(dir.path(), &flags),
    ]
}

fn start_redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_created_through_one_replica_is_read_updated_and_deleted_through_the_other() {
    let redis = start_redis();
    let dir = tempfile::tempdir().expect("a temp dir");
    let [a, b] = two_replicas(&dir, &redis);
    let (a, b) = (a.client(), b.client());

    let created = a
        .post("/tasks", json!({ "title": "via A", "description": "d" }))
        .await
        .expect(200);
    let id = created["id"].as_u64().expect("an id");
    assert_eq!(b.get(&format!("/tasks/{id}")).await.expect(200), created);
    let renamed = b
        .send(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(json!({ "title": "renamed via B" })),
        )
        .await
        .expect(200);
    assert_eq!(renamed["title"], "renamed via B");
    assert_eq!(a.get(&format!("/tasks/{id}")).await.expect(200), renamed);
    b.send(Method::PUT, &format!("/tasks/{id}/complete"), None)
        .await
        .expect(200);
    assert_eq!(a.listed("completed").await, [json!(true)]);
    b.send(Method::DELETE, &format!("/tasks/{id}"), None)
        .await
        .expect(200);
    assert_eq!(
        a.get(&format!("/tasks/{id}")).await.expect(404),
        json!({ "detail": "Task not found" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_spread_over_both_replicas_get_distinct_ids() {
    let redis = start_redis();
    let dir = tempfile::tempdir().expect("a temp dir");
    let [a, b] = two_replicas(&dir, &redis);
    let replicas = [a.client(), b.client()];
    let creates: Vec<_> = (0..200)
        .map(|i| {
            let replica = replicas[i % 2];
            tokio::spawn(async move {
                replica
                    .post("/tasks", json!({ "title": format!("t{i}") }))
                    .await
                    .expect(200)["id"]
                    .as_u64()
                    .expect("an id")
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for create in creates {
        ids.insert(create.await.expect("a create"));
    }
    assert_eq!(ids, (1..=200).collect(), "200 distinct ids, none skipped");
    for replica in replicas {
        assert_eq!(
            replica.listed_ids().await,
            (1..=200).collect::<Vec<_>>(),
            "in id order, once each"
        );
    }
}

/// What one request of the load got, and how long it took.
struct Outcome {
    reply: Reply,
    took: Duration,
}

/// Sends creates and reads to `replica` until `stop`, and returns every outcome. A request
/// that gets no answer within [`NO_HANG`] fails the test.
async fn load(replica: Client, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut i = 0_u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        let request = async {
            if i.is_multiple_of(2) {
                replica.post("/tasks", json!({ "title": "load" })).await
            } else {
                replica.get("/tasks/1").await
            }
        };
        let reply = tokio::time::timeout(NO_HANG, request)
            .await
            .unwrap_or_else(|_| panic!("no answer within {NO_HANG:?}: a hang"));
        outcomes.push(Outcome {
            reply,
            took: started.elapsed(),
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    outcomes
}

/// Polls `replica` until `GET /tasks/1` answers 200, within `within`.
async fn wait_until_serving(replica: Client, within: Duration) {
    let deadline = Instant::now() + within;
    while replica.get("/tasks/1").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "not serving again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_mid_load_is_503_at_once_and_both_replicas_recover_on_their_own() {
    let mut redis = start_redis();
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = two_replicas(&dir, &redis);
    let replicas = [hosts[0].client(), hosts[1].client()];
    let probe = hosts[0].admin().await;
    replicas[0]
        .post("/tasks", json!({ "title": "before the outage" }))
        .await
        .expect(200);

    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = replicas
        .iter()
        .flat_map(|replica| [*replica, *replica])
        .map(|replica| tokio::spawn(load(replica, Arc::clone(&stop))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        probe.get("/readyz").await.expect(503)["status"],
        "not ready",
        "a balancer stops sending to a replica whose store is away"
    );
    redis.start_again().expect("redis-server starts again");
    for replica in replicas {
        wait_until_serving(replica, Duration::from_secs(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = Vec::new();
    for load in loads {
        outcomes.extend(load.await.expect("a load task"));
    }
    let unavailable: Vec<&Outcome> = outcomes
        .iter()
        .filter(|outcome| outcome.reply.status == 503)
        .collect();
    assert!(
        !unavailable.is_empty(),
        "no request met the outage ({} requests)",
        outcomes.len()
    );
    for outcome in &unavailable {
        assert_eq!(
            outcome.reply.json(),
            json!({ "detail": "Store unavailable" })
        );
        assert_eq!(
            outcome
                .reply
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    let others: Vec<(u16, &str)> = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome.reply.status, 200 | 503))
        .map(|outcome| (outcome.reply.status, outcome.reply.text.as_str()))
        .collect();
    assert_eq!(others, [], "only 200s and 503s");
    let slowest = outcomes
        .iter()
        .map(|outcome| outcome.took)
        .max()
        .unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "the slowest answer took {slowest:?}"
    );
    assert_eq!(probe.get("/readyz").await.expect(200)["status"], "ready");
    assert_eq!(
        replicas[1].get("/tasks/1").await.expect(200)["title"],
        "before the outage",
        "Redis's append-only file kept it"
    );
    for host in &hosts {
        host.wait_for_log("answered 503 for the guest", 1, Duration::from_secs(5))
            .await;
    }
}
