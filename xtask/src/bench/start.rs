//! Start to first 200: the time from exec to the first 200 on `GET /health`, the median of
//! [`STARTS`] starts. Cold, a wasm server has no compiled code to read (an empty task-host
//! cache directory, `wasmtime -C cache=n`); warm, the code one earlier start compiled.

use std::path::Path;
use std::time::Instant;

use crate::bench::server::{Binaries, Cache, Spec};
use crate::load::Server;

/// Starts per median.
pub(crate) const STARTS: usize = 10;

/// The [`STARTS`] start times of `spec`, in ms, with its files in `dir`. A warm series
/// follows one uncounted start that fills the cache.
pub(crate) fn measure(
    spec: &Spec,
    binaries: &Binaries,
    dir: &Path,
    cache: Cache,
) -> anyhow::Result<Vec<f64>> {
    let log = dir.join("start.log");
    if cache == Cache::Warm {
        let command = spec.command(binaries, dir, cache)?;
        Server::start(command, spec.label, &log)?.stop()?;
    }
    let mut samples = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let command = spec.command(binaries, dir, cache)?;
        let exec = Instant::now();
        let server = Server::start(command, spec.label, &log)?;
        samples.push(exec.elapsed().as_secs_f64() * 1e3);
        server.stop()?;
    }
    Ok(samples)
}
