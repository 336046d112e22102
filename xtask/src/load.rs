//! What `bench` and `soak` share: a server started from its command line and waited for,
//! seeded over HTTP and scraped for its metrics, and `wrk` run against it, its report read
//! back.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use test_support::ServerChild;

/// Connections seeding tasks at once.
const SEEDERS: usize = 8;
/// How long a server may take from its startup line to its first 200 on `GET /health`:
/// gunicorn prints its line before its workers have booted.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Server::settle`] waits for a server to go idle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The window over which [`Server::settle`] samples the server's CPU time.
const SETTLE_WINDOW: Duration = Duration::from_millis(250);
/// Clock ticks of CPU time (100 a second on Linux) a settled server may use in a window:
/// under a tenth of a core.
const SETTLED_TICKS: u64 = 2;

/// `task-host serve` for `component` on `store`, with an admin listener on a free port,
/// logging warnings and the startup lines only.
pub(crate) fn host_command(host: &Path, component: &Path, store: &str) -> Command {
    let mut command = test_support::task_host_serve(Command::new(host));
    command
        .args([
            "--store",
            store,
            "--admin-addr",
            "127.0.0.1:0",
            "--component",
        ])
        .arg(component)
        // The startup line below names the admin address; nothing else under warn is
        // logged per request.
        .env("RUST_LOG", "warn,task_host::server=info");
    command
}

/// A server under load, killed on drop.
pub(crate) struct Server {
    pub(crate) child: ServerChild,
    /// Where task-host serves `/metrics`, from its log; `None` for other servers.
    admin: Option<SocketAddr>,
    /// Tasks created so far.
    tasks: usize,
}

