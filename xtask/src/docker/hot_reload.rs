//! The development image: serving a copy of the workspace mounted at /src, it must rebuild the
//! component after an edit and serve the new version without a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use super::harness::{Container, copy_tree, curl, wait_until};

/// The development container must serve an edit within this.
const HOT_RELOAD_WITHIN: Duration = Duration::from_secs(180);

/// Edits the API's version in a mounted tree and waits for the image `tag` to serve it.
pub(super) fn check(tag: &str, work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("dev-tree"))?;
    let mount = format!("{}:/src", tree.display());
    let container = Container::run(&["-v", &mount, tag])?;
    let base = container.url()?;
    wait_until(Duration::from_secs(300), || {
        Ok(curl("GET", &format!("{base}/"), None).is_ok_and(|(_, body)| body.contains("1.0.0")))
    })?;
    let openapi = tree.join("core/src/openapi.rs");
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
