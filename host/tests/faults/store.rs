//! A store that fails under a running server: its redb file made immutable, and its disk
//! full. Writes must get a clean JSON 500, and once the fault is gone the host must take
//! writes again, without a restart.
//!
//! Both faults need root: an immutable flag (`chattr +i`; root's file modes stop nothing) and
//! a tmpfs of our own to fill. Where they cannot be staged (not root, or a container without
//! `CAP_LINUX_IMMUTABLE` or `CAP_SYS_ADMIN`, as in a Docker build) the rows say "skipped"
//! and why; they never pass unstaged.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};
use serde_json::json;

use crate::common::{ServerProcess, components};
use crate::load::{self, Answer};
use crate::table::{Row, count, duration, setting};

/// How long the host has to take writes again once the fault is gone.
const RECOVERY: Duration = Duration::from_secs(2);
/// The small disk, in MiB: room for the store and a little more, filled before the writes.
const DISK_MIB: usize = 4;
/// The title of each write on the full disk: big enough that a few need new pages.
const BIG_TITLE: usize = 64 << 10;
/// Writes tried on the full disk, one after another, until one fails.
const WRITES_WHEN_FULL: usize = 16;
/// The rows: an immutable store file, then a full disk, each followed by its end.
pub(crate) async fn rows() -> Vec<Row> {
    let mut rows = immutable_store_file().await;
    rows.extend(full_disk().await);
    rows
}

/// A store fault's two rows, named: the fault, and its end.
struct Named {
    fault: String,
    gone: &'static str,
}

impl Named {
    fn expected() -> (&'static str, String) {
        (
            "writes answer 500 {\"detail\":\"Internal Server Error\"}; every answer JSON",
            format!(
                "writes answer 200 again within {}, and reads, without a restart",
                setting(RECOVERY)
            ),
        )
    }

    fn skipped(&self, why: &str) -> Vec<Row> {
        let (fails, recovers) = Self::expected();
        vec![
            Row::skipped(&self.fault, fails, why),
            Row::skipped(self.gone, recovers, why),
        ]
    }

    fn rows(&self, before: &Result<Answer, String>, during: &During, after: &After) -> Vec<Row> {
        let (fails, recovers) = Self::expected();
        vec![
            fault_row(&self.fault, fails, before, during),
            recovery_row(self.gone, recovers, after),
        ]
    }
}

