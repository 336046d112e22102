//! Shared helpers: the real components (built by `cargo xtask test`), in-process servers with
//! a fresh store each, the `task-host` binary as a child process, and a JSON-aware HTTP client.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderMap};
use hyper::{Method, Request};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;
use task_host::Server;
use task_host::config::Config;
use task_host::kv::StoreSpec;
use tempfile::TempDir;
use test_support::{Components, ServerChild};

/// The components the tests serve, from the directory `cargo xtask test` built them in.
///
/// Without them no integration test can run, so the first test to ask ends the whole run
/// with one line saying how to get them, rather than every test failing with it.
pub(crate) fn components() -> &'static Components {
    static FOUND: OnceLock<Components> = OnceLock::new();
    FOUND.get_or_init(|| {
        Components::from_env().unwrap_or_else(|reason| {
            // Straight to stderr: libtest captures eprintln! output, and exit discards it.
            let _ = writeln!(std::io::stderr(), "integration tests: {reason}");
            std::process::exit(2)
        })
    })
}

/// Talks JSON over HTTP to one server, wherever it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
}

impl Client {
    /// Sends a request with an optional JSON body and reads the answer.
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|body| ("application/json", body.to_string().into_bytes()));
        send_raw(self.addr, method, path, body).await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `GET /tasks`, asserting 200, and the value of `field` in every listed task, in order.
    pub(crate) async fn listed(&self, field: &str) -> Vec<Value> {
        let tasks = self.get("/tasks").await.expect(200);
        tasks
            .as_array()
            .expect("a list")
            .iter()
            .map(|task| task[field].clone())
            .collect()
    }

    /// `GET /tasks`, asserting 200, and the id of every listed task, in order.
    pub(crate) async fn listed_ids(&self) -> Vec<u64> {
        let ids = self.listed("id").await;
        ids.iter().filter_map(Value::as_u64).collect()
    }

    /// Creates one task per title, in order, asserting each create succeeds.
    pub(crate) async fn create_tasks(&self, titles: &[&str]) {
        for title in titles {
            self.post("/tasks", serde_json::json!({ "title": title }))
                .await
                .expect(200);
        }
    }
}

/// A server running in this process, with its own store in a temp dir. It derefs to the
/// [`Client`] that talks to it.
pub(crate) struct TestServer {
    client: Client,
    /// Where `/metrics`, `/livez` and `/readyz` answer, if the config asked for them.
    pub(crate) admin: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    running: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

impl TestServer {
    /// Serves `component` with a fresh redb store and otherwise default settings.
    pub(crate) async fn start(component: &Path) -> Self {
        Self::start_with(component, |_| {}).await
    }

    /// Serves the faulty fixture, with the defaults as `configure` changes them.
    pub(crate) async fn faulty(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(&components().faulty, configure).await
    }

    /// Serves `component` with a fresh redb store and the defaults, as `configure` changes
    /// them.
    pub(crate) async fn start_with(component: &Path, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = Config::new(component);
        config.store = StoreSpec::Redb(dir.path().join("store.redb"));
        // A cache of its own, so that each test writes one entry and none reads another's.
        config.cache_dir = Some(dir.path().join("cache"));
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let server = Server::new(listener, config)
            .await
            .expect("the server starts");
        let addr = server.local_addr().expect("a bound address");
        let admin = server.admin_addr();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async move {
            let _ = stop.await;
        }));
        Self {
            client: Client { addr },
            admin,
            shutdown: Some(shutdown),
            running,
            _dir: dir,
        }
    }

    /// Stops accepting and waits for the drain.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.running).await;
    }
}

impl std::ops::Deref for TestServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A response with its body parsed as JSON (`Value::Null` if it was not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    /// Asserts the status, then returns the JSON body.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.json()
    }

    /// Asserts FastAPI's 405 answer with exactly `allow` in the `Allow` header.
    #[track_caller]
    pub(crate) fn expect_method_not_allowed(&self, allow: &str) {
        assert_eq!(
            self.expect(405),
            serde_json::json!({ "detail": "Method Not Allowed" })
        );
        assert_eq!(
            self.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow)
        );
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text))
    }
}

