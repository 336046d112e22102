//! Stock `wasmtime serve` (from ../shared/tools/install-wasmtime-cli.sh).
//!
//! - The plain task_api.wasm with `-S keyvalue`: the component is portable, not tied to
//!   task-host. That store is fresh for every request, so only stateless answers and
//!   single-request effects are checked.
//! - task_api_standalone.wasm with `--dir`: the kv-fs adapter makes the state real, so it
//!   passes the same contract checks as task-host, in parallel instances and across restarts.
//!   It runs as the README's command, whose pool flags live in
//!   [`test_support::STANDALONE_POOL`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustix::process::Signal;
use serde_json::{Value, json};
use task_api_limits::MAX_BODY_ENV;
use test_support::{PLAIN_SERVE_ARGS, STANDALONE_SERVE_ARGS};
use tokio::sync::{Barrier, watch};

use crate::common::{
    ServerProcess, chunked_post, components, exchange_bytes, post_long_title, send_raw,
    send_then_stall,
};
use crate::contract;

/// The plain task_api.wasm under `wasmtime serve -S cli -S keyvalue`, logging into `dir`.
fn plain(dir: &tempfile::TempDir) -> ServerProcess {
    let command = test_support::wasmtime_serve(&components().task_api);
    ServerProcess::spawn(command, dir.path())
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_wasmtime_serve_answers_the_stateless_contract() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = plain(&dir);
    let get = |path: &'static str| send_raw(server.addr, Method::GET, path, None);

    assert_eq!(
        get("/").await.expect(200),
        json!({ "message": "Task Manager API", "version": "1.0.0" })
    );
    assert_eq!(get("/health").await.expect(200)["status"], json!("healthy"));
    assert_eq!(
        get("/nope").await.expect(404),
        json!({ "detail": "Not Found" })
    );
    assert_eq!(
        get("/tasks/abc").await.expect(422)["detail"][0]["type"],
        json!("int_parsing")
    );

    send_raw(server.addr, Method::DELETE, "/tasks", None)
        .await
        .expect_method_not_allowed("GET, POST");

    let invalid = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", b"{}".to_vec())),
    )
    .await;
    assert_eq!(
        invalid.expect(422)["detail"][0]["loc"],
        json!(["body", "title"])
    );

    let created = send_raw(
        server.addr,
        Method::POST,
        "/tasks",
        Some(("application/json", br#"{"title":"x"}"#.to_vec())),
    );
    // 32 MiB is far more than the socket buffers hold, so the client is still sending when
    // the 413 goes out: the component must drain the rest, or wasmtime serve's close resets
    // the connection and the answer is lost.
    let too_large = post_long_title(server.addr, 32 << 20);
    assert_eq!(
        too_large.await.expect(413),
        json!({ "detail": "Request body is larger than 1048576 bytes" }),
        "the component enforces its own limit where the host has none"
    );
    let (answer, written) =
        exchange_bytes(server.addr, chunked_post("Connection: close\r\n", 32)).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(written, "the body was cut off before it ended");
    assert_eq!(
        created.await.expect(200)["title"],
        json!("x"),
        "the store works within one request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_oversized_upload_is_answered_then_let_go() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = plain(&dir);
    // Past the limit, then silence with the connection held open. The component answers,
    // drains until its deadline and returns; wasmtime serve then closes the connection. With
    // no deadline the instance would wait for bytes that never come, and so would this read.
    let mut request = chunked_post("", 2);
    request.truncate(request.len() - b"0\r\n\r\n".len());
    let answer = send_then_stall(server.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn env_sets_the_component_body_limit_under_stock_wasmtime_serve() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let limit = 8 << 20;
    let setting = format!("{MAX_BODY_ENV}={limit}");
    let command = test_support::wasmtime_serve_with(&["--env", &setting], &components().task_api);
    let server = ServerProcess::spawn(command, dir.path());
    let title_len = 2 << 20;
    let created = post_long_title(server.addr, title_len).await.expect(200);
    assert_eq!(created["title"].as_str().map(str::len), Some(title_len));
    assert_eq!(
        post_long_title(server.addr, limit).await.expect(413),
        json!({ "detail": format!("Request body is larger than {limit} bytes") })
    );
}

/// The README's command for task_api_standalone.wasm, run in `dir`: the kv-fs adapter keeps
/// the state in `dir/data`.
fn standalone(dir: &tempfile::TempDir) -> ServerProcess {
    std::fs::create_dir_all(dir.path().join("data")).expect("a data dir");
    let command = test_support::wasmtime_serve_standalone(&components().standalone, dir.path());
    ServerProcess::spawn(command, dir.path())
}

#[test]
fn the_readme_documents_the_commands_these_tests_run() {
    let readme = include_str!("../../../README.md");
    for args in [PLAIN_SERVE_ARGS, STANDALONE_SERVE_ARGS] {
        let command = format!("wasmtime {}", args.join(" "));
        assert!(
            readme.contains(&command),
            "README.md must show `{command}`: the tests run exactly that"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_passes_the_task_life_contract() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_task_life(standalone(&dir).client()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_never_reuses_ids() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_ids_never_reused(standalone(&dir).client()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_component_keeps_fastapi_error_shapes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    contract::check_error_shapes(standalone(&dir).client()).await;
}

/// A request body that is sent only once `release` resolves.
struct HeldBack {
    release: Pin<Box<dyn Future<Output = ()> + Send>>,
    bytes: Option<Bytes>,
    len: u64,
}

impl Body for HeldBack {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        ready!(this.release.as_mut().poll(cx));
        Poll::Ready(this.bytes.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// `POST /tasks` with title `title` on a fresh connection; the head goes out at once, the
/// body only once `release` says so. Waits at `sent` once the request is on its way, then
/// returns the status and the JSON answer.
async fn create_held_back(
    addr: SocketAddr,
    title: String,
    mut release: watch::Receiver<bool>,
    sent: Arc<Barrier>,
) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to wasmtime serve");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    let bytes = Bytes::from(json!({ "title": title }).to_string());
    let body = HeldBack {
        release: Box::pin(async move {
            let _ = release.wait_for(|go| *go).await;
        }),
        len: bytes.len() as u64,
        bytes: Some(bytes),
    };
    let request = Request::builder()
        .method(Method::POST)
        .uri("/tasks")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid request");
    // Queued for the connection task, which writes the head now, whatever we await next.
    let answer = sender.send_request(request);
    sent.wait().await;
    let response = answer.await.expect("an answer");
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("the answer's body")
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!(
            "status {status}, not JSON: {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_creates_all_get_200_and_distinct_ids() {
    const CREATES: usize = 200;
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = standalone(&dir);
    // wasmtime serve instantiates the component when a request's head arrives, so holding
    // every body back until all heads are out keeps all 200 instances alive at once, however
    // fast each create would otherwise finish.
    let (release, released) = watch::channel(false);
    let sent = Arc::new(Barrier::new(CREATES + 1));
    let creates: Vec<_> = (1..=CREATES)
        .map(|i| {
            tokio::spawn(create_held_back(
                server.addr,
                format!("t{i}"),
                released.clone(),
                Arc::clone(&sent),
            ))
        })
        .collect();
    // About 2 s in all here; the bound only turns a hang into a failure.
    let ids = tokio::time::timeout(Duration::from_secs(60), async {
        sent.wait().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = release.send(true);
        let mut ids = BTreeSet::new();
        for create in creates {
            let (status, task) = create.await.expect("the create task ran");
            assert_eq!(status, 200, "a create failed: {task}");
            ids.insert(task["id"].as_u64().expect("an integer id"));
        }
        ids
    })
    .await
    .expect("200 concurrent creates finish within 60 s");
    assert_eq!(
        ids,
        (1..=CREATES as u64).collect::<BTreeSet<_>>(),
        "200 distinct ids"
    );
    let listed = server.client().listed("id").await;
    assert_eq!(listed.len(), CREATES, "every created task is listed");
}

/// Writes `path` as an instance killed `age` ago would have left it.
fn left_by_a_crash(path: &Path, age: Duration) {
    std::fs::write(path, "killed-instance").expect("write the leftover");
    File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now() - age))
        .expect("date the leftover");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_crash_leaves_behind_neither_stalls_creates_nor_stays() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // What a `kill -9` in the middle of creates leaves in the default bucket (layout in
    // wit/kv-fs.wit): the id counter's lock and a temp file that was never renamed. Timing a
    // real kill inside the few milliseconds a create holds the lock is not reliable.
    let bucket = dir.path().join("data/b");
    std::fs::create_dir_all(&bucket).expect("a bucket dir");
    let lock = bucket.join("lnext-task-id");
    let temp = bucket.join(".tmp-00000000deadbeef");
    left_by_a_crash(&lock, Duration::from_secs(3));
    left_by_a_crash(&temp, Duration::from_secs(120));

    let server = standalone(&dir);
    let started = Instant::now();
    let created = server
        .client()
        .post("/tasks", json!({ "title": "after the crash" }))
        .await;
    let took = started.elapsed();
    assert_eq!(created.expect(200)["id"], json!(1));
    assert!(
        took < Duration::from_millis(1500),
        "a lock left 3 s ago held the create up for {took:?}"
    );
    assert!(!lock.exists(), "the dead instance's lock was broken");
    assert!(!temp.exists(), "the dead instance's temp file was swept");
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_and_the_id_sequence_survive_a_wasmtime_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut first = standalone(&dir);
    let client = first.client();
    client.create_tasks(&["a", "b", "c"]).await;
    client
        .send(Method::DELETE, "/tasks/3", None)
        .await
        .expect(200);
    first.signal(Signal::TERM);
    first.wait(Duration::from_secs(10));

    let second = standalone(&dir);
    let client = second.client();
    assert_eq!(client.listed("title").await, [json!("a"), json!("b")]);
    assert_eq!(
        client
            .post("/tasks", json!({ "title": "d" }))
            .await
            .expect(200)["id"],
        json!(4)
    );
}
