//! The Docker check of the scaled deployment, `compose.scale.yaml`: three task-host replicas
//! on one Redis, behind nginx on :8000.
//!
//! [`check`] brings the deployment up from images already there (`task-api:prod`,
//! `redis:7.0`, `nginx:1.22`) and checks, as a user would, with `curl`, `wrk` and `docker`:
//!
//! 1. creates through the balancer reach every replica (nginx's `x-served-by` names the
//!    replica's address, matched to the containers' own);
//! 2. the ids are unique, and every task is visible from each replica directly (each
//!    publishes its port on 127.0.0.1);
//! 3. every container runs as a non-root user, with a read-only root file system, every
//!    capability dropped and `no-new-privileges`;
//! 4. one replica stopped (`docker stop`, which is what `docker-compose stop` does to each
//!    container of a service) while `wrk` loads the balancer: not one request fails.
//!
//! It tears the deployment down, volumes and all, whatever happened.
//!
//! To run it among the Docker checks, after the production image is built and beside the
//! compose.yaml check (both need port 8000 on the host):
//!
//! ```ignore
//! step("compose.scale.yaml: three replicas on one Redis behind nginx", || {
//!     scale::check(compose, &workspace_root())
//! })?;
//! ```
//!
//! where `compose` is the compose command line, `&["docker-compose"]` or
//! `&["docker", "compose"]`, as the compose.yaml check picks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use super::harness::{docker, run, wait_until};

/// The compose file, in the workspace root.
const COMPOSE_FILE: &str = "compose.scale.yaml";
/// The compose project: its containers, network and volume are named after it.
const PROJECT: &str = "task-api-scale";
/// Where nginx answers on the host.
const BALANCER: &str = "http://127.0.0.1:8000";
/// The replicas `deploy.replicas` asks for.
const REPLICAS: usize = 3;
/// Creates sent through the balancer: enough that round robin reaches every replica.
const CREATES: usize = 12;
/// Time for the deployment to come up: task-host compiles the component at start.
const UP_WITHIN: Duration = Duration::from_secs(120);
/// How long wrk loads the balancer; a replica is stopped a third of the way in.
const LOAD: Duration = Duration::from_secs(9);

/// Brings up `compose.scale.yaml` from `root` with the `compose` command (`docker-compose`
/// or `docker compose`), checks it (see the module docs), and tears it down.
pub(super) fn check(compose: &[&str], root: &Path) -> anyhow::Result<()> {
    let deployment = Deployment { compose, root };
    deployment.run(&["config", "-q"])?;
    deployment.run(&["up", "-d", "--no-build"])?;
    let checked = deployment.check();
    let down = deployment.run(&["down", "-v", "--remove-orphans"]);
    checked.and(down.map(drop))
}

/// One compose deployment of [`COMPOSE_FILE`], as project [`PROJECT`].
struct Deployment<'a> {
    compose: &'a [&'a str],
    root: &'a Path,
}

