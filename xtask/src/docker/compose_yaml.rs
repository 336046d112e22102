//! compose.yaml: `up` serves the production image on :8000 with its named volume, and `down
//! -v` removes it all again.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::harness::{curl, docker, expect, run, wait_until};
use super::tags::{DEFAULT_REPO, Tags};
use crate::root::workspace_root;

/// The compose command line: the plugin where the engine has one, else Debian's
/// docker-compose, which reads the same files.
pub(super) fn command() -> &'static [&'static str] {
    if docker(&["compose", "version"]).is_ok() {
        &["docker", "compose"]
    } else {
        &["docker-compose"]
    }
}

/// Brings the `api` service up from the already-built production image and talks to it.
pub(super) fn check(tags: &Tags, work: &Path) -> anyhow::Result<()> {
    let compose = command();
    let compose_yaml = workspace_root().join("compose.yaml");
    let mut files = vec![compose_yaml];
    // compose.yaml names task-api:prod; images of another repository are swapped in with an
    // override file, so that compose.yaml itself is what the default run checks.
    if tags.repo != DEFAULT_REPO {
        let override_yaml = work.join("compose.override.yaml");
        std::fs::write(
            &override_yaml,
            format!("services:\n  api:\n    image: {}\n", tags.prod),
        )?;
        files.push(override_yaml);
    }
    let project = format!("{}-e2e", tags.repo);
    let run_compose = |args: &[&str]| {
        let mut command = Command::new(compose[0]);
        command.args(&compose[1..]);
        for file in &files {
            command.arg("-f").arg(file);
        }
        command
            .args(["-p", &project])
            .args(args)
            .current_dir(workspace_root());
        run(&mut command)
    };
    run_compose(&["config", "-q"])?;
    run_compose(&["up", "-d", "--no-build", "api"])?;
    let checked = (|| {
        wait_until(Duration::from_secs(30), || {
            Ok(curl("GET", "http://127.0.0.1:8000/health", None)
                .is_ok_and(|(status, _)| status == 200))
        })?;
        expect(
            curl(
                "POST",
                "http://127.0.0.1:8000/tasks",
                Some(r#"{"title":"via compose"}"#),
            )?,
            200,
            "via compose",
        )
    })();
    run_compose(&["down", "-v"])?;
    checked
}
