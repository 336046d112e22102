//! Swapping in another component without rebuilding the image: the example component mounted
//! over the default path, and one named by `TASK_HOST_COMPONENT`.

use std::path::Path;
use std::time::Duration;

use super::harness::{Container, curl, wait_until};

/// Serves `hello_component.wasm` from `components` (the exported `component` target) both
/// ways with the production image `tag`.
pub(super) fn check(tag: &str, components: &Path) -> anyhow::Result<()> {
    let hello = components.join("hello_component.wasm");
    let over = format!("{}:/app/task_api.wasm:ro", hello.display());
    let by_env = format!("{}:/components:ro", components.display());
    for args in [
        vec!["-v", over.as_str(), tag],
        vec![
            "-v",
            by_env.as_str(),
            "-e",
            "TASK_HOST_COMPONENT=/components/hello_component.wasm",
            tag,
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
