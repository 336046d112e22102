//! Crash trials: the real binary on one redb store, killed with SIGKILL at a random moment
//! in the middle of concurrent creates from [`CLIENTS`] clients, [`ROUNDS`] times over.
//! After every restart each create acknowledged with a 2xx, in any round, must be in the
//! store exactly as it was answered, no id may have been handed out twice, and the next id
//! must be past every acknowledged one. Each round prints its counts; the table gets one
//! row for all of them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::CONTENT_TYPE;
use rustix::process::Signal;
use serde_json::{Value, json};

use crate::common::{ServerProcess, task_api_on_redb};
use crate::table::{Row, count};

const ROUNDS: usize = 20;
/// Clients creating tasks at once, each one request at a time.
const CLIENTS: usize = 16;
/// When the kill comes, in milliseconds after the clients start: at random within this.
const KILL_WINDOW_MS: Range<u64> = 50..400;
/// A client stops after this many creates, should the kill never come.
const MAX_CREATES_PER_CLIENT: usize = 10_000;
/// A create that takes longer than this ends its client, as a failed one does.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every task acknowledged so far, by id, as its 2xx answer gave it.
type Acknowledged = BTreeMap<u64, Value>;

/// What one round's clients saw before the kill.
#[derive(Debug, Default)]
struct Load {
    acknowledged: Vec<Value>,
    /// Answers other than 2xx: not acknowledged, and not expected either.
    refused: usize,
}

/// The one row: every round's kill, and what the restart found.
pub(crate) async fn rows() -> Vec<Row> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let flags = task_api_on_redb(dir.path());
    let mut acknowledged = Acknowledged::new();
    let mut host = ServerProcess::host(dir.path(), &flags);
    let (mut unacknowledged, mut kills) = (0, Vec::new());
    // What broke the promise, round by round; empty when every round kept it.
    let mut broken = Vec::new();
    for round in 1..=ROUNDS {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| tokio::spawn(create_until_refused(host.addr, round, client)))
            .collect();
        let kill_after = Duration::from_millis(fastrand::u64(KILL_WINDOW_MS));
        tokio::time::sleep(kill_after).await;
        host.signal(Signal::KILL);
        host.wait(Duration::from_secs(10));
        kills.push(kill_after.as_millis());
        let mut load = Load::default();
        for client in clients {
            let seen = client.await.expect("a client task");
            load.acknowledged.extend(seen.acknowledged);
            load.refused += seen.refused;
        }
        let created = load.acknowledged.len();
        for task in load.acknowledged {
            let id = task["id"].as_u64().expect("an integer id");
            if acknowledged.insert(id, task).is_some() {
                broken.push(format!("round {round}: id {id} handed out twice"));
            }
        }

        host = ServerProcess::host(dir.path(), &flags);
        let (stored, missing) = verify(&host, &acknowledged).await;
        if missing > 0 {
            broken.push(format!(
                "round {round}: {missing} acknowledged tasks missing or changed"
            ));
        }
        let lost_answers = stored.saturating_sub(acknowledged.len() + unacknowledged);
        unacknowledged += lost_answers;
        eprintln!(
            "crash round {round:>2}: kill -9 at {:>3} ms after {created:>3} acknowledged creates \
             ({} refused); restarted with {} of {} acknowledged tasks intact, and \
             {lost_answers} committed whose answer never went out",
            kill_after.as_millis(),
            load.refused,
            acknowledged.len() - missing,
            acknowledged.len(),
        );
        // The next create, on the restarted host, is acknowledged too.
        let highest = acknowledged.keys().next_back().copied().unwrap_or(0);
        let next = create_next(&host, round).await;
        let id = next["id"].as_u64().expect("an integer id");
        if id <= highest {
            broken.push(format!(
                "round {round}: the next id, {id}, is not past every acknowledged one ({highest})"
            ));
        }
        acknowledged.insert(id, next);
    }
    let seen = if broken.is_empty() {
        format!(
            "{ROUNDS} kills at {}–{} ms; {} acknowledged creates, all intact after every \
             restart; {} more committed whose answer never went out",
            kills.iter().min().copied().unwrap_or_default(),
            kills.iter().max().copied().unwrap_or_default(),
            count(acknowledged.len()),
            count(unacknowledged),
        )
    } else {
        broken.join("; ")
    };
    vec![Row::checked(
        format!("`kill -9` mid-write ×{ROUNDS} ({CLIENTS} clients creating, redb)"),
        "every create acknowledged with a 2xx is there, intact, after each restart; no id \
         handed out twice; the next id is past every acknowledged one",
        broken.is_empty(),
        seen,
    )]
}

/// How many tasks are stored, and how many acknowledged ones are missing or not as they
/// were answered.
async fn verify(host: &ServerProcess, acknowledged: &Acknowledged) -> (usize, usize) {
    let listed = host.client().get("/tasks").await.expect(200);
    let stored: BTreeMap<u64, &Value> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| (task["id"].as_u64().expect("an integer id"), task))
        .collect();
    let missing = acknowledged
        .iter()
        .filter(|(id, task)| stored.get(id) != Some(task))
        .count();
    (stored.len(), missing)
}

/// One create on the restarted host, which must succeed.
async fn create_next(host: &ServerProcess, round: usize) -> Value {
    host.client()
        .post(
            "/tasks",
            json!({ "title": format!("after restart {round}") }),
        )
        .await
        .expect(200)
}

/// Creates tasks one after another until the host stops answering.
async fn create_until_refused(addr: SocketAddr, round: usize, client: usize) -> Load {
    let mut load = Load::default();
    for n in 0..MAX_CREATES_PER_CLIENT {
        let title = format!("round {round} client {client} task {n}");
        let body = json!({ "title": title, "description": "crash trial" }).to_string();
        let request = Request::post(format!("http://{addr}/tasks"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let response = match tokio::time::timeout(
            REQUEST_TIMEOUT,
            task_host::ops::client::send(request),
        )
        .await
        {
            Ok(Ok(response)) => response,
            // Refused, reset or cut off: the host is gone.
            Ok(Err(_)) | Err(_) => break,
        };
        if !response.status().is_success() {
            load.refused += 1;
            continue;
        }
        let task: Value = serde_json::from_slice(response.body()).expect("a task as JSON");
        assert_eq!(task["title"], json!(title), "the answer is this create's");
        load.acknowledged.push(task);
    }
    load
}
