//! A server run as a child process, and the startup line that says where it listens.

use std::io::{self, BufRead as _, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a server may take to print its startup line. Both servers compile the
/// component before they listen, which takes seconds on a 2-core machine running other
/// tests beside.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// The address in a startup line: task-host's `listening on http://ADDR`,
/// `wasmtime serve`'s `Serving HTTP on http://ADDR/`, or gunicorn's log line
/// `[TIME] [PID] [INFO] Listening at: http://ADDR (PID)` (the bench runs the seed's FastAPI
/// app under it).
pub fn startup_addr(line: &str) -> Option<SocketAddr> {
    if let Some((_, rest)) = line.split_once("] [INFO] Listening at: http://") {
        return rest.split_whitespace().next()?.parse().ok();
    }
    let url = line
        .strip_prefix("listening on http://")
        .or_else(|| line.strip_prefix("Serving HTTP on http://"))?;
    url.strip_suffix('/').unwrap_or(url).parse().ok()
}

/// A server running as a child process, at the address its startup line named. It is
/// killed on drop.
#[derive(Debug)]
pub struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    /// Spawns `command` with its stdout and stderr piped, copies every line of both to
    /// `log`, and returns once either has printed the startup line.
    ///
    /// Fails if the server cannot start, or if it exits, or stays silent for
    /// [`STARTUP_TIMEOUT`], without a startup line; it is killed then.
    pub fn spawn(command: &mut Command, log: impl Write + Send + 'static) -> io::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Arc::new(Mutex::new(log));
        let (found, startup) = mpsc::channel();
        let stdout = child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>);
        for output in [stdout, stderr].into_iter().flatten() {
            let (log, found) = (Arc::clone(&log), found.clone());
            std::thread::spawn(move || copy_lines(output, &log, &found));
        }
        // Only the readers hold senders now, so once both outputs close the wait ends.
        drop(found);
        let failure = match startup.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => return Ok(Self { child, addr }),
            Err(RecvTimeoutError::Timeout) => format!("no startup line within {STARTUP_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => "exited without a startup line".to_owned(),
        };
        let _ = child.kill();
        let status = child.wait()?;
        Err(io::Error::other(format!("{failure} ({status})")))
    }

    /// The address the startup line named.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id, to send the server signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the server has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `output` to `log` line by line, and sends the address of the first startup line.
fn copy_lines(output: impl Read, log: &Mutex<impl Write>, found: &mpsc::Sender<SocketAddr>) {
    for line in BufReader::new(output).lines().map_while(Result::ok) {
        let _ = writeln!(log.lock().unwrap_or_else(PoisonError::into_inner), "{line}");
        if let Some(addr) = startup_addr(&line) {
            // Ignored once spawn has returned: only the first startup line counts.
            let _ = found.send(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{ServerChild, startup_addr};

    #[test]
    fn every_servers_startup_line_names_its_address() {
        assert_eq!(
            startup_addr("listening on http://127.0.0.1:8000"),
            Some("127.0.0.1:8000".parse().expect("an address"))
        );
        assert_eq!(
            startup_addr("Serving HTTP on http://0.0.0.0:41234/"),
            Some("0.0.0.0:41234".parse().expect("an address"))
        );
        assert_eq!(
            startup_addr(
                "[2026-11-29 05:00:00 +0000] [4242] [INFO] Listening at: http://127.0.0.1:8765 (4242)"
            ),
            Some("127.0.0.1:8765".parse().expect("an address"))
        );
        for other in [
            "listening on http://localhost:8000",
            "  listening on http://127.0.0.1:8000",
            "INFO listening on http://127.0.0.1:8000",
            "Serving HTTP on http://127.0.0.1/",
            "[INFO] Listening at: http://127.0.0.1:8765 (4242)",
            "[2026-11-29 05:00:00 +0000] [4242] [INFO] Listening at: unix:/tmp/socket (4242)",
        ] {
            assert_eq!(startup_addr(other), None, "{other:?}");
        }
    }

    /// A log that the test can read back after handing it to a child's readers.
    #[derive(Clone, Default)]
    struct SharedLog(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedLog {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the log lock").write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedLog {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("the log lock")).into_owned()
        }
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn the_startup_line_is_read_from_stderr_while_the_server_runs() {
        let log = SharedLog::default();
        let mut server = ServerChild::spawn(
            &mut sh(
                "echo compiling; echo 'Serving HTTP on http://127.0.0.1:4321/' >&2; exec sleep 60",
            ),
            log.clone(),
        )
        .expect("the server starts");
        assert_eq!(server.addr(), "127.0.0.1:4321".parse().expect("an address"));
        assert_eq!(
            server.try_wait().expect("waitpid works"),
            None,
            "still running"
        );
        assert!(log.text().contains("Serving HTTP on"), "{}", log.text());
    }

    #[test]
    fn a_server_that_exits_without_a_startup_line_fails_at_once() {
        let log = SharedLog::default();
        let started = Instant::now();
        let error = ServerChild::spawn(
            &mut sh("echo 'error: no component' >&2; exit 3"),
            log.clone(),
        )
        .expect_err("no startup line");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it waited for the timeout"
        );
        assert_eq!(
            error.to_string(),
            "exited without a startup line (exit status: 3)"
        );
        assert_eq!(log.text(), "error: no component\n");
    }
}
