//! The docker and curl calls every check makes: builds, containers and volumes that remove
//! themselves, HTTP requests, polling, and a copy of the workspace to edit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::root::workspace_root;

/// `docker build` of `context` with `args`, failing on a failed build.
pub(super) fn build(context: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(&mut build_command(context, args)).map(drop)
}

/// The `docker build` command line of `context` with `args`, BuildKit on, for the checks that
/// read the build's log themselves.
pub(super) fn build_command(context: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command
        .env("DOCKER_BUILDKIT", "1")
        .arg("build")
        .args(args)
        .arg(context);
    command
}

/// `docker build -t tag` of `context` with `args`. The image `tag` named before is removed
/// if this build replaced it: left untagged, it would pin gigabytes of layers that
/// `docker builder prune` cannot free, and every run would leave more.
pub(super) fn build_image(context: &Path, args: &[&str], tag: &str) -> anyhow::Result<()> {
    let image_id =
        || docker(&["image", "inspect", "-f", "{{.Id}}", tag]).map(|id| id.trim().to_owned());
    let previous = image_id().ok();
    build(context, &[args, &["-t", tag]].concat())?;
    if let Some(previous) = previous
        && image_id()? != previous
    {
        // An image still used by a container or another tag stays, and that is fine.
        let _ = docker(&["image", "rm", &previous]);
    }
    Ok(())
}

/// Copies the files git tracks (and untracked, unignored ones) to `dest`.
pub(super) fn copy_tree(dest: &Path) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let files = run(Command::new("git").current_dir(&root).args([
        "ls-files",
        "-co",
        "--exclude-standard",
        "-z",
    ]))?;
    for file in files.split('\0').filter(|file| !file.is_empty()) {
        let target = dest.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if root.join(file).is_file() {
            std::fs::copy(root.join(file), &target).with_context(|| format!("copying {file}"))?;
        }
    }
    Ok(dest.to_path_buf())
}

/// A container, removed on drop together with its volumes.
pub(super) struct Container {
    /// The id `docker run` or `docker create` printed.
    pub(super) id: String,
}

impl Container {
    /// A detached container publishing port 8000 on a free loopback port.
    pub(super) fn run(args: &[&str]) -> anyhow::Result<Self> {
        Self::from_docker(&[&["run", "-d", "-p", "127.0.0.1::8000"][..], args].concat())
    }

    /// A container of `image` that is never started, for copying files out of it.
    pub(super) fn create(image: &str) -> anyhow::Result<Self> {
        Self::from_docker(&["create", image])
    }

    /// `docker` with `args`, which print the new container's id.
    fn from_docker(args: &[&str]) -> anyhow::Result<Self> {
        let id = docker(args)?.trim().to_owned();
        Ok(Self { id })
    }

    /// `http://127.0.0.1:PORT`, where the container's port 8000 is published.
    pub(super) fn url(&self) -> anyhow::Result<String> {
        let port = docker(&["port", &self.id, "8000/tcp"])?;
        let addr = port
            .lines()
            .next()
            .context("no published port")?
            .trim()
            .to_owned();
        Ok(format!("http://{addr}"))
    }

    /// What the container wrote to stdout and stderr so far.
    pub(super) fn logs(&self) -> anyhow::Result<String> {
        let output = Command::new("docker")
            .args(["logs", &self.id])
            .output()
            .context("cannot run docker logs")?;
        ensure!(output.status.success(), "docker logs {} failed", self.id);
        Ok([output.stdout, output.stderr]
            .iter()
            .map(|bytes| String::from_utf8_lossy(bytes))
            .collect())
    }

    /// `docker inspect -f format`, trimmed.
    pub(super) fn inspect(&self, format: &str) -> anyhow::Result<String> {
        Ok(docker(&["inspect", "-f", format, &self.id])?
            .trim()
            .to_owned())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("XTASK_KEEP_CONTAINERS").is_none() {
            // -v: the images declare VOLUME /data, so every container has a volume, even one
            // that never started.
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &self.id])
                .output();
        }
    }
}

/// A named volume, removed on drop.
pub(super) struct Volume(pub(super) String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

/// `curl` with a JSON body; returns (status, body).
pub(super) fn curl(method: &str, url: &str, json: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "--max-time",
        "10",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(json) = json {
        command.args(["-H", "content-type: application/json", "-d", json]);
    }
    let output = run(command.arg(url))?;
    let (body, status) = output.rsplit_once('\n').context("no status from curl")?;
    Ok((status.trim().parse()?, body.to_owned()))
}

/// Fails unless the answer has status `want` and its body contains `contains`.
pub(super) fn expect(
    (status, body): (u16, String),
    want: u16,
    contains: &str,
) -> anyhow::Result<()> {
    ensure!(
        status == want && body.contains(contains),
        "expected {want} with {contains:?}, got {status} {body}"
    );
    Ok(())
}

/// Polls `ready` every 250 ms until it returns true, failing after `timeout`.
pub(super) fn wait_until(
    timeout: Duration,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("not ready within {timeout:?}")
}

/// `docker` with `args`, returning stdout.
pub(super) fn docker(args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("docker").args(args))
}

/// Runs `command`, returning stdout, or an error with its stderr.
pub(super) fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
