//! A version of the component before it is served: its file read and identified
//! ([`Candidate::read`]), compiled with readable errors (or found compiled in the cache),
//! checked for imports this host provides and an HTTP handler export, and linked into a
//! [`Version`].

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Engine, bail};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::cache::CompileCache;
use super::digest;
use super::host_state::HostState;
use super::imports::{HANDLER_EXPORT, Report};
use super::pool::Shape;
use super::version::Version;

/// A component file, read and identified but not compiled yet.
pub(crate) struct Candidate {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Hex sha256 of the file: how the log names versions.
    pub(crate) digest: String,
    /// What one instance takes from the pool.
    pub(crate) shape: Shape,
}

impl Candidate {
    /// Reads the component file at `path`. A file that is not WebAssembly at all is refused
    /// here; whether it is a component is for [`Candidate::compile`] to say.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).map_err(|error| {
            anyhow::anyhow!("cannot read component {}: {error}", path.display())
        })?;
        let shape = Shape::of(&bytes).map_err(|error| {
            anyhow::anyhow!("{} is not a WebAssembly file: {error}", path.display())
        })?;
        Ok(Self {
            digest: digest::sha256(&bytes),
            path: path.to_owned(),
            bytes,
            shape,
        })
    }

    /// Compiles the component, telling a core module apart from a component.
    pub(crate) fn compile(&self, engine: &Engine) -> wasmtime::Result<Component> {
        self.ensure_component()?;
        Component::new(engine, &self.bytes)
            .with_context(|| format!("cannot compile component {}", self.path.display()))
    }

    /// Compiles the component for `compiler`'s target, into the bytes
    /// [`Component::deserialize`] loads there.
    pub(crate) fn precompile(&self, compiler: &Engine) -> wasmtime::Result<Vec<u8>> {
        self.ensure_component()?;
        compiler
            .precompile_component(&self.bytes)
            .with_context(|| format!("cannot compile component {}", self.path.display()))
    }

    /// Refuses a core module or a file that is not WebAssembly, with what to do about it.
    fn ensure_component(&self) -> wasmtime::Result<()> {
        let path = self.path.display();
        match wasm_kind(&self.bytes) {
            WasmKind::Component => Ok(()),
            WasmKind::CoreModule => bail!(
                "{path} is a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
            ),
            WasmKind::NotWasm => bail!("{path} is not a WebAssembly file"),
        }
    }

    /// Checks that the host can serve `component` (this candidate, compiled) and links it.
    /// Every failure is one sentence that names the file and the problem.
    pub(crate) fn link(
        &self,
        linker: &Linker<HostState>,
        component: &Component,
    ) -> wasmtime::Result<ProxyPre<HostState>> {
        let path = self.path.display();
        let report = Report::of(linker.engine(), component);
        if let Some(sentence) = report.missing_sentence() {
            bail!("{path}: {sentence}");
        }
        if !report.serves_http() {
            bail!(
                "{path}: component does not export {HANDLER_EXPORT}@0.2.x, so it cannot serve HTTP"
            );
        }
        let instance_pre = linker
            .instantiate_pre(component)
            .with_context(|| format!("{path}: cannot link the component"))?;
        ProxyPre::new(instance_pre)
            .with_context(|| format!("{path}: not a wasi:http/proxy component"))
    }

    /// Compiles (or finds in `cache`), checks and links the candidate with the linker's
    /// engine.
    pub(crate) fn load(
        self,
        linker: &Linker<HostState>,
        cache: &CompileCache,
    ) -> wasmtime::Result<Version> {
        let engine = linker.engine();
        let (component, source) = cache.load(engine, &self.digest, || self.compile(engine))?;
        let pre = self.link(linker, &component)?;
        Ok(Version::new(pre, self.digest, self.shape, source))
    }
}

/// What a file's 8-byte preamble says it is.
#[derive(Debug, PartialEq, Eq)]
enum WasmKind {
    Component,
    CoreModule,
    NotWasm,
}

fn wasm_kind(bytes: &[u8]) -> WasmKind {
    // Magic `\0asm`, then a version field whose last two bytes are the layer: 0 for a core
    // module, 1 for a component.
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => WasmKind::CoreModule,
        _ => WasmKind::NotWasm,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::serving::cache::Source;
    use crate::serving::cache::precompiled;
    use crate::serving::pool::Capacity;
    use crate::serving::runtime::{compiler, engine};

    /// The empty component (wasmtime here parses binaries only, not text).
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_precompiled_artifact_loads_on_an_engine_that_found_its_cpu() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("empty.wasm");
        std::fs::write(&file, COMPONENT)?;
        let candidate = Candidate::read(&file)?;
        let target = format!("{}-unknown-linux", std::env::consts::ARCH);
        let compiler = compiler(&target)?;
        let precompiled = dir.path().join("precompiled");
        let artifact = precompiled::write(
            &precompiled,
            std::env::consts::ARCH,
            &candidate.digest,
            &candidate.precompile(&compiler)?,
        )?;

        // The serving engine infers this CPU's features, so its own key differs, and the
        // cache (off here) could not have found the artifact.
        let engine = engine(Capacity::new(1, candidate.shape))?;
        let cache =
            CompileCache::open(None, u64::MAX, Some(&precompiled), &engine, Arc::default())?;
        let compile = || candidate.compile(&engine);
        let (_, source) = cache.load(&engine, &candidate.digest, compile)?;
        assert_eq!(source, Source::Precompiled);

        let mut entry = std::fs::read(&artifact)?;
        // The artifact's last byte: its sha256 in the header no longer matches.
        if let Some(byte) = entry.last_mut() {
            *byte ^= 1;
        }
        std::fs::write(&artifact, &entry)?;
        let (_, source) = cache.load(&engine, &candidate.digest, compile)?;
        assert_eq!(source, Source::Compiled, "a corrupt artifact is compiled");

        std::fs::set_permissions(&precompiled, std::fs::Permissions::from_mode(0o777))?;
        let error = CompileCache::open(None, u64::MAX, Some(&precompiled), &engine, Arc::default())
            .err()
            .ok_or_else(|| anyhow::anyhow!("a directory others can write is refused"))?;
        assert!(
            format!("{error:#}").contains("written by other users"),
            "{error:#}"
        );
        Ok(())
    }

    #[test]
    fn the_preamble_tells_components_from_modules() {
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0rest"), WasmKind::Component);
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0rest"), WasmKind::CoreModule);
        assert_eq!(wasm_kind(b"garbage!"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b"\0asm"), WasmKind::NotWasm);
    }
}
