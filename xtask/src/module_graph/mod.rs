//! The module graph check, which `cargo xtask lint` runs between formatting and clippy: the
//! shape of the tree that issue 20 asked for, kept true.
//!
//! For every crate in every workspace member's `src/`, [`crate_tree`] reads the modules
//! from the crate root as rustc finds them, with the imports each one's code names
//! (`crate::`, `super::`, `self::` and child-module paths; [`token`] drops comments and
//! literals first). A node of the graph is a file, or a test-only inline module such as
//! `mod tests { ... }`; an edge is an import from one node into another. Then:
//!
//! - no crate has a circle: nodes that import from each other, directly or through others
//!   ([`circle`]);
//! - in [`DOWNWARD_ONLY`]'s packages, no module imports from an ancestor's own file (an item
//!   of `lib.rs`, `main.rs` or a `mod.rs` above it). Test-only modules are exempt: a module's
//!   tests are there to use their parent;
//! - in [`SIZE_LIMITED`]'s package, at most [`MAX_TOP_FILES`] source files sit at the top of
//!   `src/`, and none has more than [`MAX_FILE_LINES`] lines.
//!
//! Each problem is one line naming the file and the import, or the circle's members and
//! the imports of a shortest cycle through them. The rules and their limits are all in this file; the modules
//! below it are the mechanics, and know nothing of them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::root::workspace_root;
use crate::workspace::{Member, Workspace};
use crate_tree::{CrateTree, Import};

mod circle;
mod crate_tree;
#[cfg(test)]
mod tests;
mod token;

/// The packages whose modules may import from children, siblings and their descendants,
/// but not from an ancestor's own file. An item that modules below need belongs in a module
/// of its own, which they import; so `lib.rs`, `main.rs` and each `mod.rs` only declare and
/// wire the modules below them, and the tree reads top-down.
const DOWNWARD_ONLY: [&str; 2] = ["task-host", "xtask"];

/// The package held to the size limits: the host, whose tree is what issue 20 restructured.
const SIZE_LIMITED: &str = "task-host";

/// At most this many source files directly in [`SIZE_LIMITED`]'s `src/`. Beyond about a
/// dozen, the top of the tree stops showing the architecture, and the files belong in
/// directories named for the parts they make up (`http/`, `serving/`, `kv/`, `ops/`).
const MAX_TOP_FILES: usize = 12;

/// No source file of [`SIZE_LIMITED`] may have more lines than this, its unit tests
/// included: a longer file holds more than one responsibility, or tests that want a file of
/// their own.
const MAX_FILE_LINES: usize = 600;

/// Checks every member of `workspace`, prints each problem on a line of its own, and fails
/// if there is any.
pub(crate) fn check(workspace: &Workspace) -> anyhow::Result<()> {
    eprintln!("==> module graph");
    let root = workspace_root();
    let mut problems = Vec::new();
    for member in &workspace.members {
        problems.extend(member_problems(member, &root)?);
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    match problems.len() {
        0 => Ok(()),
        1 => bail!("the module graph has a problem"),
        count => bail!("the module graph has {count} problems"),
    }
}

/// Something the check found, as it is reported.
#[derive(Debug)]
enum Problem {
    /// A module that imports from an ancestor's own file.
    ImportUp {
        file: PathBuf,
        line: u32,
        import: String,
        ancestor: PathBuf,
    },
    /// Nodes that import from each other: their names, and the imports of a shortest
    /// cycle among them, each as `file:line path`.
    Circle {
        members: Vec<String>,
        cycle: Vec<String>,
    },
    /// Too many source files at the top of a `src/`.
    TopFiles { src: PathBuf, count: usize },
    /// A source file over [`MAX_FILE_LINES`].
    LongFile { file: PathBuf, lines: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImportUp {
                file,
                line,
                import,
                ancestor,
            } => write!(
                f,
                "{}:{line}: `{import}` imports from {}, an ancestor's own file",
                file.display(),
                ancestor.display()
            ),
            Self::Circle { members, cycle } => write!(
                f,
                "circle of {}: {}",
                members.join(", "),
                cycle.join(" -> ")
            ),
            Self::TopFiles { src, count } => write!(
                f,
                "{}: {count} source files at the top, over {MAX_TOP_FILES}",
                src.display()
            ),
            Self::LongFile { file, lines } => write!(
                f,
                "{}: {lines} lines, over {MAX_FILE_LINES}",
                file.display()
            ),
        }
    }
}

