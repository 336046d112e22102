//! The Kubernetes manifests in `deploy/k8s`, validated offline against the schemas of one
//! Kubernetes version, which kubernetes-validate ships.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::root::workspace_root;
use crate::tool;

/// The Kubernetes version the manifests in `deploy/k8s` are validated against.
pub(crate) const VERSION: &str = "1.35.0";

/// Validates every manifest in `deploy/k8s` against [`VERSION`]'s schemas: strict, so that a
/// misspelt field fails instead of being dropped.
pub(crate) fn validate_manifests() -> anyhow::Result<()> {
    tool::require("kubernetes-validate", "pip install kubernetes-validate")?;
    let dir = workspace_root().join("deploy/k8s");
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            manifests.push(path);
        }
    }
    manifests.sort();
    eprintln!("==> kubernetes-validate --strict deploy/k8s (Kubernetes {VERSION})");
    let status = Command::new("kubernetes-validate")
        .args(["--strict", "-k", VERSION])
        .args(&manifests)
        .status()?;
    if manifests.is_empty() || !status.success() {
        bail!("the manifests in deploy/k8s are not valid for Kubernetes {VERSION}");
    }
    Ok(())
}
