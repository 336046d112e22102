//! What `cargo metadata` says about the workspace: where cargo writes its output, the
//! wasm components listed in `[workspace.metadata.task-api]` of the root `Cargo.toml`, each
//! with the file its cdylib target builds, and every member's sources. That table is the only
//! list of components; the file names come from the packages' own manifests, and the
//! workspace libraries compiled into them from their dependencies.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Deserialize;

use crate::cargo;

/// The parts of the workspace xtask builds from.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// cargo's target directory, which `CARGO_TARGET_DIR` or `.cargo/config.toml` may move.
    pub(crate) target_dir: PathBuf,
    /// The components that ship.
    pub(crate) components: Vec<Component>,
    /// The components only tests serve.
    pub(crate) test_components: Vec<Component>,
    /// The workspace packages a component depends on (task-api-core, the limits): they are
    /// compiled for wasm32-wasip2 too, so they are linted there.
    pub(crate) wasm_libraries: Vec<String>,
    /// Every workspace package's sources.
    pub(crate) members: Vec<Member>,
}

/// A workspace package's `src/` and the crates in it.
#[derive(Debug, PartialEq)]
pub(crate) struct Member {
    /// The package name.
    pub(crate) name: String,
    /// Its `src/` directory.
    pub(crate) src: PathBuf,
    /// The root file of each crate in `src/` (`lib.rs`, `main.rs`, `bin/*.rs`), sorted; its
    /// tests, benches and examples live elsewhere.
    pub(crate) roots: Vec<PathBuf>,
}

/// A wasm32-wasip2 component package.
#[derive(Debug, PartialEq)]
pub(crate) struct Component {
    /// The package name, as `cargo -p` takes it.
    pub(crate) package: String,
    /// The file cargo writes for it, `<cdylib name>.wasm`.
    pub(crate) file: String,
}

impl Workspace {
    /// Reads the workspace with `cargo metadata --no-deps`, which needs no network.
    pub(crate) fn load() -> anyhow::Result<Self> {
        Self::from_metadata(&cargo::stdout(&[
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
        ])?)
    }

    /// Parses `cargo metadata --format-version 1` output.
    fn from_metadata(json: &[u8]) -> anyhow::Result<Self> {
        let metadata: Metadata =
            serde_json::from_slice(json).context("reading cargo metadata's output")?;
        let lists = metadata
            .metadata
            .and_then(|metadata| metadata.task_api)
            .context("the root Cargo.toml has no [workspace.metadata.task-api] table")?;
        let resolve = |names: &[String]| -> anyhow::Result<Vec<Component>> {
            names
                .iter()
                .map(|name| component(&metadata.packages, name))
                .collect()
        };
        let components = resolve(&lists.components)?;
        let test_components = resolve(&lists.test_components)?;
        let wasm_libraries = libraries_of(
            &metadata.packages,
            components.iter().chain(&test_components),
        );
        let members = metadata.packages.iter().map(member).collect();
        Ok(Self {
            target_dir: metadata.target_directory,
            components,
            test_components,
            wasm_libraries,
            members,
        })
    }
}

/// The directory a cargo profile writes to: `dev` and `test` share `debug`, `bench` uses
/// `release`, and every other profile has its own name.
pub(crate) fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// The package `name` and its cdylib's file.
fn component(packages: &[Package], name: &str) -> anyhow::Result<Component> {
    let package = packages
        .iter()
        .find(|package| package.name == name)
        .with_context(|| {
            format!("[workspace.metadata.task-api] lists {name}, which is no workspace package")
        })?;
    let target = package
        .targets
        .iter()
        .find(|target| target.kind.iter().any(|kind| kind == "cdylib"))
        .with_context(|| format!("{name} has no cdylib target, so it builds no component"))?;
    Ok(Component {
        package: name.to_owned(),
        file: format!("{}.wasm", target.name),
    })
}

/// `package`'s `src/` and the crate roots in it.
fn member(package: &Package) -> Member {
    let src = package
        .manifest_path
        .parent()
        .map_or_else(|| PathBuf::from("src"), |dir| dir.join("src"));
    let mut roots: Vec<PathBuf> = package
        .targets
        .iter()
        .filter(|target| target.src_path.starts_with(&src))
        .map(|target| target.src_path.clone())
        .collect();
    roots.sort();
    roots.dedup();
    Member {
        name: package.name.clone(),
        src,
        roots,
    }
}

/// The workspace packages that `components` depend on, directly or through each other, as
/// normal (not dev or build) dependencies, sorted.
fn libraries_of<'a>(
    packages: &[Package],
    components: impl Iterator<Item = &'a Component>,
) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut todo: Vec<&str> = components
        .map(|component| component.package.as_str())
        .collect();
    while let Some(name) = todo.pop() {
        let Some(package) = packages.iter().find(|package| package.name == name) else {
            continue;
        };
        for dependency in &package.dependencies {
            let local = dependency.path.is_some() && dependency.kind.is_none();
            if local && found.insert(dependency.name.clone()) {
                todo.push(&dependency.name);
            }
        }
    }
    found.into_iter().collect()
}

