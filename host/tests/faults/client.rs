//! Clients that are slow, silent, too many, or send huge heads. `--header-timeout` closes
//! the slow and the silent, `--max-connections` refuses the one too many at once, hyper
//! refuses a head past its buffer, and all the while a normal request is answered promptly.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustix::process::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::ServerProcess;
use crate::load::{self, PROMPT, all_at_once, probed};
use crate::table::{Row, count, duration, grouped, setting, span};

/// The server's `--header-timeout`.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The server's `--max-connections`.
const MAX_CONNECTIONS: usize = 1024;
/// Silent connections held open at once, below the cap.
const IDLE: usize = 1000;
/// Clients sending their heads a byte at a time, at once.
const DRIBBLERS: usize = 100;
/// A connection the server has not closed by then has outlived every timeout it has.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// The rows: dribbled heads, idle connections, the cap, and heads of 64 KiB and 1 MiB.
pub(crate) async fn rows() -> Vec<Row> {
    raise_open_file_limit();
    let dir = tempfile::tempdir().expect("a temp dir");
    let host = ServerProcess::faulty(
        dir.path(),
        &[
            "--header-timeout",
            &setting(HEADER_TIMEOUT),
            "--max-connections",
            &MAX_CONNECTIONS.to_string(),
            "--admin-addr",
            "127.0.0.1:0",
        ],
    );
    let mut rows = vec![dribbled_heads(host.addr).await];
    rows.extend(idle_connections_up_to_the_cap(&host).await);
    rows.push(
        big_heads(
            host.addr,
            64 << 10,
            "64 KiB",
            "answered 200: hyper reads heads of up to about 400 KiB",
            |answer| answer.starts_with("200"),
        )
        .await,
    );
    rows.push(
        big_heads(
            host.addr,
            1 << 20,
            "1 MiB",
            "refused before any guest runs: hyper's 431 (no JSON body) or a close",
            |answer| !answer.starts_with("200"),
        )
        .await,
    );
    rows
}

/// Raises this process's soft open-file limit to the hard one: holding the cap's worth of
/// connections takes more descriptors than a default soft limit of 1,024.
fn raise_open_file_limit() {
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// How a connection ended, as the client saw it: what the server sent, and whether it closed
/// or reset the connection.
#[derive(Debug)]
struct Ending {
    /// The answer's status line, or `nothing`.
    answer: String,
    body: String,
    reset: bool,
    /// From the connect to the close.
    after: Duration,
}

impl Ending {
    /// Closed unanswered by the header timeout: not before it (give or take the time a
    /// connect takes to be seen on both ends), and not long after.
    fn timed_out(&self) -> bool {
        let at_timeout = HEADER_TIMEOUT.mul_f64(0.9)..HEADER_TIMEOUT + PROMPT;
        self.answer == "nothing" && at_timeout.contains(&self.after)
    }

    /// `431 Request Header Fields Too Large, then closed` or `nothing, then reset`.
    fn describe(&self) -> String {
        let how = if self.reset { "reset" } else { "closed" };
        format!("{}, then {how}", self.answer)
    }
}

/// Reads until the server closes or resets the connection, or [`CLOSE_LIMIT`] passes.
async fn ending(reader: &mut (impl AsyncRead + Unpin), connected: Instant) -> Option<Ending> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(CLOSE_LIMIT, reader.read_to_end(&mut answer)).await;
    let reset = match read {
        Err(_) => return None,
        Ok(result) => result.is_err(),
    };
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let answer = match status_line.strip_prefix("HTTP/1.1 ") {
        Some(status) if body.is_empty() => format!("{status} without a body"),
        Some(status) => status.to_owned(),
        None if text.is_empty() => "nothing".to_owned(),
        None => format!("{status_line:?}"),
    };
    Some(Ending {
        answer,
        body: body.to_owned(),
        reset,
        after: connected.elapsed(),
    })
}