async fn immutable_store_file() -> Vec<Row> {
    let named = Named {
        fault: "redb file made immutable (`chattr +i`)".to_owned(),
        gone: "… and made writable again",
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    if let Err(why) = can_stage(|| immutable_stops_writes(dir.path())) {
        return named.skipped(&why);
    }
    let store = dir.path().join("store.redb");
    let host = serve_tasks(dir.path(), &store);
    let before = load::create(host.addr, "before the fault").await;
    let immutable = Immutable::set(&store).expect("make the store file immutable");
    let during = failing_writes(&host, "a").await;
    drop(immutable);
    let after = recovery(&host).await;
    named.rows(&before, &during, &after)
}

async fn full_disk() -> Vec<Row> {
    let named = Named {
        fault: format!("disk full (a {DISK_MIB} MiB tmpfs, filled)"),
        gone: "… and space freed",
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("a mount point");
    let mounted =
        can_stage(|| Tmpfs::mount(&disk).map_err(|e| format!("cannot mount a tmpfs: {e}")));
    let tmpfs = match mounted {
        Ok(tmpfs) => tmpfs,
        Err(why) => return named.skipped(&why),
    };
    let store = disk.join("store.redb");
    let host = serve_tasks(dir.path(), &store);
    let before = load::create(host.addr, "before the fault").await;
    let filler = disk.join("filler");
    fill(&filler);
    let during = failing_writes(&host, &"x".repeat(BIG_TITLE)).await;
    std::fs::remove_file(&filler).expect("free the space");
    let after = recovery(&host).await;
    // The server holds the store open: stop it before the disk goes.
    drop(host);
    drop(tmpfs);
    named.rows(&before, &during, &after)
}

/// Whether this fault can be staged here: `Err` says why not.
fn can_stage<T>(stage: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".to_owned());
    }
    stage()
}

/// task_api on a redb store at `store`, logging into `dir`.
fn serve_tasks(dir: &Path, store: &Path) -> ServerProcess {
    let component = components().task_api.display().to_string();
    let store = format!("redb:{}", store.display());
    ServerProcess::host(dir, &["--component", &component, "--store", &store])
}

/// What the server answered while the store failed.
struct During {
    /// Writes that still fitted (in pages the file already had) before the first failure.
    fitted: usize,
    /// The first write that failed, if one did.
    failed: Option<Result<Answer, String>>,
    /// A read of the task created before the fault.
    read: Result<Answer, String>,
    /// The store's error for the first failed write, as the host logged it.
    error: String,
}

/// Creates tasks titled `title` until one fails, at most [`WRITES_WHEN_FULL`], then reads
/// task 1.
async fn failing_writes(host: &ServerProcess, title: &str) -> During {
    let mut fitted = 0;
    let mut failed = None;
    for _ in 0..WRITES_WHEN_FULL {
        match load::create(host.addr, title).await {
            Ok(answer) if answer.status == 200 => fitted += 1,
            other => {
                failed = Some(other);
                break;
            }
        }
    }
    let read = load::get(host.addr, "/tasks/1").await;
    During {
        fitted,
        failed,
        read,
        error: store_errors(host).into_iter().next().unwrap_or_default(),
    }
}

/// What the server answered once the fault was gone.
struct After {
    /// The last write tried.
    write: Result<Answer, String>,
    /// How long after the fault went the last write was answered.
    after: Duration,
    /// The store's error for it, as the host logged it, if it failed.
    error: String,
    /// A read of the task created before the fault, after the last write.
    read: Result<Answer, String>,
}

/// Tries a write every 100 ms until one answers 200 or [`RECOVERY`] has passed, then reads.
async fn recovery(host: &ServerProcess) -> After {
    let started = Instant::now();
    loop {
        let write = load::create(host.addr, "after the fault").await;
        if load::is_ok(&write) || started.elapsed() > RECOVERY {
            return After {
                write,
                after: started.elapsed(),
                error: store_errors(host).pop().unwrap_or_default(),
                read: load::get(host.addr, "/tasks/1").await,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fault_row(fault: &str, expected: &str, before: &Result<Answer, String>, during: &During) -> Row {
    let internal = json!({ "detail": "Internal Server Error" });
    let staged = load::is_ok(before);
    let write_failed_cleanly = during.failed.as_ref().is_some_and(|answer| {
        answer
            .as_ref()
            .is_ok_and(|answer| answer.status == 500 && answer.json == internal)
    });
    let mut seen = String::new();
    if during.fitted > 0 {
        seen.push_str(&format!("{} writes fitted, then ", count(during.fitted)));
    }
    seen.push_str(&match &during.failed {
        Some(answer) => format!("POST {}", load::brief(answer)),
        None => format!("all {WRITES_WHEN_FULL} writes answered 200"),
    });
    seen.push_str(&format!(
        "; GET /tasks/1 {}; store error: {}",
        load::brief(&during.read),
        during.error
    ));
    Row::checked(
        fault,
        expected,
        staged && write_failed_cleanly && is_json(&during.read),
        seen,
    )
}

fn recovery_row(fault: &str, expected: String, after: &After) -> Row {
    let recovered = load::is_ok(&after.write) && load::is_ok(&after.read);
    let mut seen = format!(
        "POST {} after {}, then GET /tasks/1 {}",
        load::brief(&after.write),
        duration(after.after),
        load::brief(&after.read)
    );
    if !recovered {
        seen.push_str(&format!("; store error: {}", after.error));
    }
    Row::checked(fault, expected, recovered, seen)
}

/// Whether an answer came, with a JSON body: a task, or a JSON error.
fn is_json(answer: &Result<Answer, String>) -> bool {
    answer.as_ref().is_ok_and(|answer| answer.json.is_object())
}

/// The store's errors so far, oldest first, as the host logged them.
fn store_errors(host: &ServerProcess) -> Vec<String> {
    const MARK: &str = "key-value store: ";
    host.log_text()
        .lines()
        // The guest logs each failure too, without its cause: the host's line has the chain.
        .filter(|line| !line.contains("stream="))
        .filter_map(|line| {
            line.split_once(MARK)
                .map(|(_, error)| error.trim().to_owned())
        })
        .collect()
}

/// A file's immutable attribute (`chattr +i`), cleared again on drop so the temp dir can go.
struct Immutable(File);

impl Immutable {
    fn set(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let flags = ioctl_getflags(&file)?;
        ioctl_setflags(&file, flags | IFlags::IMMUTABLE)?;
        Ok(Self(file))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        if let Ok(flags) = ioctl_getflags(&self.0) {
            let _ = ioctl_setflags(&self.0, flags - IFlags::IMMUTABLE);
        }
    }
}

/// Whether an immutable file in `dir` refuses writes through a descriptor opened before the
/// flag was set, as the server's is: ext4 and xfs refuse them, tmpfs does not.
fn immutable_stops_writes(dir: &Path) -> Result<(), String> {
    let path = dir.join("probe");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    let immutable =
        Immutable::set(&path).map_err(|e| format!("cannot make a file immutable here: {e}"))?;
    let written = file.write_all(b"probe");
    drop(immutable);
    let _ = std::fs::remove_file(&path);
    match written {
        Ok(()) => Err("an immutable file still takes writes on this file system".to_owned()),
        Err(_) => Ok(()),
    }
}

/// A small tmpfs mounted for the test, detached on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> rustix::io::Result<Self> {
        let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        let size = std::ffi::CString::new(format!("size={DISK_MIB}m")).expect("no NUL");
        mount("tmpfs", at, "tmpfs", flags, size.as_c_str())?;
        Ok(Self(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = unmount(&self.0, UnmountFlags::DETACH);
    }
}

/// Writes to `path` until the disk is full: within [`DISK_MIB`], or it fails.
fn fill(path: &Path) {
    let mut file = File::create(path).expect("a filler file");
    let chunk = vec![0_u8; 64 << 10];
    for _ in 0..=(DISK_MIB << 20) / chunk.len() {
        if file.write_all(&chunk).is_err() {
            return;
        }
    }
    panic!("{} did not fill the disk", path.display());
}
