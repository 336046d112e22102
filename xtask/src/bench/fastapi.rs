//! The seed's FastAPI app, as the exercise ships it, served the way its production image
//! would: gunicorn with two uvicorn workers. The app is cut out of the exercise's markdown,
//! and its packages come from PyPI, at [`PINS`], into a venv the bench makes itself under
//! `target/bench` and reuses while the pins are unchanged.
//!
//! Without python3, or when the install fails, the bench says so in one line and runs the
//! other servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use crate::root::workspace_root;

/// The packages and versions installed: those the group-commit measurements in
/// BENCHMARKS.md used. pydantic is pinned too, since FastAPI accepts a range of it.
pub(crate) const PINS: &[&str] = &[
    "fastapi==0.165.0",
    "pydantic==2.14.4",
    "uvicorn==0.54.0",
    "gunicorn==27.0.1",
];

/// The exercise the app is in, relative to the workspace.
const SEED: &str = "../shared/seed/exercise-multi-stage-docker-builds.md";
/// The heading above the app's source in the exercise.
const APP_HEADING: &str = "**File: `app/main.py`**";

/// A venv with the pinned packages and the app beside it.
#[derive(Debug)]
pub(crate) struct FastApi {
    /// The venv's gunicorn.
    gunicorn: PathBuf,
    /// Holds `app/main.py`: gunicorn's working directory.
    dir: PathBuf,
}

impl FastApi {
    /// Extracts the app into `bench_dir/fastapi` and makes or reuses the venv in
    /// `bench_dir/venv`. An error is the one line to print instead of the server's numbers.
    pub(crate) fn prepare(bench_dir: &Path) -> Result<Self, String> {
        let seed = workspace_root().join(SEED);
        let markdown = std::fs::read_to_string(&seed)
            .map_err(|error| format!("cannot read the seed app in {}: {error}", seed.display()))?;
        let source = seed_app(&markdown)
            .ok_or_else(|| format!("{} has no {APP_HEADING} code block", seed.display()))?;
        let dir = bench_dir.join("fastapi");
        let app = dir.join("app");
        std::fs::create_dir_all(&app)
            .and_then(|()| std::fs::write(app.join("__init__.py"), ""))
            .and_then(|()| std::fs::write(app.join("main.py"), source))
            .map_err(|error| format!("cannot write the app to {}: {error}", app.display()))?;
        let venv = bench_dir.join("venv");
        ensure_venv(&venv, &bench_dir.join("pip.log")).map_err(|error| format!("{error:#}"))?;
        Ok(Self {
            gunicorn: venv.join("bin/gunicorn"),
            dir,
        })
    }

    /// gunicorn with two uvicorn workers on a free port of 127.0.0.1 (gunicorn logs the
    /// port it binds, but binding port 0 would leave the workers to pick their own).
    pub(crate) fn command(&self) -> anyhow::Result<Command> {
        let port = test_support::free_port().context("finding a free port for gunicorn")?;
        let mut command = Command::new(&self.gunicorn);
        command
            .args([
                "app.main:app",
                "-w",
                "2",
                "-k",
                "uvicorn.workers.UvicornWorker",
            ])
            .args(["-b", &format!("127.0.0.1:{port}")])
            .current_dir(&self.dir);
        Ok(command)
    }
}

/// Makes the venv with [`PINS`] installed, unless it already has them: `pins.txt` in the
/// venv records what the last install put there. pip's output goes to `log`.
fn ensure_venv(venv: &Path, log: &Path) -> anyhow::Result<()> {
    let record = venv.join("pins.txt");
    let wanted = PINS.join("\n");
    if std::fs::read_to_string(&record).is_ok_and(|installed| installed == wanted)
        && venv.join("bin/gunicorn").is_file()
    {
        return Ok(());
    }
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|_| anyhow::anyhow!("python3 is not on PATH (apt-get install python3-venv)"))?;
    anyhow::ensure!(python.status.success(), "python3 --version failed");
    eprintln!(
        "==> FastAPI: python3 -m venv and pip install {}",
        PINS.join(" ")
    );
    let _ = std::fs::remove_dir_all(venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .stdout(Stdio::null())
        .status()
        .context("running python3 -m venv")?;
    anyhow::ensure!(
        status.success(),
        "python3 -m venv failed ({status}; apt-get install python3-venv)"
    );
    let output =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--quiet"])
        .args(PINS)
        .stdout(output.try_clone()?)
        .stderr(output)
        .status()
        .context("running pip")?;
    if !status.success() {
        let last = std::fs::read_to_string(log).unwrap_or_default();
        let last = last.lines().rev().find(|line| !line.trim().is_empty());
        anyhow::bail!(
            "pip install failed ({status}): {} (all of it in {})",
            last.unwrap_or("no output"),
            log.display()
        );
    }
    std::fs::write(&record, wanted).with_context(|| format!("writing {}", record.display()))
}

/// The source of `app/main.py`: the fenced block after [`APP_HEADING`].
fn seed_app(markdown: &str) -> Option<&str> {
    let after = &markdown[markdown.find(APP_HEADING)? + APP_HEADING.len()..];
    let fence = after.find("```python")?;
    let body = &after[fence..];
    let start = body.find('\n')? + 1;
    let end = body[start..].find("\n```")?;
    Some(&body[start..=start + end])
}

#[cfg(test)]
mod tests {
    use super::seed_app;

    #[test]
    fn the_app_is_the_code_block_under_its_heading() {
        let markdown = "# Exercise\n\n```python\nnot = 'this'\n```\n\n**File: `app/main.py`**\n\n\
                        ```python\nfrom fastapi import FastAPI\napp = FastAPI()\n```\n\n## Next\n";
        assert_eq!(
            seed_app(markdown),
            Some("from fastapi import FastAPI\napp = FastAPI()\n")
        );
        assert_eq!(seed_app("**File: `app/main.py`** but no code"), None);
        assert_eq!(seed_app("```python\nx = 1\n```\n"), None);
    }

    #[test]
    fn the_exercise_has_the_app() {
        let seed = super::workspace_root().join(super::SEED);
        // The shared seed sits beside the checkout in CI and on the development machines.
        let Ok(markdown) = std::fs::read_to_string(&seed) else {
            eprintln!(
                "skipped: no {} here (the Docker test stage)",
                seed.display()
            );
            return;
        };
        let app = seed_app(&markdown).expect("the exercise shows app/main.py");
        assert!(app.contains("app = FastAPI("), "{app}");
        assert!(app.contains("@app.post(\"/tasks\""), "{app}");
    }
}
