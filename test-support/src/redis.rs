//! A throwaway `redis-server` for the tests of the Redis store: its own port on 127.0.0.1,
//! its own directory, its log in a file, and stopped on drop. Nothing assumes a Redis that
//! is already running.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long `redis-server` may take to say it accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// What `redis-server` logs once it accepts connections.
const READY_LINE: &str = "Ready to accept connections";
/// Attempts at finding a free port, in case another process takes the one picked.
const PORT_ATTEMPTS: usize = 5;

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A `redis-server` child process with append-only persistence in a directory of its own,
/// so that a restart on the same port finds the data again. It is killed, and its directory
/// removed, on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1. Fails with a line saying how to
    /// install it if it is not on PATH.
    pub fn start() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "task-api-redis-{}-{}",
            std::process::id(),
            DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            child: None,
            port: 0,
            dir,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on, also after a restart.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash or a lost machine would; what it had
    /// acknowledged is in its append-only file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, and waits until it accepts
    /// connections (with its data loaded).
    pub fn start_again(&mut self) -> io::Result<()> {
        self.kill();
        let log = self.dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot run redis-server ({error}): apt-get install redis-server"),
                )
            })?;
        self.child = Some(child);
        self.wait_ready(&log)
    }

    fn wait_ready(&mut self, log: &Path) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(READY_LINE) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if exited.is_some() || started.elapsed() > READY_TIMEOUT {
                self.kill();
                return Err(io::Error::other(format!(
                    "redis-server on port {} did not become ready ({exited:?}); its log:\n{text}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port of 127.0.0.1 that was free a moment ago: for a server to listen on, or for a
/// client to find nothing listening.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