/// The problems of one workspace member, with paths relative to `root`.
fn member_problems(member: &Member, root: &Path) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for crate_root in &member.roots {
        let tree = CrateTree::read(crate_root)?;
        let graph = Graph {
            edges: tree.edges(),
            tree: &tree,
            root,
        };
        problems.extend(graph.circles());
        if DOWNWARD_ONLY.contains(&member.name.as_str()) {
            problems.extend(graph.imports_up());
        }
    }
    if member.name == SIZE_LIMITED {
        problems.extend(size_problems(&member.src, root)?);
    }
    Ok(problems)
}

/// One crate's import graph, with the names its problems are reported by.
struct Graph<'t> {
    tree: &'t CrateTree,
    edges: BTreeMap<(usize, usize), &'t Import>,
    /// What file names are relative to.
    root: &'t Path,
}

impl Graph<'_> {
    /// Each circle: its members, and the imports of a shortest cycle among them.
    fn circles(&self) -> Vec<Problem> {
        circle::circles(self.edges.keys().copied())
            .into_iter()
            .map(|circle| {
                let next = circle.cycle.iter().cycle().skip(1);
                Problem::Circle {
                    cycle: circle
                        .cycle
                        .iter()
                        .zip(next)
                        .filter_map(|(&from, &to)| {
                            let import = self.edges.get(&(from, to))?;
                            let file = self.file(from);
                            Some(format!(
                                "{}:{} {}",
                                file.display(),
                                import.line,
                                import.written
                            ))
                        })
                        .collect(),
                    members: circle.members.iter().map(|&node| self.name(node)).collect(),
                }
            })
            .collect()
    }

    /// The imports from an ancestor's file, in source order.
    fn imports_up(&self) -> Vec<Problem> {
        let mut up: Vec<_> = self
            .edges
            .iter()
            .filter(|&(&(from, to), _)| {
                !self.tree.modules[from].test_only && self.tree.contains(to, from)
            })
            .collect();
        up.sort_by_key(|&(&(from, _), import)| (from, import.line));
        up.into_iter()
            .map(|(&(from, to), import)| Problem::ImportUp {
                file: self.file(from),
                line: import.line,
                import: import.written.clone(),
                ancestor: self.file(to),
            })
            .collect()
    }

    /// The file of `module`, relative to the workspace root.
    fn file(&self, module: usize) -> PathBuf {
        relative(&self.tree.modules[module].file, self.root)
    }

    /// A node's name: its file, and for an inline module also the module.
    fn name(&self, node: usize) -> String {
        let module = &self.tree.modules[node];
        let file = self.file(node);
        match module.path.last() {
            Some(name) if module.inline => format!("{} (mod {name})", file.display()),
            _ => file.display().to_string(),
        }
    }
}

/// Too many files at the top of `src`, and each file under it that is too long.
fn size_problems(src: &Path, root: &Path) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let top = rust_files(src)?;
    if top.len() > MAX_TOP_FILES {
        problems.push(Problem::TopFiles {
            src: relative(src, root),
            count: top.len(),
        });
    }
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let (found, below) = entries(&dir)?;
        files.extend(found);
        dirs.extend(below);
    }
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(Problem::LongFile {
                file: relative(&file, root),
                lines,
            });
        }
    }
    Ok(problems)
}

/// The `.rs` files directly in `dir`.
fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    entries(dir).map(|(files, _)| files)
}

/// The `.rs` files and the directories directly in `dir`.
fn entries(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let listing = || -> std::io::Result<_> {
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
        Ok((files, dirs))
    };
    listing().with_context(|| format!("listing {}", dir.display()))
}

/// `path` relative to `root`, or whole if it is elsewhere.
fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
