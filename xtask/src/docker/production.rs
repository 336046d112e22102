//! The production image as the seed's checklist and a user see it: `whoami` and `echo` on an
//! image with no shell, the CRUD API, the health check, the non-root uid, a prompt `docker
//! stop`, tasks that survive a new container on the same volume, the precompiled component
//! loaded rather than compiled, and all of it under
//! `--read-only --cap-drop ALL --security-opt no-new-privileges`.

use std::time::{Duration, Instant};

use anyhow::ensure;

use super::harness::{Container, Volume, curl, docker, expect, wait_until};

/// `docker inspect` must report `healthy` within this.
const HEALTHY_WITHIN: Duration = Duration::from_secs(15);
/// `docker stop` must return within this.
const STOP_WITHIN: Duration = Duration::from_secs(3);

/// Runs the whole scenario on the image `tag`.
pub(super) fn check(tag: &str) -> anyhow::Result<()> {
    // The seed's own checklist: `docker run --rm task-api:prod whoami` prints appuser, and
    // `docker run --rm task-api:prod echo "Container started"` runs, on an image with no
    // shell and no coreutils: task-host answers both.
    let whoami = docker(&["run", "--rm", tag, "whoami"])?;
    ensure!(whoami.trim() == "appuser", "whoami printed {whoami:?}");
    let started = Instant::now();
    let echoed = docker(&["run", "--rm", tag, "echo", "Container started"])?;
    ensure!(
        echoed.trim() == "Container started",
        "echo printed {echoed:?}"
    );
    eprintln!(
        "    whoami: appuser; echo \"Container started\" ran in {:.1?}",
        started.elapsed()
    );

    let volume = format!("task-api-e2e-{}", std::process::id());
    let _volume_guard = Volume(volume.clone());
    docker(&["volume", "create", &volume])?;
    let hardened = [
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ];
    let mount = format!("{volume}:/data");

    let first = Container::run(&[&hardened[..], &["-v", &mount, tag]].concat())?;
    let base = first.url()?;
    wait_until(Duration::from_secs(30), || {
        Ok(curl("GET", &format!("{base}/health"), None).is_ok_and(|(status, _)| status == 200))
    })?;
    let (status, body) = curl(
        "POST",
        &format!("{base}/tasks"),
        Some(r#"{"title":"Test task","description":"Testing the API"}"#),
    )?;
    ensure!(
        status == 200 && body.contains(r#""id":1"#),
        "create: {status} {body}"
    );
    curl(
        "POST",
        &format!("{base}/tasks"),
        Some(r#"{"title":"second"}"#),
    )?;
    expect(
        curl("GET", &format!("{base}/tasks"), None)?,
        200,
        r#""title":"second""#,
    )?;
    expect(
        curl(
            "PUT",
            &format!("{base}/tasks/1"),
            Some(r#"{"title":"Renamed"}"#),
        )?,
        200,
        r#""title":"Renamed""#,
    )?;
    expect(
        curl("PUT", &format!("{base}/tasks/1/complete"), None)?,
        200,
        r#""completed":true"#,
    )?;
    expect(
        curl("DELETE", &format!("{base}/tasks/2"), None)?,
        200,
        "Task deleted",
    )?;
    expect(
        curl("GET", &format!("{base}/tasks/2"), None)?,
        404,
        "Task not found",
    )?;

    // The image ships its component compiled for its architecture: the first container,
    // on an empty volume and so an empty compile cache, compiles nothing.
    let logs = first.logs()?;
    let loaded = logs
        .lines()
        .find(|line| line.contains("component loaded precompiled"));
    ensure!(
        loaded.is_some() && !logs.contains("component compiled"),
        "the image's precompiled component was not used:\n{logs}"
    );
    eprintln!("    {}", loaded.unwrap_or_default().trim());

    let started = Instant::now();
    wait_until(HEALTHY_WITHIN, || {
        Ok(first.inspect("{{.State.Health.Status}}")? == "healthy")
    })?;
    eprintln!(
        "    healthy {:.1?} after the first check started",
        started.elapsed()
    );
    // docker top needs a pid column in a custom ps format; the uid is the second one.
    let top = docker(&["top", &first.id, "-eo", "pid,uid,comm"])?;
    let uids: Vec<&str> = top
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    ensure!(
        !uids.is_empty() && uids.iter().all(|uid| *uid == "10001"),
        "not every process runs as uid 10001:\n{top}"
    );

    let started = Instant::now();
    docker(&["stop", "-t", "10", &first.id])?;
    let stopped = started.elapsed();
    let code = first.inspect("{{.State.ExitCode}}")?;
    ensure!(
        stopped <= STOP_WITHIN && code == "0",
        "docker stop took {stopped:.1?}, exit code {code}"
    );
    eprintln!("    docker stop: {stopped:.1?}, exit code 0");

    let second = Container::run(&[&hardened[..], &["-v", &mount, tag]].concat())?;
    let base = second.url()?;
    wait_until(Duration::from_secs(30), || {
        Ok(curl("GET", &format!("{base}/health"), None).is_ok_and(|(status, _)| status == 200))
    })?;
    expect(
        curl("GET", &format!("{base}/tasks/1"), None)?,
        200,
        r#""title":"Renamed""#,
    )?;
    expect(
        curl(
            "POST",
            &format!("{base}/tasks"),
            Some(r#"{"title":"third"}"#),
        )?,
        200,
        r#""id":3"#,
    )?;
    Ok(())
}
