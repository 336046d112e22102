//! Redis stopped under a running task-host on `--store redis://…`: every request that needs
//! the store gets `503 {"detail":"Store unavailable"}` at once, not after a hang, and once
//! Redis is back the host serves again without a restart.
//!
//! What Redis still has after a `kill -9` is its persistence setting's business, not the
//! host's: with `appendfsync everysec`, as here, a write Redis acknowledged just before the
//! kill may be gone (Redis may postpone writing its AOF while an fsync is running). The row
//! reports whether the task made before the kill survived, and does not judge it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::RedisServer;

use crate::common::{ServerProcess, components};
use crate::load::{self, Answer, PROMPT};
use crate::table::{Row, duration, setting};

/// The host's store timeout: no answer may wait longer for a Redis that is gone.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the host has to serve again once Redis is back.
const RECOVERY: Duration = Duration::from_secs(2);

/// The rows: Redis stopped, then started again.
pub(crate) async fn rows() -> Vec<Row> {
    let fault = "Redis stopped (`kill -9`) under `--store redis://…`";
    let gone = "… and started again";
    let unavailable = json!({ "detail": "Store unavailable" });
    let expected = (
        format!(
            "writes and reads answer 503 {unavailable} within {} (--store-timeout {})",
            setting(PROMPT),
            setting(STORE_TIMEOUT)
        ),
        format!(
            "writes answer 200 again within {}, and reads, without a restart",
            setting(RECOVERY)
        ),
    );
    let mut redis = match RedisServer::start() {
        Ok(redis) => redis,
        Err(error) => {
            let seen = format!("redis-server did not start: {error}");
            return vec![
                Row::checked(fault, expected.0, false, &seen),
                Row::checked(gone, expected.1, false, seen),
            ];
        }
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let component = components().task_api.display().to_string();
    let store_timeout = setting(STORE_TIMEOUT);
    let host = ServerProcess::host(
        dir.path(),
        &[
            "--component",
            &component,
            "--store",
            &redis.url(),
            "--store-timeout",
            &store_timeout,
        ],
    );
    let before = load::create(host.addr, "before the fault").await;

    redis.kill();
    let write = load::create(host.addr, "while Redis is away").await;
    let read = load::get(host.addr, "/tasks/1").await;
    let refused = |answer: &Result<Answer, String>| {
        answer
            .as_ref()
            .is_ok_and(|answer| answer.status == 503 && answer.json == unavailable)
    };
    let prompt =
        |answer: &Result<Answer, String>| answer.as_ref().is_ok_and(|answer| answer.took < PROMPT);
    let staged = load::is_ok(&before);
    let during = Row::checked(
        fault,
        expected.0,
        staged && refused(&write) && refused(&read) && prompt(&write) && prompt(&read),
        format!(
            "POST {}; GET /tasks/1 {}",
            load::brief(&write),
            load::brief(&read)
        ),
    );

    let restarted = redis.start_again();
    let started = Instant::now();
    let mut after = load::create(host.addr, "after the fault").await;
    while !load::is_ok(&after) && started.elapsed() < RECOVERY {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = load::create(host.addr, "after the fault").await;
    }
    let took = started.elapsed();
    let id = after
        .as_ref()
        .map_or(Value::Null, |answer| answer.json["id"].clone());
    let read = load::get(host.addr, &format!("/tasks/{id}")).await;
    let read_back = read
        .as_ref()
        .is_ok_and(|answer| answer.status == 200 && answer.json["title"] == "after the fault");
    let earlier = match load::get(host.addr, "/tasks/1").await {
        Ok(answer) if answer.status == 200 => "there",
        Ok(_) => "gone",
        Err(_) => "unknown",
    };
    let recovery = Row::checked(
        gone,
        expected.1,
        restarted.is_ok() && load::is_ok(&after) && read_back,
        match restarted {
            Ok(()) => format!(
                "POST {} after {}, then GET /tasks/{id} {}; the task made just before the kill: \
                 {earlier}",
                load::brief(&after),
                duration(took),
                load::brief(&read)
            ),
            Err(error) => format!("redis-server did not start again: {error}"),
        },
    );
    vec![during, recovery]
}
