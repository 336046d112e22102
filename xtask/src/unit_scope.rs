//! The unit scope: the workspace packages whose lints and tests need nothing built first,
//! which `cargo xtask test --unit` and the Docker `test` stage check. It is every package
//! but those that
//!
//! - depend on wasmtime, directly or through any other crate: compiling the engine is most of
//!   a cold build, and what links it is tested by compiling and serving components; or
//! - dev-depend on [`SERVER_KIT`], test-support: their tests start real servers (task-host,
//!   stock `wasmtime serve`, redis-server) and serve the components that `cargo xtask test`
//!   builds first and names in [`test_support::COMPONENTS_ENV`].
//!
//! What is left is the API's logic, its models and validation, the limits, the kv-fs adapter,
//! the other components, test-support's own tests and xtask. The scope is read from cargo's
//! resolve graph for the host platform, so a new crate joins it, or stays out, with no edit
//! here or in the Dockerfile.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use serde::Deserialize;

use crate::cargo;

/// The engine: a package that depends on it, however indirectly, is out of the scope.
const ENGINE: &str = "wasmtime";
/// The crate that tests use to start servers and find the built components: a package that
/// dev-depends on it is out of the scope.
const SERVER_KIT: &str = "test-support";

/// The unit scope as cargo's package arguments, `-p NAME` for each package, sorted by name.
pub(crate) fn cargo_args() -> anyhow::Result<Vec<String>> {
    let host = host_triple()?;
    let metadata = cargo::stdout(&[
        "metadata",
        "--format-version",
        "1",
        "--filter-platform",
        &host,
    ])?;
    Ok(packages(&metadata)?
        .into_iter()
        .flat_map(|package| ["-p".to_owned(), package])
        .collect())
}

/// The platform cargo builds for when given no `--target`, from `cargo -vV`'s `host:` line.
fn host_triple() -> anyhow::Result<String> {
    let version = String::from_utf8(cargo::stdout(&["-vV"])?).context("reading cargo -vV")?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("cargo -vV names no host")
}

/// The names of the scope's packages in `cargo metadata --format-version 1` output, sorted.
fn packages(json: &[u8]) -> anyhow::Result<Vec<String>> {
    let metadata: Metadata =
        serde_json::from_slice(json).context("reading cargo metadata's output")?;
    let resolve = metadata
        .resolve
        .context("cargo metadata gave no resolve graph")?;
    let name: HashMap<&str, &str> = metadata
        .packages
        .iter()
        .map(|package| (package.id.as_str(), package.name.as_str()))
        .collect();
    let name_of = |id: &str| name.get(id).copied().unwrap_or_default();

    // Everything that reaches the engine: walk the graph backwards from it.
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in &resolve.nodes {
        for dep in &node.deps {
            dependents
                .entry(dep.pkg.as_str())
                .or_default()
                .push(node.id.as_str());
        }
    }
    let mut needs_engine: HashSet<&str> = HashSet::new();
    let mut unvisited: Vec<&str> = resolve
        .nodes
        .iter()
        .map(|node| node.id.as_str())
        .filter(|id| name_of(id) == ENGINE)
        .collect();
    while let Some(id) = unvisited.pop() {
        if needs_engine.insert(id) {
            unvisited.extend(dependents.get(id).into_iter().flatten());
        }
    }

    let starts_servers: HashSet<&str> = resolve
        .nodes
        .iter()
        .filter(|node| {
            node.deps.iter().any(|dep| {
                name_of(&dep.pkg) == SERVER_KIT
                    && dep
                        .dep_kinds
                        .iter()
                        .any(|kind| kind.kind.as_deref() == Some("dev"))
            })
        })
        .map(|node| node.id.as_str())
        .collect();

    let mut scope: Vec<String> = metadata
        .workspace_members
        .iter()
        .filter(|id| !needs_engine.contains(id.as_str()) && !starts_servers.contains(id.as_str()))
        .map(|id| name_of(id).to_owned())
        .collect();
    scope.sort();
    Ok(scope)
}

/// The parts of `cargo metadata --format-version 1` read here.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    /// `null` with `--no-deps`.
    resolve: Option<Resolve>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

/// A package and what it depends on, features resolved.
#[derive(Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    /// `null` for a normal dependency, else `"dev"` or `"build"`.
    kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::packages;

    /// `host` reaches wasmtime through `glue`, `api` dev-depends on test-support like the
    /// host's integration tests would, and `tool` depends on test-support as xtask does.
    const METADATA: &str = r#"{
        "packages": [
            {"id": "host", "name": "host"},
            {"id": "glue", "name": "glue"},
            {"id": "wasmtime", "name": "wasmtime"},
            {"id": "api", "name": "api"},
            {"id": "logic", "name": "logic"},
            {"id": "serde", "name": "serde"},
            {"id": "test-support", "name": "test-support"},
            {"id": "tool", "name": "tool"}
        ],
        "workspace_members": ["host", "api", "logic", "test-support", "tool"],
        "resolve": {"nodes": [
            {"id": "host", "deps": [
                {"pkg": "glue", "dep_kinds": [{"kind": null}]},
                {"pkg": "logic", "dep_kinds": [{"kind": null}]}
            ]},
            {"id": "glue", "deps": [{"pkg": "wasmtime", "dep_kinds": [{"kind": null}]}]},
            {"id": "wasmtime", "deps": []},
            {"id": "api", "deps": [
                {"pkg": "logic", "dep_kinds": [{"kind": null}]},
                {"pkg": "test-support", "dep_kinds": [{"kind": "dev"}]}
            ]},
            {"id": "logic", "deps": [{"pkg": "serde", "dep_kinds": [{"kind": null}]}]},
            {"id": "serde", "deps": []},
            {"id": "test-support", "deps": []},
            {"id": "tool", "deps": [{"pkg": "test-support", "dep_kinds": [{"kind": null}]}]}
        ]}
    }"#;

    #[test]
    fn the_scope_leaves_out_the_engine_s_users_and_the_tests_that_start_servers() {
        let scope = packages(METADATA.as_bytes()).expect("valid metadata");
        assert_eq!(scope, ["logic", "test-support", "tool"]);
    }

    #[test]
    fn the_workspace_s_scope_has_the_api_and_xtask_but_not_the_host() {
        let args = super::cargo_args().expect("cargo metadata reads the workspace");
        let scope: Vec<&str> = args.iter().skip(1).step_by(2).map(String::as_str).collect();
        // The Docker check that a failing test fails the test target breaks a test of
        // task-api-core.
        for package in ["task-api-core", "task-api", "kv-fs", "xtask"] {
            assert!(scope.contains(&package), "{package} is not in {scope:?}");
        }
        assert!(!scope.contains(&"task-host"), "{scope:?}");
    }
}
