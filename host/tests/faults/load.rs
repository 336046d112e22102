//! Normal traffic beside the faults: clients sending `GET /` one request after another, and
//! what they saw while a fault was going on. Their failures are counted, never raised: the
//! table reports them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

use crate::table::{count, duration};

/// What "answers promptly" means for a normal request beside a fault.
pub(crate) const PROMPT: Duration = Duration::from_secs(1);
/// A request not answered within this has failed.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// The load stops by itself after this long, whatever becomes of the suite.
const LOAD_LIMIT: Duration = Duration::from_secs(60);

/// One answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) text: String,
    /// The body as JSON, or `Value::Null` if it was not JSON.
    pub(crate) json: Value,
    pub(crate) took: Duration,
}

/// Sends one request on a fresh connection and reads the answer, or says what went wrong.
pub(crate) async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<Answer, String> {
    let started = Instant::now();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|error| error.to_string())?;
    let response = tokio::time::timeout(REQUEST_LIMIT, task_host::ops::client::send(request))
        .await
        .map_err(|_| format!("no answer within {}", duration(REQUEST_LIMIT)))?
        .map_err(|error| format!("{error:#}"))?;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    Ok(Answer {
        status: response.status().as_u16(),
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        took: started.elapsed(),
    })
}

/// `GET path`.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Result<Answer, String> {
    send(addr, "GET", path, None).await
}

/// `POST /tasks` with `title`.
pub(crate) async fn create(addr: SocketAddr, title: &str) -> Result<Answer, String> {
    let body = json!({ "title": title }).to_string();
    send(addr, "POST", "/tasks", Some(body)).await
}

/// Whether the answer came and was a 200.
pub(crate) fn is_ok(answer: &Result<Answer, String>) -> bool {
    answer.as_ref().is_ok_and(|answer| answer.status == 200)
}

/// An answer for the table's "seen" column: `503 {"detail":"…"} in 3 ms`, the text if it
/// was not JSON, or what went wrong.
pub(crate) fn brief(answer: &Result<Answer, String>) -> String {
    match answer {
        Ok(answer) if answer.json.is_null() => format!(
            "{} {:?} in {}",
            answer.status,
            answer.text,
            duration(answer.took)
        ),
        Ok(answer) if answer.status == 200 => format!("200 in {}", duration(answer.took)),
        Ok(answer) => format!(
            "{} {} in {}",
            answer.status,
            answer.json,
            duration(answer.took)
        ),
        Err(error) => format!("failed: {error}"),
    }
}

/// What the normal clients saw over some stretch of time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    requests: usize,
    failed: usize,
    first_failure: Option<String>,
    slowest: Duration,
}

impl Seen {
    fn record(&mut self, outcome: Result<Duration, String>) {
        self.requests += 1;
        match outcome {
            Ok(took) => self.slowest = self.slowest.max(took),
            Err(failure) => {
                self.failed += 1;
                self.first_failure.get_or_insert(failure);
            }
        }
    }

    /// Some requests were made, none failed, and each was answered promptly.
    pub(crate) fn held(&self) -> bool {
        self.requests > 0 && self.failed == 0 && self.slowest < PROMPT
    }

    /// `0 of 812 normal requests failed, slowest 35 ms`.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!(
            "{} of {} normal requests failed, slowest {}",
            count(self.failed),
            count(self.requests),
            duration(self.slowest)
        );
        if let Some(failure) = &self.first_failure {
            text.push_str(&format!(" (first: {failure})"));
        }
        text
    }
}

/// Clients sending `GET /` to one server until stopped, each waiting `pause` after each
/// answer.
pub(crate) struct Load {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients.
    pub(crate) fn start(addr: SocketAddr, clients: usize, pause: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
                tokio::spawn(async move {
                    let started = Instant::now();
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                        let outcome = normal(addr).await;
                        lock(&seen).record(outcome);
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Self {
            seen,
            stop,
            clients,
        }
    }

    /// Runs `work` and returns its output with what the clients saw meanwhile.
    pub(crate) async fn during<T>(&self, work: impl Future<Output = T>) -> (T, Seen) {
        *lock(&self.seen) = Seen::default();
        let output = work.await;
        (output, lock(&self.seen).clone())
    }

    /// Stops the clients and waits for their last requests.
    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            let _ = client.await;
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` beside one client that sends `GET /` every 100 ms, as a person checking
/// whether the server still answers would, until `work` is done and one more answer is in.
pub(crate) async fn probed<T>(addr: SocketAddr, work: impl Future<Output = T>) -> (T, Seen) {
    let done = AtomicBool::new(false);
    let working = async {
        let output = work.await;
        done.store(true, Ordering::Relaxed);
        output
    };
    let probing = async {
        let mut seen = Seen::default();
        let started = Instant::now();
        loop {
            seen.record(normal(addr).await);
            if done.load(Ordering::Relaxed) || started.elapsed() > LOAD_LIMIT {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(working, probing)
}

/// Runs every future at once, each as a task of its own, and returns their outputs in
/// order; `None` for one that panicked.
pub(crate) async fn all_at_once<T: Send + 'static>(
    work: impl IntoIterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<Option<T>> {
    let tasks: Vec<_> = work.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await.ok());
    }
    outputs
}

/// One normal request: `GET /` answered 200, and how long that took.
async fn normal(addr: SocketAddr) -> Result<Duration, String> {
    match get(addr, "/").await? {
        answer if answer.status == 200 => Ok(answer.took),
        answer => Err(format!("{} {}", answer.status, answer.json)),
    }
}
