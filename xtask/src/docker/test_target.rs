//! The test target: a failing test must fail `docker build --target test`, and the log must
//! say which test it was.

use std::path::Path;

use anyhow::ensure;

use super::harness::{build_command, copy_tree};

/// Adds a broken test to a copy of the workspace and builds its test target.
pub(super) fn check_failing_test(work: &Path) -> anyhow::Result<()> {
    let tree = copy_tree(&work.join("failing-tree"))?;
    let tests = tree.join("core/src/api/tests.rs");
    let source = std::fs::read_to_string(&tests)?;
    std::fs::write(
        &tests,
        format!(
            "{source}\n#[test]\nfn a_deliberately_broken_test() {{\n    assert_eq!(1 + 1, 3);\n}}\n"
        ),
    )?;
    let output = build_command(&tree, &["--target", "test"]).output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success(),
        "docker build --target test passed with a failing test"
    );
    ensure!(
        log.contains("a_deliberately_broken_test"),
        "the build failed, but not on the broken test:\n{log}"
    );
    Ok(())
}