impl Server {
    /// Starts `command`, logging to `log`, reads its address from the startup line, and
    /// returns once it answers `GET /health` with 200.
    pub(crate) fn start(mut command: Command, label: &str, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child =
            ServerChild::spawn(&mut command, file).with_context(|| format!("starting {label}"))?;
        let started = Instant::now();
        while !get(child.addr(), "/health").is_ok_and(|answer| is_ok(&answer)) {
            if started.elapsed() > READY_TIMEOUT {
                bail!("{label} did not answer GET /health with 200 within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // The admin address is logged just before the startup line is printed.
        let admin = std::fs::read_to_string(log)?
            .split_whitespace()
            .find_map(|word| word.strip_prefix("admin=http://")?.parse().ok());
        Ok(Self {
            child,
            admin,
            tasks: 0,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.child.addr()
    }

    /// `http://` and the address, for wrk.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Stops the server with SIGTERM, as an operator would, so that a server with worker
    /// processes (gunicorn) takes them along; one still running after [`STOP_TIMEOUT`] is
    /// killed.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill")?;
        let signalled = Instant::now();
        while status.success() && signalled.elapsed() < STOP_TIMEOUT {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Dropping the child kills it.
        Ok(())
    }

    /// Waits until the server process is idle: under [`SETTLED_TICKS`] of CPU time over
    /// [`SETTLE_WINDOW`]. wrk stops with requests in flight, and a slow server (kv-fs listing
    /// 10,000 tasks) would still be answering them when the next load starts. Only the
    /// process itself is sampled, not its children (gunicorn's workers).
    pub(crate) fn settle(&self) -> anyhow::Result<()> {
        let stat = Path::new("/proc")
            .join(self.child.id().to_string())
            .join("stat");
        let started = Instant::now();
        let mut before = cpu_ticks(&stat)?;
        while started.elapsed() < SETTLE_TIMEOUT {
            std::thread::sleep(SETTLE_WINDOW);
            let now = cpu_ticks(&stat)?;
            if now.saturating_sub(before) <= SETTLED_TICKS {
                return Ok(());
            }
            before = now;
        }
        bail!("the server was still busy {SETTLE_TIMEOUT:?} after its load")
    }

    /// How many tasks a `GET /tasks` lists now. Not always what was created: each of
    /// gunicorn's workers keeps a list of its own.
    pub(crate) fn listed(&self) -> anyhow::Result<usize> {
        let answer = get(self.addr(), "/tasks").context("listing the tasks")?;
        if !is_ok(&answer) {
            bail!(
                "GET /tasks: {}",
                answer.lines().next().unwrap_or("no answer")
            );
        }
        Ok(answer.matches(r#"{"id":"#).count())
    }

    /// Creates tasks until `tasks` are stored, over [`SEEDERS`] connections at once.
    pub(crate) fn seed(&mut self, tasks: usize) -> anyhow::Result<()> {
        let addr = self.addr();
        let next = AtomicUsize::new(self.tasks);
        std::thread::scope(|scope| {
            let seeders: Vec<_> = (0..SEEDERS)
                .map(|_| {
                    scope.spawn(|| {
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= tasks {
                                return Ok(());
                            }
                            create(addr, n)?;
                        }
                    })
                })
                .collect();
            seeders.into_iter().try_for_each(|seeder| {
                seeder
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a seeding thread panicked")))
            })
        })?;
        self.tasks = self.tasks.max(tasks);
        Ok(())
    }

    /// The store's committed writes and commits so far, from the `task_host_kv_batch_size`
    /// histogram: `None` for a server without one, or before its first batch.
    pub(crate) fn batches(&self) -> anyhow::Result<Option<(f64, f64)>> {
        let Some(admin) = self.admin else {
            return Ok(None);
        };
        let metrics = get(admin, "/metrics").context("scraping /metrics")?;
        let value = |name: &str| {
            metrics.lines().find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
        };
        Ok(value("task_host_kv_batch_size_sum").zip(value("task_host_kv_batch_size_count")))
    }
}

/// The user and system CPU time in a `/proc/PID/stat`, in clock ticks.
fn cpu_ticks(stat: &Path) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(stat).with_context(|| format!("reading {}", stat.display()))?;
    parse_cpu_ticks(&text).with_context(|| format!("no CPU times in {}", stat.display()))
}

/// utime + stime: fields 14 and 15, counted after the command name, which may hold spaces
/// and parentheses and so ends at the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// What wrk reported.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Report {
    /// Requests completed, as wrk counts them.
    pub(crate) requests: String,
    /// Requests per second.
    pub(crate) rate: String,
    pub(crate) p50: String,
    pub(crate) p99: String,
    /// wrk's socket-error and non-2xx lines, joined; empty when there were none.
    pub(crate) errors: String,
}

/// Runs wrk with `args` against `url`, with the Lua `script` if any (written into `work`),
/// and `--latency` for the percentiles.
pub(crate) fn wrk(
    args: &[&str],
    script: Option<&str>,
    url: &str,
    work: &Path,
) -> anyhow::Result<Report> {
    let mut wrk = Command::new("wrk");
    wrk.args(args).arg("--latency");
    if let Some(source) = script {
        let script = work.join("scenario.lua");
        std::fs::write(&script, source)?;
        wrk.arg("-s").arg(script);
    }
    let output = wrk.arg(url).output().context("running wrk")?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(Report::parse(&String::from_utf8_lossy(&output.stdout)))
}

impl Report {
    /// Requests per second as a number, if wrk reported them.
    pub(crate) fn rate_per_second(&self) -> Option<f64> {
        self.rate.parse().ok()
    }

    /// Pulls the request count, requests/second, the 50th and 99th latency percentiles and
    /// any error line out of wrk's report.
    fn parse(report: &str) -> Self {
        let lines = || report.lines().map(str::trim);
        let field = |prefix: &str| {
            lines()
                .find_map(|line| line.strip_prefix(prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or("-")
                .to_owned()
        };
        let requests = lines()
            .find(|line| line.contains(" requests in "))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or("-")
            .to_owned();
        let errors = lines()
            .filter(|line| line.starts_with("Socket errors") || line.starts_with("Non-2xx"))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            requests,
            rate: field("Requests/sec:"),
            p50: field("50%"),
            p99: field("99%"),
            errors,
        }
    }
}

/// A latency as wrk prints it (`850.00us`, `1.20ms`, `1.02s`, `2.00m`) in microseconds;
/// `None` for anything else, such as the `-` of a report without percentiles.
pub(crate) fn micros(latency: &str) -> Option<f64> {
    let split = latency.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = latency.split_at(split);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3_600e6,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// One request over a fresh connection, closed by the server after its answer: the whole
/// answer, head and body.
fn exchange(addr: SocketAddr, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// `GET path` over HTTP/1.0: the answer, or an error.
pub(crate) fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
}

/// Whether an answer's status line is 200.
fn is_ok(answer: &str) -> bool {
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

/// `POST /tasks` for task `n`, which must succeed.
fn create(addr: SocketAddr, n: usize) -> anyhow::Result<()> {
    let body = format!(r#"{{"title":"seed {n}"}}"#);
    let answer = exchange(
        addr,
        &format!(
            "POST /tasks HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )?;
    if !is_ok(&answer) {
        bail!(
            "seeding task {n}: {}",
            answer.lines().next().unwrap_or("no answer")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Report, micros};

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (wasmtime (serve) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1500 250 0 0 20 0 9 0 123 456 789";
        assert_eq!(super::parse_cpu_ticks(stat), Some(1_750));
        assert_eq!(super::parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn wrk_latencies_are_read_in_microseconds() {
        assert_eq!(micros("850.00us"), Some(850.0));
        assert_eq!(micros("1.20ms"), Some(1_200.0));
        assert_eq!(micros("1.02s"), Some(1_020_000.0));
        assert_eq!(micros("2.00m"), Some(120_000_000.0));
        for other in ["-", "", "12", "1.2xs", "ms"] {
            assert_eq!(micros(other), None, "{other:?}");
        }
    }

    #[test]
    fn wrk_reports_are_parsed() {
        let report = "  Latency Distribution\n     50%    1.20ms\n     99%    9.87ms\n  \
                      123456 requests in 10.00s, 1.00MB read\n  Non-2xx or 3xx responses: 5\n\
                      Requests/sec:  12345.67\n";
        assert_eq!(
            Report::parse(report),
            Report {
                requests: "123456".into(),
                rate: "12345.67".into(),
                p50: "1.20ms".into(),
                p99: "9.87ms".into(),
                errors: "Non-2xx or 3xx responses: 5".into(),
            }
        );
    }
}
