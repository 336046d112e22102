//! The test components: the directory the build step leaves them in, and their file names.

use std::path::{Path, PathBuf};

/// The environment variable naming the directory that holds the test components;
/// `cargo xtask test` builds them and sets it for `cargo test`.
pub const COMPONENTS_ENV: &str = "TASK_API_COMPONENTS";

/// The wasm components the integration tests serve, all in one directory.
#[derive(Debug, Clone)]
pub struct Components {
    /// `task_api.wasm`: the API.
    pub task_api: PathBuf,
    /// `hello_component.wasm`: another wasi:http component, a second version to swap in.
    pub hello: PathBuf,
    /// `faulty_component.wasm`: traps, loops, allocates without bound or sleeps on request.
    pub faulty: PathBuf,
    /// `unprovided_import.wasm`: imports an interface no host provides.
    pub unprovided: PathBuf,
    /// `task_api_standalone.wasm`: task_api.wasm plugged with the kv-fs adapter, for stock
    /// `wasmtime serve`.
    pub standalone: PathBuf,
}

impl Components {
    /// The components in the directory [`COMPONENTS_ENV`] names, or one line saying why
    /// there are none and how to build them.
    pub fn from_env() -> Result<Self, String> {
        let Some(dir) = std::env::var_os(COMPONENTS_ENV) else {
            return Err(format!(
                "{COMPONENTS_ENV} is not set: run `cargo xtask test`, which builds the wasm \
                 components these tests serve and sets it"
            ));
        };
        let components = Self::in_dir(Path::new(&dir));
        let missing = [
            &components.task_api,
            &components.hello,
            &components.faulty,
            &components.unprovided,
            &components.standalone,
        ]
        .into_iter()
        .find(|file| !file.is_file())
        .map(|file| file.file_name().unwrap_or_default().display().to_string());
        match missing {
            Some(file) => Err(format!(
                "{COMPONENTS_ENV} names {}, which has no {file}: run `cargo xtask test`",
                Path::new(&dir).display()
            )),
            None => Ok(components),
        }
    }

    fn in_dir(dir: &Path) -> Self {
        Self {
            task_api: dir.join("task_api.wasm"),
            hello: dir.join("hello_component.wasm"),
            faulty: dir.join("faulty_component.wasm"),
            unprovided: dir.join("unprovided_import.wasm"),
            standalone: dir.join("task_api_standalone.wasm"),
        }
    }
}
