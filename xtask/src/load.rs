//! What `bench` and `soak` share: a server started from its command line, seeded over HTTP
//! and scraped for its metrics, and `wrk` run against it, its report read back.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use test_support::ServerChild;

/// Connections seeding tasks at once.
const SEEDERS: usize = 8;

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
    /// Starts `command`, logging to `log`, and reads its address from the startup line.
    pub(crate) fn start(mut command: Command, label: &str, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child =
            ServerChild::spawn(&mut command, file).with_context(|| format!("starting {label}"))?;
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
    if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
        bail!(
            "seeding task {n}: {}",
            answer.lines().next().unwrap_or("no answer")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Report;

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
