//! The Docker end-to-end check: builds every target of the Dockerfile against the real
//! engine, prints their sizes, and checks the production and development images as a user
//! would, with `docker` and `curl`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};

use crate::workspace_root;

/// The production image must stay under this many bytes, uncompressed.
const MAX_PRODUCTION_BYTES: u64 = 30_000_000;
/// The build context must stay under this many bytes: `.dockerignore` keeps `target/`, `.git/`
/// and local data out, and a context past this means something large slipped back in.
const MAX_CONTEXT_BYTES: u64 = 2_000_000;
/// `docker inspect` must report `healthy` within this.
const HEALTHY_WITHIN: Duration = Duration::from_secs(15);
/// `docker stop` must return within this.
const STOP_WITHIN: Duration = Duration::from_secs(3);
/// The development container must serve an edit within this.
const HOT_RELOAD_WITHIN: Duration = Duration::from_secs(180);

/// Runs the whole check.
pub(crate) fn e2e() -> anyhow::Result<()> {
    docker(&["info", "--format", "{{.ServerVersion}}"])
        .context("no Docker engine answers (run ../shared/docker/engine.sh)")?;
    let root = workspace_root();
    let work = root.join("target/docker-e2e");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    step("the build context is under 2 MB", || {
        check_context_size(&root, &work)
    })?;
    let components = work.join("components");
    step("target component, exported with -o", || {
        let out = components.display().to_string();
        build(&root, &["--target", "component", "-o", &out])?;
        // BuildKit creates the export directory 0700; the image runs as uid 10001, which must
        // be able to read a component mounted from it.
        std::fs::set_permissions(
            &components,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        Ok(())
    })?;
    // Each image is checked right after it is built; arm64, the slowest, comes last.
    for (target, tag) in [
        ("production", "task-api:prod"),
        ("host-builder", "task-api:builder"),
    ] {
        step(&format!("target {target}"), || {
            build_image(&root, &["--target", target], tag)
        })?;
    }
    step(
        "production: the seed's whoami and echo checks, CRUD, health, uid, stop, volume, hardening",
        check_production,
    )?;
    step(
        "compose: `up` serves production on :8000 with a named volume",
        check_compose,
    )?;
    step("production: swapping in another component", || {
        check_swap(&components)
    })?;
    step("target development", || {
        build_image(&root, &["--target", "development"], "task-api:dev")
    })?;
    step("development: an edit is served without a restart", || {
        check_hot_reload(&work)
    })?;
    step("target test", || {
        build_image(&root, &["--target", "test"], "task-api:test")
    })?;
    step("a failing test fails the test target", || {
        check_test_target_fails(&work)
    })?;
    step(
        "editing component/ and host/tests leaves the host build cached",
        || check_host_cached(&work),
    )?;
    step("production for linux/arm64, cross-built", || {
        build_image(&root, &["--platform", "linux/arm64"], "task-api:arm64")
    })?;
    check_arm64()?;
    print_sizes()?;
    Ok(())
}

fn step(name: &str, check: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("==> docker: {name}");
    let started = Instant::now();
    check().with_context(|| format!("docker: {name}"))?;
    eprintln!("    ok in {:.0?}", started.elapsed());
    Ok(())
}

/// `docker build` of `context` with `args`, failing on a failed build.
fn build(context: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(&mut build_command(context, args)).map(drop)
}

/// The `docker build` command line of `context` with `args`, BuildKit on, for the checks that
/// read the build's log themselves.
fn build_command(context: &Path, args: &[&str]) -> Command {
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
fn build_image(context: &Path, args: &[&str], tag: &str) -> anyhow::Result<()> {
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

fn check_arm64() -> anyhow::Result<()> {
    let arch = docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Architecture}}",
        "task-api:arm64",
    ])?;
    ensure!(arch.trim() == "arm64", "task-api:arm64 is {arch}");
    let container = Container::create("task-api:arm64")?;
    let binary = std::env::temp_dir().join("task-host-arm64");
    docker(&[
        "cp",
        &format!("{}:/usr/local/bin/task-host", container.id),
        &binary.to_string_lossy(),
    ])?;
    let header = std::fs::read(&binary)?;
    // ELF e_machine, little-endian at offset 18: 0xB7 is AArch64.
    ensure!(
        header.get(..4) == Some(b"\x7fELF".as_slice())
            && header.get(18..20) == Some([0xB7, 0].as_slice()),
        "task-host in task-api:arm64 is not an AArch64 ELF"
    );
    eprintln!("    task-api:arm64: arm64 image, task-host is an AArch64 ELF");
    Ok(())
}

