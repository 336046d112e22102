//! Component swap time: task_api.wasm and hello_component.wasm renamed in turn over the file
//! a release task-host watches, each timed from the rename to the first response from the
//! new version.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::load::{Server, get, host_command};

/// Swaps per run: three each way.
const SWAPS: usize = 6;

/// Runs the swaps with the host's compile cache in `dir`, prints each, and returns their
/// times in ms.
pub(crate) fn measure(task_api: &Path, host: &Path, dir: &Path) -> anyhow::Result<Vec<f64>> {
    let hello = task_api.with_file_name("hello_component.wasm");
    let versions = [
        (hello, "swapped-in"),
        (task_api.to_path_buf(), "Task Manager API"),
    ];
    std::fs::create_dir_all(dir)?;
    let served = dir.join("served.wasm");
    std::fs::copy(&versions[1].0, &served)?;
    let mut command = host_command(host, &served, "memory");
    command.arg("--cache-dir").arg(dir.join("compile-cache"));
    let server = Server::start(command, "task-host --watch", &dir.join("swap.log"))?;
    let addr = server.addr();
    println!();
    println!("component swap: rename to first response from the new version (release task-host)");
    let mut times = Vec::with_capacity(SWAPS);
    for swap in 0..SWAPS {
        let (candidate, marker) = &versions[swap % 2];
        let temp = dir.join("candidate.tmp");
        std::fs::copy(candidate, &temp)?;
        let renamed = Instant::now();
        std::fs::rename(&temp, &served)?;
        while !get(addr, "/").is_ok_and(|body| body.contains(marker)) {
            if renamed.elapsed() > Duration::from_secs(30) {
                bail!("swap {swap} was not served within 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ms = renamed.elapsed().as_secs_f64() * 1e3;
        let name = candidate
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("  swap {:>2} -> {name:<22} {ms:>7.0} ms", swap + 1);
        times.push(ms);
        std::thread::sleep(Duration::from_millis(300));
    }
    server.stop()?;
    Ok(times)
}