impl Deployment<'_> {
    fn check(&self) -> anyhow::Result<()> {
        wait_until(UP_WITHIN, || {
            Ok(http("GET", &format!("{BALANCER}/health"), None).is_ok_and(|a| a.status == 200))
        })
        .context("the balancer never answered /health")?;
        let replicas = self.replicas()?;

        let mut served_by = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for i in 0..CREATES {
            let body = format!(r#"{{"title":"scaled {i}"}}"#);
            let answer = http("POST", &format!("{BALANCER}/tasks"), Some(&body))?;
            ensure!(answer.status == 200, "create {i}: {answer:?}");
            served_by.insert(answer.served_by.clone().context("no x-served-by header")?);
            ensure!(ids.insert(answer.id()?), "a repeated id: {answer:?}");
        }
        let addresses: BTreeSet<String> = replicas.keys().cloned().collect();
        ensure!(
            served_by == addresses,
            "creates were served by {served_by:?}, the replicas are {addresses:?}"
        );
        eprintln!("    {CREATES} creates, distinct ids, served by all of {addresses:?}");

        for replica in replicas.values() {
            for id in &ids {
                let answer = http(
                    "GET",
                    &format!("http://{}/tasks/{id}", replica.published),
                    None,
                )?;
                ensure!(
                    answer.status == 200,
                    "task {id} from {}: {answer:?}",
                    replica.published
                );
            }
        }
        eprintln!("    every task is visible from each replica directly");

        for container in self.run(&["ps", "-q"])?.split_whitespace() {
            check_hardened(container)?;
        }
        eprintln!("    every container: non-root, read-only, no capabilities, no-new-privileges");

        let stopped = replicas.values().next().context("no replica")?;
        self.stop_one_under_load(&stopped.container, ids.first().copied().unwrap_or(1))
    }

    /// Loads `GET /tasks/{id}` through the balancer while `container` is stopped, and
    /// fails on any request that did not get a 2xx.
    fn stop_one_under_load(&self, container: &str, id: u64) -> anyhow::Result<()> {
        let mut wrk = Command::new("wrk")
            .args(["-t2", "-c16", "--timeout", "5s"])
            .arg(format!("-d{}s", LOAD.as_secs()))
            .arg(format!("{BALANCER}/tasks/{id}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run wrk (apt-get install wrk)")?;
        std::thread::sleep(LOAD / 3);
        let started = Instant::now();
        let stopped = run(Command::new("docker").args(["stop", "-t", "15", container]));
        if stopped.is_err() {
            let _ = wrk.kill();
        }
        let output = wrk.wait_with_output().context("waiting for wrk")?;
        stopped?;
        eprintln!(
            "    docker stop of one replica took {:.1?}",
            started.elapsed()
        );
        let report = String::from_utf8_lossy(&output.stdout);
        ensure!(output.status.success(), "wrk failed: {report}");
        let requests = report
            .lines()
            .find_map(|line| line.trim().split_once(" requests in "))
            .and_then(|(count, _)| count.trim().parse::<u64>().ok())
            .with_context(|| format!("no request count in wrk's report:\n{report}"))?;
        // wrk prints these lines only when there is something to count.
        ensure!(
            requests > 0
                && !report.contains("Non-2xx or 3xx responses")
                && !report.contains("Socket errors"),
            "requests failed while a replica stopped:\n{report}"
        );
        eprintln!("    {requests} requests under load while it stopped, none failed");
        Ok(())
    }

    /// The running replicas by the address nginx names them by (`IP:8000`).
    fn replicas(&self) -> anyhow::Result<BTreeMap<String, Replica>> {
        let mut replicas = BTreeMap::new();
        for container in self.run(&["ps", "-q", "api"])?.split_whitespace() {
            let published = docker(&["port", container, "8000/tcp"])?;
            let published = published.lines().next().context("no published port")?;
            let ip = docker(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                container,
            ])?;
            replicas.insert(
                format!("{}:8000", ip.trim()),
                Replica {
                    container: container.to_owned(),
                    published: published.trim().to_owned(),
                },
            );
        }
        ensure!(replicas.len() == REPLICAS, "replicas: {replicas:?}");
        Ok(replicas)
    }

    /// The compose command for this deployment with `args`; returns stdout.
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let (program, rest) = self.compose.split_first().context("no compose command")?;
        run(Command::new(program)
            .args(rest)
            .args(["-f", COMPOSE_FILE, "-p", PROJECT])
            .args(args)
            .current_dir(self.root))
    }
}

/// One replica: its container, and where it is published on the host.
#[derive(Debug)]
struct Replica {
    container: String,
    published: String,
}

/// Fails unless every process of `container` runs as a non-root user, and the container
/// has a read-only root file system, no capabilities and `no-new-privileges`.
fn check_hardened(container: &str) -> anyhow::Result<()> {
    let flags = docker(&[
        "inspect",
        "-f",
        "{{.Name}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}",
        container,
    ])?;
    let flags = flags.trim();
    ensure!(
        flags.contains(" true [ALL] ") && flags.contains("no-new-privileges"),
        "not hardened: {flags}"
    );
    // docker top needs a pid column in a custom ps format; the uid is the second one.
    let top = docker(&["top", container, "-eo", "pid,uid,comm"])?;
    let root: Vec<&str> = top
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(1) == Some("0"))
        .collect();
    ensure!(
        top.lines().count() > 1 && root.is_empty(),
        "processes running as root in {flags}:\n{top}"
    );
    Ok(())
}

/// An HTTP answer, as curl saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    served_by: Option<String>,
    body: String,
}

impl Answer {
    /// The `id` of the task in the body.
    fn id(&self) -> anyhow::Result<u64> {
        let task: serde_json::Value = serde_json::from_str(&self.body)?;
        task["id"]
            .as_u64()
            .with_context(|| format!("no id in {}", self.body))
    }
}

/// `curl` with an optional JSON body, reading the head for the status and `x-served-by`.
fn http(method: &str, url: &str, json: Option<&str>) -> anyhow::Result<Answer> {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "10", "-i", "-X", method]);
    if let Some(json) = json {
        command.args(["-H", "content-type: application/json", "-d", json]);
    }
    let output = run(command.arg(url))?;
    let (head, body) = output
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP head from {url}: {output:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status from {url}: {head:?}"))?;
    let served_by = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-served-by")
            .then(|| value.trim().to_owned())
    });
    Ok(Answer {
        status,
        served_by,
        body: body.to_owned(),
    })
}