fn print_sizes() -> anyhow::Result<()> {
    println!("image sizes (uncompressed, docker image inspect):");
    for tag in [
        "task-api:prod",
        "task-api:arm64",
        "task-api:dev",
        "task-api:test",
        "task-api:builder",
    ] {
        let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", tag])?
            .trim()
            .parse()?;
        println!("  {tag:<18} {:>8.1} MB", size as f64 / 1e6);
        if tag == "task-api:prod" {
            ensure!(
                size <= MAX_PRODUCTION_BYTES,
                "task-api:prod is {size} bytes, over {MAX_PRODUCTION_BYTES}"
            );
        }
    }
    Ok(())
}

fn check_production() -> anyhow::Result<()> {
    // The seed's own checklist: `docker run --rm task-api:prod whoami` prints appuser, and
    // `docker run --rm task-api:prod echo "Container started"` runs, on an image with no
    // shell and no coreutils: task-host answers both.
    let whoami = docker(&["run", "--rm", "task-api:prod", "whoami"])?;
    ensure!(whoami.trim() == "appuser", "whoami printed {whoami:?}");
    let started = Instant::now();
    let echoed = docker(&["run", "--rm", "task-api:prod", "echo", "Container started"])?;
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

    let first = Container::run(&[&hardened[..], &["-v", &mount, "task-api:prod"]].concat())?;
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

    let second = Container::run(&[&hardened[..], &["-v", &mount, "task-api:prod"]].concat())?;
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

fn check_compose() -> anyhow::Result<()> {
    // The engine here has no compose plugin; Debian's docker-compose reads the same file.
    let compose: &[&str] = if docker(&["compose", "version"]).is_ok() {
        &["docker", "compose"]
    } else {
        &["docker-compose"]
    };
    let run_compose = |args: &[&str]| {
        let mut command = Command::new(compose[0]);
        command
            .args(&compose[1..])
            .args(["-p", "task-api-e2e"])
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

fn check_swap(components: &Path) -> anyhow::Result<()> {
    let hello = components.join("hello_component.wasm");
    let over = format!("{}:/app/task_api.wasm:ro", hello.display());
    let by_env = format!("{}:/components:ro", components.display());
    for args in [
        vec!["-v", over.as_str(), "task-api:prod"],
        vec![
            "-v",
            by_env.as_str(),
            "-e",
            "TASK_HOST_COMPONENT=/components/hello_component.wasm",
            "task-api:prod",
        ],
    ] {
        let container = Container::run(&args)?;
        let base = container.url()?;
        wait_until(Duration::from_secs(30), || {
            Ok(curl("GET", &format!("{base}/"), None)
                .is_ok_and(|(_, body)| body.contains("swapped-in")))
        })?;
    }
    Ok(())
}

fn check_hot_reload(work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("dev-tree"))?;
    let mount = format!("{}:/src", tree.display());
    let container = Container::run(&["-v", &mount, "task-api:dev"])?;
    let base = container.url()?;
    wait_until(Duration::from_secs(300), || {
        Ok(curl("GET", &format!("{base}/"), None).is_ok_and(|(_, body)| body.contains("1.0.0")))
    })?;
    let openapi = tree.join("component/src/openapi.rs");
    let source = std::fs::read_to_string(&openapi)?;
    std::fs::write(
        &openapi,
        source.replace(
            r#"VERSION: &str = "1.0.0""#,
            r#"VERSION: &str = "1.0.1-dev""#,
        ),
    )?;
    let edited = Instant::now();
    wait_until(HOT_RELOAD_WITHIN, || {
        Ok(
            curl("GET", &format!("{base}/"), None)
                .is_ok_and(|(_, body)| body.contains("1.0.1-dev")),
        )
    })?;
    eprintln!(
        "    the edit was served {:.0?} after saving",
        edited.elapsed()
    );
    Ok(())
}

fn check_context_size(root: &Path, work: &Path) -> anyhow::Result<()> {
    // What the daemon receives, after `.dockerignore`: copied whole into an empty image and
    // exported as a tar. BuildKit's own "transferring context" line only counts what changed
    // since the last build, so it cannot be used on a warm engine.
    let dockerfile = work.join("context.Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY . /\n")?;
    let tar = work.join("context.tar");
    let dockerfile_arg = dockerfile.display().to_string();
    let output_arg = format!("type=tar,dest={}", tar.display());
    build(root, &["-f", &dockerfile_arg, "--output", &output_arg])?;
    let bytes = std::fs::metadata(&tar)?.len();
    eprintln!("    context: {:.0} kB as a tar", bytes as f64 / 1e3);
    ensure!(
        bytes < MAX_CONTEXT_BYTES,
        "the build context is {bytes} bytes, over {MAX_CONTEXT_BYTES}: check .dockerignore"
    );
    Ok(())
}

fn check_host_cached(work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("cache-tree"))?;
    // The release host is built from host/src alone; its tests are not part of it.
    // A line no earlier run wrote: the same edit twice would hit BuildKit's cache for the
    // component too, and the check could no longer tell the two stages apart.
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    for edited in ["component/src/lib.rs", "host/tests/integration/main.rs"] {
        let file = tree.join(edited);
        let source = std::fs::read_to_string(&file)?;
        std::fs::write(&file, format!("{source}\n// a one-line change ({nonce})\n"))?;
    }
    let output =
        build_command(&tree, &["--progress=plain", "-t", "task-api:cache-check"]).output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "the rebuild failed:\n{log}");
    let cached = |stage: &str, command: &str| -> anyhow::Result<bool> {
        let step = log
            .lines()
            .find(|line| line.contains(stage) && line.contains(command))
            .and_then(|line| line.split_whitespace().next())
            .with_context(|| format!("no {stage} step in the build log"))?;
        Ok(log.lines().any(|line| line == format!("{step} CACHED")))
    };
    ensure!(
        cached("[host-builder", "cargo zigbuild")?,
        "the host build step was not CACHED:\n{log}"
    );
    ensure!(
        !cached("[component-builder", "cargo build")?,
        "the component was not rebuilt:\n{log}"
    );
    docker(&["rmi", "task-api:cache-check"])?;
    Ok(())
}