/// Sends any body with any content type.
pub(crate) async fn send_raw(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some((content_type, _)) = &body {
        request = request.header(CONTENT_TYPE, *content_type);
    }
    let body = Full::new(Bytes::from(
        body.map(|(_, bytes)| bytes).unwrap_or_default(),
    ));
    let response = task_host::ops::client::send(request.body(body).expect("a valid request"))
        .await
        .expect("an HTTP answer");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `POST /tasks` with a title of `len` bytes, to push the body past a size limit.
pub(crate) async fn post_long_title(addr: SocketAddr, len: usize) -> Reply {
    let body = format!(r#"{{"title":"{}"}}"#, "x".repeat(len));
    send_raw(
        addr,
        Method::POST,
        "/tasks",
        Some(("application/json", body.into_bytes())),
    )
    .await
}

/// A raw `POST /tasks` with `headers` (each line ending in CRLF) and a chunked body of
/// `mib` 1 MiB chunks of spaces: a client that declares no length and keeps on sending.
pub(crate) fn chunked_post(headers: &str, mib: usize) -> Vec<u8> {
    let mut request = format!(
        "POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n{headers}\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..mib {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// Writes `request` byte for byte on a fresh connection while reading the answer, as a
/// client that ignores what the server says until it has sent everything would. Returns the
/// raw answer, read until the server closes, and whether the whole request got written.
pub(crate) async fn exchange_bytes(addr: SocketAddr, request: Vec<u8>) -> (String, bool) {
    use tokio::io::AsyncWriteExt as _;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move { writer.write_all(&request).await.is_ok() });
    let answer = read_until_closed(&mut reader).await;
    let written = writing.await.expect("the writer task");
    (answer, written)
}

/// Writes `request` on a fresh connection, then goes silent with the connection held open,
/// as a stalled client does. Returns the raw answer, read until the server closes.
pub(crate) async fn send_then_stall(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    stream
        .write_all(request)
        .await
        .expect("send the start of the request");
    read_until_closed(&mut stream).await
}

/// Everything the server sends until it closes the connection, which it must within 30 s.
async fn read_until_closed(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Flags serving the task API with a redb store inside `dir`.
pub(crate) fn task_api_on_redb(dir: &Path) -> Vec<String> {
    let store = format!("redb:{}", dir.join("data/store.redb").display());
    let component = components().task_api.to_string_lossy().into_owned();
    vec!["--component".into(), component, "--store".into(), store]
}

/// The `task-host` binary, run as a child process.
pub(crate) fn host_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_task-host"));
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    command
}

/// A server child process (`task-host serve` or `wasmtime serve`). Its output goes to a
/// log file; on drop it is killed and, if the test failed, the log is printed.
pub(crate) struct ServerProcess {
    server: ServerChild,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `task-host serve` on an ephemeral port with `flags`, with its compile cache in
    /// `log_dir` rather than the user's own (a restart in the same `log_dir` finds it).
    pub(crate) fn host<S: AsRef<std::ffi::OsStr>>(log_dir: &Path, flags: &[S]) -> Self {
        let mut command = test_support::task_host_serve(host_command());
        command.env("TASK_HOST_CACHE_DIR", log_dir.join("cache"));
        command.args(flags);
        Self::spawn(command, log_dir)
    }

    /// Starts `task-host serve` on the faulty fixture with a memory store, plus `flags`.
    pub(crate) fn faulty(log_dir: &Path, flags: &[&str]) -> Self {
        let component = components().faulty.display().to_string();
        let mut all = vec!["--component", &component, "--store", "memory"];
        all.extend_from_slice(flags);
        Self::host(log_dir, &all)
    }

    /// Starts `command` and waits for its startup line.
    pub(crate) fn spawn(mut command: Command, log_dir: &Path) -> Self {
        let log = log_dir.join(format!(
            "server-{}.log",
            LOG_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).expect("a log file");
        let server = ServerChild::spawn(&mut command, file).unwrap_or_else(|error| {
            panic!(
                "{command:?}: {error}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Self {
            addr: server.addr(),
            server,
            log,
        }
    }

    /// The admin listener's address, from the startup log: start the server with
    /// `--admin-addr 127.0.0.1:0`.
    pub(crate) async fn admin_addr(&self) -> SocketAddr {
        let line = self
            .wait_for_log("admin=http://", 1, Duration::from_secs(10))
            .await;
        line[0]
            .split("admin=http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .expect("the admin address in the startup log")
    }

    /// A client for this server.
    pub(crate) fn client(&self) -> Client {
        Client { addr: self.addr }
    }

    /// Sends `signal` (`Signal::TERM`, `Signal::KILL`, ...).
    pub(crate) fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.server.id())
            .ok()
            .and_then(Pid::from_raw)
            .expect("a valid pid");
        kill_process(pid, signal).unwrap_or_else(|error| panic!("sending {signal:?}: {error}"));
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.server.try_wait().expect("waitpid works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {timeout:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log holds `count` lines containing `needle` and returns those lines.
    /// Log lines trail the events they report by a moment, so tests poll rather than peek.
    pub(crate) async fn wait_for_log(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let lines = self.logged(needle, count, timeout).await;
        assert!(
            lines.len() >= count,
            "{count} lines with {needle:?} did not appear within {timeout:?}:\n{}",
            self.log_text()
        );
        lines
    }

    /// The log lines containing `needle`, once there are `count` of them or `timeout` has
    /// passed, whichever comes first: [`Self::wait_for_log`] for callers that report a
    /// shortfall rather than panic on it.
    pub(crate) async fn logged(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines: Vec<String> = self
                .log_text()
                .lines()
                .filter(|line| line.contains(needle))
                .map(str::to_owned)
                .collect();
            if lines.len() >= count || started.elapsed() >= timeout {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client for the admin listener, at the address the startup log names (the server
    /// must run with `--admin-addr`).
    pub(crate) async fn admin(&self) -> Client {
        Client {
            addr: self.admin_addr().await,
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

static LOG_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log_text());
        }
    }
}
