//! What `bench` and `soak` share: a server started from its command line and seeded over
//! HTTP, and `wrk` run against it, its report read back.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use test_support::ServerChild;

/// `task-host serve` for `component` on `store`, logging warnings only.
pub(crate) fn host_command(host: &Path, component: &Path, store: &str) -> Command {
    let mut command = test_support::task_host_serve(Command::new(host));
    command
        .args(["--store", store, "--component"])
        .arg(component)
        .env("RUST_LOG", "warn");
    command
}

/// A server under load, killed on drop.
pub(crate) struct Server {
    pub(crate) child: ServerChild,
    pub(crate) url: String,
}

impl Server {
    /// Starts `command` and reads its address from the startup line.
    pub(crate) fn start(mut command: Command, label: &str) -> anyhow::Result<Self> {
        let child = ServerChild::spawn(&mut command, std::io::sink())
            .with_context(|| format!("starting {label}"))?;
        Ok(Self {
            url: format!("http://{}", child.addr()),
            child,
        })
    }

    /// Creates `tasks` tasks, with ids 1 to `tasks` on a fresh store.
    pub(crate) fn seed(&self, tasks: usize) -> anyhow::Result<()> {
        for i in 0..tasks {
            let status = Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-H",
                    "content-type: application/json",
                    "-d",
                ])
                .arg(format!(r#"{{"title":"seed {i}"}}"#))
                .arg(format!("{}/tasks", self.url))
                .status()?;
            if !status.success() {
                bail!("seeding task {i} failed");
            }
        }
        Ok(())
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