fn check_test_target_fails(work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("failing-tree"))?;
    let tests = tree.join("component/src/api/tests.rs");
    let source = std::fs::read_to_string(&tests)?;
    std::fs::write(
        &tests,
        format!(
            "{source}\n#[test]\nfn a_deliberately_broken_test() {{\n    assert_eq!(1 + 1, 3);\n}}\n"
        ),
    )?;
    let output = build_command(&tree, &["--target", "test"]).output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success(),
        "docker build --target test passed with a failing test"
    );
    ensure!(
        log.contains("a_deliberately_broken_test"),
        "the build failed, but not on the broken test:\n{log}"
    );
    Ok(())
}

/// Copies the files git tracks (and untracked, unignored ones) to `dest`.
fn copy_tree(dest: &Path) -> anyhow::Result<PathBuf> {
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
struct Container {
    id: String,
}

impl Container {
    /// A detached container publishing port 8000 on a free loopback port.
    fn run(args: &[&str]) -> anyhow::Result<Self> {
        Self::from_docker(&[&["run", "-d", "-p", "127.0.0.1::8000"][..], args].concat())
    }

    /// A container of `image` that is never started, for copying files out of it.
    fn create(image: &str) -> anyhow::Result<Self> {
        Self::from_docker(&["create", image])
    }

    /// `docker` with `args`, which print the new container's id.
    fn from_docker(args: &[&str]) -> anyhow::Result<Self> {
        let id = docker(args)?.trim().to_owned();
        Ok(Self { id })
    }

    fn url(&self) -> anyhow::Result<String> {
        let port = docker(&["port", &self.id, "8000/tcp"])?;
        let addr = port
            .lines()
            .next()
            .context("no published port")?
            .trim()
            .to_owned();
        Ok(format!("http://{addr}"))
    }

    fn inspect(&self, format: &str) -> anyhow::Result<String> {
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
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

/// `curl` with a JSON body; returns (status, body).
fn curl(method: &str, url: &str, json: Option<&str>) -> anyhow::Result<(u16, String)> {
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

fn expect((status, body): (u16, String), want: u16, contains: &str) -> anyhow::Result<()> {
    ensure!(
        status == want && body.contains(contains),
        "expected {want} with {contains:?}, got {status} {body}"
    );
    Ok(())
}

fn wait_until(
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

fn docker(args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("docker").args(args))
}

/// Runs `command`, returning stdout, or an error with its stderr.
fn run(command: &mut Command) -> anyhow::Result<String> {
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