/// Equal descriptions counted: `nothing, then closed ×100`.
fn tally(descriptions: impl IntoIterator<Item = String>) -> String {
    let parts: Vec<String> = grouped(
        descriptions
            .into_iter()
            .map(|description| (description, ())),
    )
    .into_iter()
    .map(|(description, times)| format!("{description} ×{}", count(times.len())))
    .collect();
    parts.join(", ")
}

/// Slowloris: heads sent a byte every 100 ms, which would take 14 s each.
async fn dribbled_heads(addr: SocketAddr) -> Row {
    let dribbling = (0..DRIBBLERS).map(|_| dribble(addr));
    let (endings, normal) = probed(addr, all_at_once(dribbling)).await;
    let closed: Vec<&Ending> = endings.iter().flatten().flatten().collect();
    let met = closed.len() == DRIBBLERS && closed.iter().all(|ending| ending.timed_out());
    let mut seen = format!(
        "{} after {}",
        tally(closed.iter().map(|ending| ending.describe())),
        span(closed.iter().map(|ending| ending.after))
    );
    if closed.len() < DRIBBLERS {
        seen.push_str(&format!(
            "; {} still open after {}",
            DRIBBLERS - closed.len(),
            duration(CLOSE_LIMIT)
        ));
    }
    Row::checked(
        format!("request heads dribbled a byte per 100 ms ×{DRIBBLERS}"),
        format!(
            "each closed at --header-timeout {}, unanswered; GET / answered within {} meanwhile",
            setting(HEADER_TIMEOUT),
            setting(PROMPT)
        ),
        met && normal.held(),
        format!("{seen}; {}", normal.describe()),
    )
}

/// Connects and sends a request head a byte every 100 ms until the server ends the
/// connection; `None` if it never does.
async fn dribble(addr: SocketAddr) -> Option<Ending> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let connected = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "GET / HTTP/1.1\r\nHost: faults\r\nX-Slow: {}\r\n\r\n",
        "z".repeat(100)
    );
    let writing = async move {
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Went out whole, or the server is gone: either way the reader decides.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        ending = ending(&mut reader, connected) => ending,
        () = writing => None,
    }
}

