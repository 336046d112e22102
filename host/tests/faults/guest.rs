//! Guests that trap, spin or exhaust their memory, before and after their answer's head, or
//! sleep past the deadline after it, while clients keep the server busy with normal
//! requests: each fault gets its JSON answer (or, once the head is out, a body cut off short
//! and a log line naming the request), and no normal request fails.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ServerProcess, exchange_bytes};
use crate::load::{self, Answer, Load, PROMPT, all_at_once};
use crate::table::{Row, duration, grouped, setting, span};

/// Clients sending normal requests back to back: enough to keep two cores busy.
const LOAD_CLIENTS: usize = 8;
/// The server's `--request-timeout`: a spinning guest's 504 comes this long after it started.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// The server's `--max-memory`, which the memory bomb runs into.
const MAX_MEMORY: &str = "16MiB";
/// How long log lines may trail the events they report.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The rows: trap, endless loop, memory bomb, and each of them and a sleep after the head.
pub(crate) async fn rows() -> Vec<Row> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let timeout = setting(REQUEST_TIMEOUT);
    let host = ServerProcess::faulty(
        dir.path(),
        &["--request-timeout", &timeout, "--max-memory", MAX_MEMORY],
    );
    let load = Load::start(host.addr, LOAD_CLIENTS, Duration::ZERO);
    let faults = [
        Fault {
            name: "guest trap".to_owned(),
            path: "/trap",
            status: 500,
            detail: "Internal Server Error",
            when: "at once".to_owned(),
            within: Duration::ZERO..REQUEST_TIMEOUT,
        },
        Fault {
            name: "endless loop".to_owned(),
            path: "/loop",
            status: 504,
            detail: "Gateway Timeout",
            when: format!("at --request-timeout {timeout}"),
            within: REQUEST_TIMEOUT..REQUEST_TIMEOUT + PROMPT,
        },
        Fault {
            name: format!("memory bomb, --max-memory {MAX_MEMORY}"),
            path: "/alloc",
            status: 500,
            detail: "Internal Server Error",
            when: "at once".to_owned(),
            within: Duration::ZERO..REQUEST_TIMEOUT,
        },
    ];
    let mut rows = Vec::new();
    for fault in faults {
        rows.push(each_answers(&load, host.addr, fault).await);
    }
    rows.push(cut_off_after_the_head(&load, &host).await);
    load.stop().await;
    rows
}

/// A fault that fails its request before the head: what it answers, and when.
struct Fault {
    name: String,
    path: &'static str,
    /// The status every one of them answers, with `{"detail": detail}`.
    status: u16,
    detail: &'static str,
    /// `within`, as the expectation says it.
    when: String,
    within: std::ops::Range<Duration>,
}

/// Sends the fault's request twice per core at once, under the load: a runaway guest that
/// held its thread would show.
async fn each_answers(load: &Load, addr: SocketAddr, fault: Fault) -> Row {
    let count = 2 * std::thread::available_parallelism().map_or(2, usize::from);
    let path = fault.path;
    let (answers, normal) = load
        .during(all_at_once((0..count).map(|_| load::get(addr, path))))
        .await;
    let answers: Vec<Result<Answer, String>> = answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err("the request's task panicked".to_owned())))
        .collect();
    let body = json!({ "detail": fault.detail });
    let as_expected = |answer: &Answer| {
        answer.status == fault.status && answer.json == body && fault.within.contains(&answer.took)
    };
    let met = answers
        .iter()
        .all(|answer| answer.as_ref().is_ok_and(as_expected));
    Row::checked(
        format!("{} (`GET {path}` ×{count})", fault.name),
        format!(
            "each {} {body} {}; no normal request fails or waits {}",
            fault.status,
            fault.when,
            setting(PROMPT)
        ),
        met && normal.held(),
        format!("{}; {}", summarize(&answers, &body), normal.describe()),
    )
}

/// `504 ×4 in 1.00–1.02 s`, with any answer but `expected` spelled out.
fn summarize(answers: &[Result<Answer, String>], expected: &Value) -> String {
    let keyed = answers.iter().map(|answer| match answer {
        Ok(answer) if answer.json == *expected => (answer.status.to_string(), answer.took),
        Ok(answer) => (format!("{} {}", answer.status, answer.text), answer.took),
        Err(error) => (format!("error: {error}"), Duration::ZERO),
    });
    let parts: Vec<String> = grouped(keyed)
        .into_iter()
        .map(|(key, times)| format!("{key} ×{} in {}", times.len(), span(times)))
        .collect();
    parts.join(", ")
}

/// A guest that traps, exhausts its memory, spins or sleeps after its head went out: the
/// client gets the head and the start of the body, then the connection closes without the
/// final chunk, so no client takes the answer for whole; the host logs each failure with
/// its request id, and each access line says the body was aborted.
async fn cut_off_after_the_head(load: &Load, host: &ServerProcess) -> Row {
    const FAILURES: [&str; 4] = ["trap", "alloc", "loop", "sleep"];
    const LOGGED: &str = "guest failed after the response head";
    const ABORTED: &str = r#"body="aborted""#;
    let addr = host.addr;
    let requests = FAILURES.map(|then| async move {
        let started = Instant::now();
        let request = format!(
            "GET /partial?then={then} HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n"
        );
        let (answer, _) = exchange_bytes(addr, request.into_bytes()).await;
        (answer, started.elapsed())
    });
    let (answers, normal) = load.during(all_at_once(requests)).await;
    let mut cut_off = Vec::new();
    for (then, answer) in FAILURES.iter().zip(&answers) {
        // A request whose task panicked is not cut off: it is missing from the count.
        let Some((answer, took)) = answer else {
            continue;
        };
        let head_went_out = answer.starts_with("HTTP/1.1 200") && answer.contains(r#"{"partial":"#);
        let ended_as_whole = answer.ends_with("0\r\n\r\n");
        if head_went_out && !ended_as_whole && *took < REQUEST_TIMEOUT + PROMPT {
            cut_off.push(format!("{then} {}", duration(*took)));
        }
    }
    let logged = host.logged(LOGGED, FAILURES.len(), LOG_WAIT).await;
    let named = logged
        .iter()
        .filter(|line| line.contains("request_id"))
        .count();
    let aborted = host.logged(ABORTED, FAILURES.len(), LOG_WAIT).await.len();
    Row::checked(
        "trap, memory bomb, loop, sleep after the head (`GET /partial?then=…` ×4)",
        format!(
            "200 head, body cut off without its last chunk, by --request-timeout; each logged \
             as `{LOGGED}` with its request_id, and its access line as `{ABORTED}`; no normal \
             request fails"
        ),
        cut_off.len() == FAILURES.len()
            && named >= FAILURES.len()
            && aborted >= FAILURES.len()
            && normal.held(),
        format!(
            "cut off ×{} ({}), logged ×{} ({named} with a request_id), aborted ×{aborted}; {}",
            cut_off.len(),
            cut_off.join(", "),
            logged.len(),
            normal.describe()
        ),
    )
}
