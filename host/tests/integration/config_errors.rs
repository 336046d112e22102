//! Bad configuration: one line on stderr naming the problem, a non-zero exit, no panic.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{components, host_command};

/// Runs `task-host serve` with `flags` and returns (exit code, stderr).
fn serve_fails(flags: &[&str]) -> (Option<i32>, String) {
    outcome(
        host_command()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(flags),
    )
}

/// How long a command given a bad configuration may run before it counts as not refusing
/// it: generous, since startup may wait for a store (`--store-wait`, 30 s by default).
const REFUSAL_WITHIN: Duration = Duration::from_secs(60);

/// Runs `command` to its end and returns (exit code, stderr). A command still running after
/// [`REFUSAL_WITHIN`] (a server that took a bad configuration) is killed, and the test fails.
fn outcome(command: &mut Command) -> (Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("task-host runs");
    let started = Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited on")
        .is_none()
    {
        if started.elapsed() > REFUSAL_WITHIN {
            let _ = child.kill();
            let output = child
                .wait_with_output()
                .expect("the killed child is reaped");
            panic!(
                "still running after {REFUSAL_WITHIN:?} instead of refusing its configuration:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("the child is reaped");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_one_line_error(outcome: (Option<i32>, String), expected: &str) {
    let (code, stderr) = outcome;
    assert_eq!(code, Some(1), "exit code; stderr: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("task-host: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {stderr}");
    assert!(
        errors[0].contains(expected),
        "{:?} should mention {expected:?}",
        errors[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn a_missing_component_file() {
    assert_one_line_error(
        serve_fails(&["--component", "/nonexistent/app.wasm", "--store", "memory"]),
        "cannot read component /nonexistent/app.wasm: No such file or directory",
    );
}

#[test]
fn a_core_module_instead_of_a_component() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").expect("writable temp dir");
    assert_one_line_error(
        serve_fails(&["--component", &path(&module), "--store", "memory"]),
        "is a core WebAssembly module, not a component",
    );
}

#[test]
fn a_file_that_is_not_wasm() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"#!/bin/sh\necho not wasm\n").expect("writable temp dir");
    assert_one_line_error(
        serve_fails(&["--component", &path(&garbage), "--store", "memory"]),
        "is not a WebAssembly file",
    );
}

#[test]
fn a_component_with_an_unprovided_import() {
    assert_one_line_error(
        serve_fails(&[
            "--component",
            &path(&components().unprovided),
            "--store",
            "memory",
        ]),
        "component imports test:unprovided/greeter, which this host does not provide",
    );
}

#[test]
fn a_port_already_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("a bound address").to_string();
    let output = host_command()
        .args(["serve", "--addr", &addr, "--store", "memory", "--component"])
        .arg(&components().task_api)
        .output()
        .expect("task-host runs");
    let outcome = (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert_one_line_error(
        outcome,
        &format!("cannot listen on {addr}: Address already in use"),
    );
}

#[test]
fn a_store_path_that_cannot_be_created() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("writable temp dir");
    // A directory cannot be created under a regular file, even by root.
    let store = format!("redb:{}/store.redb", file.display());
    assert_one_line_error(
        serve_fails(&[
            "--component",
            &path(&components().task_api),
            "--store",
            &store,
        ]),
        "cannot create the store directory",
    );
}

#[test]
fn a_store_file_that_is_not_redb() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = dir.path().join("store.redb");
    std::fs::write(&store, vec![b'x'; 8192]).expect("writable temp dir");
    assert_one_line_error(
        serve_fails(&[
            "--component",
            &path(&components().task_api),
            "--store",
            &format!("redb:{}", store.display()),
        ]),
        "cannot open the store",
    );
}

#[test]
fn an_unknown_store_kind() {
    let (code, stderr) = serve_fails(&["--store", "redis:localhost"]);
    assert_eq!(code, Some(2), "clap's usage error: {stderr}");
    assert!(
        stderr.contains("unknown store \"redis:localhost\""),
        "{stderr}"
    );
}

#[test]
fn a_store_password_appears_in_no_error_and_no_help() {
    const PASSWORD: &str = "s3cret-pw";
    for store in [
        format!("redis://:{PASSWORD}@localhost:notaport"),
        format!("reddis://user:{PASSWORD}@localhost:6379"),
    ] {
        let (code, stderr) = serve_fails(&["--store", &store]);
        assert_eq!(code, Some(2), "clap's usage error: {stderr}");
        assert!(stderr.contains("--store"), "names the flag: {stderr}");
        assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    }
    let help = host_command()
        .args(["serve", "--help"])
        .env(
            "TASK_HOST_STORE",
            format!("redis://:{PASSWORD}@localhost:6379"),
        )
        .output()
        .expect("task-host runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("TASK_HOST_STORE"), "{help}");
    assert!(!help.contains(PASSWORD), "the password leaked: {help}");
}

#[test]
fn a_redis_that_cannot_be_reached_within_the_store_wait() {
    let port = test_support::free_port().expect("a port nothing listens on");
    let store = format!("redis://127.0.0.1:{port}");
    let component = path(&components().task_api);
    let started = Instant::now();
    let outcome = serve_fails(&[
        "--component",
        &component,
        "--store",
        &store,
        "--store-wait",
        "1s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up only after {:?}",
        started.elapsed()
    );
    assert_one_line_error(
        outcome,
        &format!("cannot reach the store redis://127.0.0.1:{port}/0 ("),
    );
}

/// Sends one command to the Redis on `port` and returns its first answer line.
fn redis_command(port: u16, words: &[&str]) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("Redis answers");
    let mut command = format!("*{}\r\n", words.len());
    for word in words {
        command.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream.write_all(command.as_bytes()).expect("send to Redis");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read Redis's answer");
    line
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_evicts_keys_unless_allowed() {
    let redis = test_support::RedisServer::start().expect("redis-server starts");
    let set = ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"];
    assert_eq!(redis_command(redis.port(), &set), "+OK\r\n");
    let component = path(&components().task_api);
    let store = redis.url();
    assert_one_line_error(
        serve_fails(&["--component", &component, "--store", &store]),
        "evicts keys (maxmemory-policy allkeys-lru)",
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let host = crate::common::ServerProcess::host(
        dir.path(),
        &[
            "--component",
            &component,
            "--store",
            &store,
            "--redis-allow-eviction",
            "true",
        ],
    );
    host.client().get("/").await.expect(200);
    host.wait_for_log("may evict keys", 1, Duration::from_secs(10))
        .await;
}

#[test]
fn a_log_filter_that_does_not_parse() {
    let (code, stderr) = outcome(
        host_command()
            .args(["serve", "--addr", "127.0.0.1:0", "--store", "memory"])
            .env("RUST_LOG", "task_host=loud"),
    );
    assert_eq!(code, Some(2), "clap's usage error: {stderr}");
    assert!(stderr.contains("task_host=loud"), "{stderr}");
    assert!(stderr.contains("--log"), "{stderr}");
}

#[test]
fn a_precompiled_dir_that_others_can_write() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod the temp dir");
    let component = components().task_api.to_string_lossy().into_owned();
    assert_one_line_error(
        serve_fails(&[
            "--component",
            &component,
            "--store",
            "memory",
            "--precompiled-dir",
            &path(dir.path()),
        ]),
        "can be written by other users (mode 777)",
    );
}

#[test]
fn a_precompile_for_an_architecture_this_build_cannot_compile_for() {
    let other = match std::env::consts::ARCH {
        "x86_64" => "aarch64",
        _ => "x86_64",
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    assert_one_line_error(
        outcome(
            host_command()
                .arg("precompile")
                .args(["--target", &format!("{other}-unknown-linux-musl")])
                .arg("--out-dir")
                .arg(dir.path())
                .arg(&components().task_api),
        ),
        "the `cross-compile` feature adds the others",
    );
}