/// The parts of `cargo metadata --format-version 1` read here.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
    /// `[workspace.metadata]`, `null` when the table is absent.
    metadata: Option<WorkspaceMetadata>,
}

#[derive(Deserialize)]
struct WorkspaceMetadata {
    #[serde(rename = "task-api")]
    task_api: Option<ComponentLists>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ComponentLists {
    components: Vec<String>,
    test_components: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

/// A dependency as `cargo metadata --no-deps` lists it.
#[derive(Deserialize)]
struct Dependency {
    name: String,
    /// Set for a path dependency: a workspace package here.
    path: Option<PathBuf>,
    /// `dev` or `build`; `null` for a normal dependency.
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
    src_path: PathBuf,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Component, Member, Workspace};

    const METADATA: &str = r#"{
        "packages": [
            {"name": "task-api", "manifest_path": "/w/component/Cargo.toml", "targets": [
                {"name": "task_api", "kind": ["cdylib"], "src_path": "/w/component/src/lib.rs"}
            ]},
            {"name": "task-host", "manifest_path": "/w/host/Cargo.toml", "targets": [
                {"name": "task_host", "kind": ["lib"], "src_path": "/w/host/src/lib.rs"},
                {"name": "task-host", "kind": ["bin"], "src_path": "/w/host/src/main.rs"},
                {"name": "integration", "kind": ["test"], "src_path": "/w/host/tests/integration/main.rs"}
            ]},
            {"name": "faulty-component", "manifest_path": "/w/faulty/Cargo.toml", "targets": [
                {"name": "faulty_component", "kind": ["cdylib"], "src_path": "/w/faulty/src/lib.rs"}
            ]}
        ],
        "target_directory": "/tmp/target",
        "metadata": {"task-api": {"components": ["task-api"], "test-components": ["faulty-component"]}}
    }"#;

    #[test]
    fn components_are_named_by_the_table_and_filed_by_their_cdylib() {
        let workspace = Workspace::from_metadata(METADATA.as_bytes()).expect("valid metadata");
        assert_eq!(
            workspace.components,
            [Component {
                package: "task-api".into(),
                file: "task_api.wasm".into()
            }]
        );
        assert_eq!(workspace.test_components[0].file, "faulty_component.wasm");
        assert_eq!(workspace.target_dir, std::path::Path::new("/tmp/target"));
    }

    #[test]
    fn a_member_s_crates_are_its_targets_in_src() {
        let workspace = Workspace::from_metadata(METADATA.as_bytes()).expect("valid metadata");
        assert_eq!(
            workspace.members[1],
            Member {
                name: "task-host".into(),
                src: PathBuf::from("/w/host/src"),
                roots: vec!["/w/host/src/lib.rs".into(), "/w/host/src/main.rs".into()],
            }
        );
    }

    #[test]
    fn the_wasm_libraries_are_the_components_workspace_dependencies() {
        let metadata = r#"{
            "packages": [
                {"name": "task-api", "manifest_path": "/w/component/Cargo.toml", "targets": [
                    {"name": "task_api", "kind": ["cdylib"], "src_path": "/w/component/src/lib.rs"}
                 ],
                 "dependencies": [
                    {"name": "core", "path": "/w/core", "kind": null},
                    {"name": "serde", "path": null, "kind": null},
                    {"name": "fixtures", "path": "/w/fixtures", "kind": "dev"}
                 ]},
                {"name": "core", "manifest_path": "/w/core/Cargo.toml", "targets": [
                    {"name": "core", "kind": ["lib"], "src_path": "/w/core/src/lib.rs"}
                 ],
                 "dependencies": [{"name": "limits", "path": "/w/limits", "kind": null}]},
                {"name": "limits", "manifest_path": "/w/limits/Cargo.toml", "targets": [
                    {"name": "limits", "kind": ["lib"], "src_path": "/w/limits/src/lib.rs"}
                 ]}
            ],
            "target_directory": "/tmp/target",
            "metadata": {"task-api": {"components": ["task-api"], "test-components": []}}
        }"#;
        let workspace = Workspace::from_metadata(metadata.as_bytes()).expect("valid metadata");
        assert_eq!(workspace.wasm_libraries, ["core", "limits"]);
    }

    #[test]
    fn a_listed_package_without_a_cdylib_is_an_error() {
        let metadata = METADATA.replace(
            r#""components": ["task-api"]"#,
            r#""components": ["task-host"]"#,
        );
        let error =
            Workspace::from_metadata(metadata.as_bytes()).expect_err("task-host is no component");
        assert!(
            error.to_string().contains("task-host has no cdylib target"),
            "{error:#}"
        );
    }

    #[test]
    fn the_workspace_ships_what_task_api_standalone_is_composed_from() {
        let workspace = Workspace::load().expect("cargo metadata reads the workspace");
        let shipped: Vec<&str> = workspace
            .components
            .iter()
            .map(|component| component.file.as_str())
            .collect();
        for file in [crate::standalone::SOCKET, crate::standalone::PLUG] {
            assert!(
                shipped.contains(&file),
                "{file} is not shipped: {shipped:?}"
            );
        }
    }
}