/// Holds [`IDLE`] silent connections, checks that the server holds them too and still
/// answers, fills the cap and asks once more, then waits for the header timeout to close
/// them all.
async fn idle_connections_up_to_the_cap(host: &ServerProcess) -> [Row; 2] {
    const REFUSAL: &str = r#"{"detail":"Too many open connections"}"#;
    const LOGGED: &str = "connection refused";
    let (addr, admin) = (host.addr, host.admin_addr().await);
    let mut idle = Vec::with_capacity(MAX_CONNECTIONS);
    for _ in 0..IDLE {
        let stream = TcpStream::connect(addr).await.expect("connect");
        idle.push((stream, Instant::now()));
    }
    let held = open_connections(admin, IDLE).await;
    let ((), normal) = probed(addr, tokio::time::sleep(Duration::from_millis(300))).await;
    // The probes' connections close as their answers end; wait for them before filling.
    open_connections(admin, IDLE).await;
    for _ in IDLE..MAX_CONNECTIONS {
        let stream = TcpStream::connect(addr).await.expect("connect");
        idle.push((stream, Instant::now()));
    }
    let full = open_connections(admin, MAX_CONNECTIONS).await;
    let one_more = Instant::now();
    let mut refused = TcpStream::connect(addr).await.expect("connect");
    let refusal = ending(&mut refused, one_more).await;
    let logged = host.logged(LOGGED, 1, PROMPT).await.len();
    let closing = idle
        .into_iter()
        .map(|(mut stream, connected)| async move { ending(&mut stream, connected).await });
    let closed: Vec<Ending> = all_at_once(closing)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let after_all = load::get(addr, "/").await;

    let all_closed =
        closed.len() == MAX_CONNECTIONS && closed.iter().all(|ending| ending.timed_out());
    let answered_after = after_all.as_ref().is_ok_and(|answer| answer.status == 200);
    let idle_row = Row::checked(
        format!("{} idle connections", count(IDLE)),
        format!(
            "held (gauge task_host_connections_open); GET / answered within {}; each closed \
             at --header-timeout {}, then GET / answered",
            setting(PROMPT),
            setting(HEADER_TIMEOUT)
        ),
        held >= IDLE && normal.held() && all_closed && answered_after,
        format!(
            "gauge {}; {}; {} of {} closed after {}, {}; GET / then {}",
            count(held),
            normal.describe(),
            count(closed.len()),
            count(MAX_CONNECTIONS),
            span(closed.iter().map(|ending| ending.after)),
            tally(closed.iter().map(|ending| ending.answer.clone())),
            after_all.map_or_else(|error| error, |answer| answer.status.to_string()),
        ),
    );
    let refused_at_once = refusal.as_ref().is_some_and(|ending| {
        ending.answer == "503 Service Unavailable"
            && ending.body == REFUSAL
            && ending.after < PROMPT
            && !ending.reset
    });
    let cap_row = Row::checked(
        format!(
            "one connection over --max-connections ({})",
            count(MAX_CONNECTIONS)
        ),
        format!("503 {REFUSAL} at once, then closed; logged as `{LOGGED}`"),
        full >= MAX_CONNECTIONS && refused_at_once && logged >= 1,
        match refusal {
            Some(ending) => format!(
                "gauge {}; {} after {}, body {}; logged ×{logged}",
                count(full),
                ending.describe(),
                duration(ending.after),
                ending.body
            ),
            None => format!("gauge {}; no answer, not closed", count(full)),
        },
    );
    [idle_row, cap_row]
}

/// Waits up to a second for the server to report `at_least` open connections and returns
/// the last count it reported.
async fn open_connections(admin: SocketAddr, at_least: usize) -> usize {
    let started = Instant::now();
    loop {
        let scrape = load::get(admin, "/metrics").await.expect("a scrape");
        let open = scrape
            .text
            .lines()
            .find_map(|line| line.strip_prefix("task_host_connections_open "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as usize);
        if open >= at_least || started.elapsed() > PROMPT {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ten requests at once, each with a head of `size` bytes (one header), while a normal
/// request is made every 100 ms.
async fn big_heads(
    addr: SocketAddr,
    size: usize,
    label: &str,
    expected: &str,
    acceptable: fn(&str) -> bool,
) -> Row {
    const COPIES: usize = 10;
    let head = format!(
        "GET / HTTP/1.1\r\nHost: faults\r\nX-Fill: {}\r\nConnection: close\r\n\r\n",
        "f".repeat(size)
    );
    let sending = (0..COPIES).map(|_| {
        let head = head.clone();
        async move {
            let stream = TcpStream::connect(addr).await.ok()?;
            let connected = Instant::now();
            let (mut reader, mut writer) = stream.into_split();
            // The server may answer and close before it has read it all.
            let writing = tokio::spawn(async move { writer.write_all(head.as_bytes()).await });
            let ending = ending(&mut reader, connected).await;
            writing.abort();
            ending
        }
    });
    let (endings, normal) = probed(addr, all_at_once(sending)).await;
    let ended: Vec<&Ending> = endings.iter().flatten().flatten().collect();
    let met = ended.len() == COPIES
        && ended.iter().all(|ending| acceptable(&ending.answer))
        && normal.held();
    Row::checked(
        format!("request head of {label} ×{COPIES}"),
        format!(
            "{expected}; GET / answered within {} meanwhile",
            setting(PROMPT)
        ),
        met,
        format!(
            "{} in {}; {}",
            tally(ended.iter().map(|ending| ending.describe())),
            span(ended.iter().map(|ending| ending.after)),
            normal.describe()
        ),
    )
}
