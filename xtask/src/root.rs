//! The workspace's root directory: where xtask runs cargo and the other tools, and what every
//! path it reads or writes is relative to, wherever `cargo xtask` was started.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of xtask's own manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
