//! One crate's modules, read from its root file by following `mod` declarations the way
//! rustc finds their files, and the imports of each: every path its own code names that
//! starts with `crate::`, `super::`, `self::` or the name of one of its child modules, `use`
//! groups expanded (`a::{b, c::d}` is `a::b` and `a::c::d`). Each import is resolved to the
//! longest prefix of its path that is a module: `crate::a::Item` is module `a`, whichever
//! of `a`'s items `Item` is.
//!
//! Where a module is declared matters too: one declared under `#[cfg(test)]`, and every
//! module inside it, is test-only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::token::{Lexeme, Token, tokenize};

/// A crate's modules; the first is the crate root.
#[derive(Debug)]
pub(super) struct CrateTree {
    /// Every module, each after the module that declares it.
    pub(super) modules: Vec<Module>,
}

/// One module of a crate.
#[derive(Debug)]
pub(super) struct Module {
    /// Its names from the crate root: empty for the root, `["kv", "redb"]` for `kv::redb`.
    pub(super) path: Vec<String>,
    /// The file its code is in; an inline `mod name { ... }` shares its parent's.
    pub(super) file: PathBuf,
    /// Whether it is an inline `mod name { ... }` rather than a file of its own.
    pub(super) inline: bool,
    /// Whether it only exists under `cfg(test)`.
    pub(super) test_only: bool,
    /// What its own code imports, inline child modules' code not included.
    pub(super) imports: Vec<Import>,
    /// The module that declares it; `None` for the crate root.
    parent: Option<usize>,
    /// Where the files of the modules it declares are: `a/` for `a.rs` and `a/mod.rs`.
    children_dir: PathBuf,
}

/// A path into the crate, as one module's code names it.
#[derive(Debug)]
pub(super) struct Import {
    /// The line it is on.
    pub(super) line: u32,
    /// The path as written, a `use` group's share of it expanded: `super::Item`.
    pub(super) written: String,
    /// The index of the module it names.
    pub(super) target: usize,
}

/// A path found in a module's code, before the tree it may point into is complete.
struct Found {
    module: usize,
    line: u32,
    written: String,
    /// The path from the crate root, its `crate`, `self` and `super`s applied.
    absolute: Vec<String>,
    /// Whether it starts with a plain name, which is an import only if that names a child
    /// module; else it could be an extern crate, a type or an enum.
    plain: bool,
}

impl CrateTree {
    /// Reads the crate whose root file is `root` (`src/lib.rs`, `src/main.rs`, ...) and every
    /// module file it declares, directly or not.
    pub(super) fn read(root: &Path) -> anyhow::Result<Self> {
        let children_dir = root.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        let mut builder = Builder {
            modules: vec![Module {
                path: Vec::new(),
                file: root.to_path_buf(),
                inline: false,
                test_only: false,
                imports: Vec::new(),
                parent: None,
                children_dir,
            }],
            found: Vec::new(),
            unread: vec![0],
        };
        while let Some(module) = builder.unread.pop() {
            let file = &builder.modules[module].file;
            let source = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            builder.parse(module, &source)?;
        }
        Ok(builder.resolve())
    }

    /// The import graph: an edge from each module that owns code ([`Self::owner`]) to each
    /// such module it imports from, with the first import that makes it.
    pub(super) fn edges(&self) -> BTreeMap<(usize, usize), &Import> {
        let mut edges = BTreeMap::new();
        for (module, code) in self.modules.iter().enumerate() {
            let from = self.owner(module);
            for import in &code.imports {
                let to = self.owner(import.target);
                if from != to {
                    edges.entry((from, to)).or_insert(import);
                }
            }
        }
        edges
    }

    /// Whether module `ancestor` contains module `module`, however deep.
    pub(super) fn contains(&self, ancestor: usize, module: usize) -> bool {
        let (outer, inner) = (&self.modules[ancestor].path, &self.modules[module].path);
        outer.len() < inner.len() && inner.starts_with(outer)
    }

    /// The module a module's code lives in when imports are counted: its own file's module,
    /// or the test-only inline module (`mod tests { ... }`) it is part of.
    fn owner(&self, module: usize) -> usize {
        let mut at = module;
        loop {
            let this = &self.modules[at];
            let test_root = this.test_only
                && this
                    .parent
                    .is_none_or(|parent| !self.modules[parent].test_only);
            match this.parent {
                Some(parent) if this.inline && !test_root => at = parent,
                _ => return at,
            }
        }
    }
}

/// A crate tree while its files are being read.
struct Builder {
    modules: Vec<Module>,
    found: Vec<Found>,
    /// Modules with files of their own that are not read yet.
    unread: Vec<usize>,
}

impl Builder {
    /// Collects the child modules and the paths of `module`'s file, which is `source`.
    fn parse(&mut self, module: usize, source: &str) -> anyhow::Result<()> {
        let tokens = tokenize(source);
        let file = self.modules[module].file.clone();
        // The module each open brace belongs to: `Some` for a module's own, `None` for any
        // other (a function's, an impl's, ...).
        let mut braces: Vec<Option<usize>> = Vec::new();
        let mut under_cfg_test = false;
        let mut at = 0;
        while let Some(lexeme) = tokens.get(at) {
            let here = braces
                .iter()
                .rev()
                .find_map(|&brace| brace)
                .unwrap_or(module);
            at += 1;
            match lexeme.token {
                Token::Punct('#') => match attribute(&tokens[at..]) {
                    Attribute::CfgTest { inner: false } => under_cfg_test = true,
                    Attribute::CfgTest { inner: true } => self.modules[here].test_only = true,
                    Attribute::Path => bail!(
                        "{}:{}: #[path] on a module is not supported: the module graph finds \
                         module files where rustc looks for them by default",
                        file.display(),
                        lexeme.line
                    ),
                    Attribute::Other => {}
                },
                Token::Punct('{') => {
                    braces.push(None);
                    under_cfg_test = false;
                }
                Token::Punct('}') => {
                    braces.pop();
                    under_cfg_test = false;
                }
                Token::Punct(';') => under_cfg_test = false,
                Token::Ident("mod") => {
                    let declared = match tokens.get(at..at + 2) {
                        Some([name, body]) => match (name.token, body.token) {
                            (Token::Ident(name), Token::Punct(end @ (';' | '{'))) => {
                                Some((name, end == '{'))
                            }
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some((name, inline)) = declared {
                        let child = self.declare(here, name, inline, under_cfg_test);
                        if inline {
                            braces.push(Some(child));
                        } else {
                            self.locate(child, &file, lexeme.line)?;
                        }
                        at += 2;
                    }
                    under_cfg_test = false;
                }
                Token::Ident("use") => {
                    let mut paths = Vec::new();
                    if token_at(&tokens, at) != Some(Token::PathSep) {
                        use_tree(&tokens, at, &[], &mut paths);
                    }
                    for (segments, line) in paths {
                        self.find(here, line, &segments);
                    }
                    // The rest of the statement, whatever `use_tree` made of it.
                    while token_at(&tokens, at).is_some_and(|next| next != Token::Punct(';')) {
                        at += 1;
                    }
                }
                Token::Ident(_) if starts_path(&tokens, at - 1) => {
                    let mut segments = Vec::new();
                    at -= 1;
                    while let Some(Token::Ident(segment)) = token_at(&tokens, at) {
                        segments.push(segment);
                        at += 1;
                        if token_at(&tokens, at) != Some(Token::PathSep) {
                            break;
                        }
                        at += 1;
                    }
                    self.find(here, lexeme.line, &segments);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds module `name`, declared in `parent`, and returns its index.
    fn declare(&mut self, parent: usize, name: &str, inline: bool, under_cfg_test: bool) -> usize {
        let outer = &self.modules[parent];
        let mut path = outer.path.clone();
        path.push(name.to_owned());
        let child = Module {
            path,
            file: outer.file.clone(),
            inline,
            test_only: outer.test_only || under_cfg_test,
            imports: Vec::new(),
            parent: Some(parent),
            children_dir: outer.children_dir.join(name),
        };
        self.modules.push(child);
        self.modules.len() - 1
    }

    /// Finds the file of module `child`, declared with `mod name;` on `line` of `file`, and
    /// queues it to be read: `name.rs` or `name/mod.rs` beside the declaring module's file.
    fn locate(&mut self, child: usize, file: &Path, line: u32) -> anyhow::Result<()> {
        let module = &self.modules[child];
        let name = module.path.last().map_or("", String::as_str);
        let flat = module.children_dir.with_extension("rs");
        let nested = module.children_dir.join("mod.rs");
        let found = match (flat.is_file(), nested.is_file()) {
            (true, false) => flat,
            (false, true) => nested,
            (true, true) => bail!(
                "{}:{line}: module `{name}` has two files, {} and {}",
                file.display(),
                flat.display(),
                nested.display()
            ),
            (false, false) => bail!(
                "{}:{line}: module `{name}` has no file: neither {} nor {}",
                file.display(),
                flat.display(),
                nested.display()
            ),
        };
        self.modules[child].file = found;
        self.unread.push(child);
        Ok(())
    }

    /// Records the path `segments`, named on `line` by `module`'s code, if it can be an
    /// import.
    fn find(&mut self, module: usize, line: u32, segments: &[&str]) {
        let Some((&first, _)) = segments.split_first() else {
            return;
        };
        let mut absolute = match first {
            "crate" => Vec::new(),
            _ => self.modules[module].path.clone(),
        };
        let mut rest = segments;
        while let Some((&head, tail)) = rest.split_first() {
            match head {
                "crate" | "self" => {}
                // A path above the crate root does not compile; rustc says so.
                "super" if absolute.pop().is_none() => return,
                "super" => {}
                _ => break,
            }
            rest = tail;
        }
        // A glob imports from the module it names.
        absolute.extend(
            rest.iter()
                .filter(|&&segment| segment != "*")
                .map(|&segment| segment.to_owned()),
        );
        self.found.push(Found {
            module,
            line,
            written: segments.join("::"),
            absolute,
            plain: !matches!(first, "crate" | "self" | "super"),
        });
    }

    /// The finished tree: every path found resolved to the module it names, and the plain
    /// ones that name no child module dropped.
    fn resolve(mut self) -> CrateTree {
        let index: HashMap<Vec<String>, usize> = self
            .modules
            .iter()
            .enumerate()
            .map(|(at, module)| (module.path.clone(), at))
            .collect();
        for found in self.found {
            if found.plain {
                let depth = self.modules[found.module].path.len() + 1;
                if !found
                    .absolute
                    .get(..depth)
                    .is_some_and(|child| index.contains_key(child))
                {
                    continue;
                }
            }
            let target = (0..=found.absolute.len())
                .rev()
                .find_map(|len| index.get(&found.absolute[..len]))
                .copied()
                // The crate root's empty path is every path's prefix.
                .unwrap_or(0);
            self.modules[found.module].imports.push(Import {
                line: found.line,
                written: found.written,
                target,
            });
        }
        CrateTree {
            modules: self.modules,
        }
    }
}

/// What an attribute, from the token after its `#`, says about the module graph.
#[derive(Debug, PartialEq)]
enum Attribute {
    /// `#[cfg(test)]`, or `#![cfg(test)]` for the module it is in.
    CfgTest { inner: bool },
    /// `#[path = "..."]`, which puts a module's file elsewhere.
    Path,
    /// Anything else.
    Other,
}

/// Reads the attribute whose `#` is just before `tokens`.
fn attribute(tokens: &[Lexeme<'_>]) -> Attribute {
    let mut tokens = tokens.iter().map(|lexeme| lexeme.token);
    let mut next = tokens.next();
    let inner = next == Some(Token::Punct('!'));
    if inner {
        next = tokens.next();
    }
    if next != Some(Token::Punct('[')) {
        return Attribute::Other;
    }
    let body: Vec<Token<'_>> = tokens.take(5).collect();
    match body.as_slice() {
        [
            Token::Ident("cfg"),
            Token::Punct('('),
            Token::Ident("test"),
            Token::Punct(')'),
            Token::Punct(']'),
        ] => Attribute::CfgTest { inner },
        [Token::Ident("path"), Token::Punct('='), ..] => Attribute::Path,
        _ => Attribute::Other,
    }
}

/// Whether the identifier at `at` starts a path: it is followed by `::` and is not itself
/// a later segment (`a::b`), a method (`x.collect::<T>()`) or a visibility (`pub(in
/// crate::a)`, which grants access and imports nothing).
fn starts_path(tokens: &[Lexeme<'_>], at: usize) -> bool {
    let token = |offset| {
        at.checked_add_signed(offset)
            .and_then(|index| token_at(tokens, index))
    };
    let followed = token(1) == Some(Token::PathSep);
    let continues = matches!(token(-1), Some(Token::PathSep | Token::Punct('.')));
    let visibility = token(-1) == Some(Token::Ident("in"))
        && token(-2) == Some(Token::Punct('('))
        && token(-3) == Some(Token::Ident("pub"));
    followed && !continues && !visibility
}

/// The token at `at`, if the tokens go that far.
fn token_at<'a>(tokens: &[Lexeme<'a>], at: usize) -> Option<Token<'a>> {
    tokens.get(at).map(|lexeme| lexeme.token)
}

/// Reads the `use` tree at `at` under `prefix` and adds each of its paths, with its line,
/// to `paths`; returns where the tree ends. `a::{b, c::{d, e}}` is `a::b`, `a::c::d` and
/// `a::c::e`; a glob is its module's path, and a rename (`as x`) changes nothing here.
fn use_tree<'a>(
    tokens: &[Lexeme<'a>],
    mut at: usize,
    prefix: &[&'a str],
    paths: &mut Vec<(Vec<&'a str>, u32)>,
) -> usize {
    let mut path = prefix.to_vec();
    while let Some(lexeme) = tokens.get(at) {
        at += 1;
        match lexeme.token {
            Token::Ident(segment) => {
                // `self` in a group, `a::{self, b}`, is `a` itself.
                if segment != "self" || path.is_empty() {
                    path.push(segment);
                }
                if token_at(tokens, at) == Some(Token::PathSep) {
                    at += 1;
                    continue;
                }
                if token_at(tokens, at) == Some(Token::Ident("as")) {
                    at += 2;
                }
                paths.push((path, lexeme.line));
                return at;
            }
            Token::Punct('*') => {
                path.push("*");
                paths.push((path, lexeme.line));
                return at;
            }
            Token::Punct('{') => {
                loop {
                    if token_at(tokens, at) == Some(Token::Punct('}')) {
                        return at + 1;
                    }
                    at = use_tree(tokens, at, &path, paths);
                    match token_at(tokens, at) {
                        Some(Token::Punct(',')) => at += 1,
                        Some(Token::Punct('}')) => return at + 1,
                        // Not a use tree rustc would accept.
                        _ => return at,
                    }
                }
            }
            _ => return at,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::{Attribute, attribute, use_tree};
    use crate::module_graph::token::tokenize;

    /// The paths of the `use` tree `source`, each joined with `::`.
    fn use_paths(source: &str) -> Vec<String> {
        let tokens = tokenize(source);
        let mut paths = Vec::new();
        use_tree(&tokens, 0, &[], &mut paths);
        paths.iter().map(|(path, _)| path.join("::")).collect()
    }

    #[test]
    fn a_use_group_is_one_path_per_item() {
        assert_eq!(
            use_paths("crate::a::{b, c::{d, self}, e as f, *};"),
            [
                "crate::a::b",
                "crate::a::c::d",
                "crate::a::c",
                "crate::a::e",
                "crate::a::*",
            ]
        );
    }

    #[test]
    fn a_group_may_open_the_tree_and_end_with_a_comma() {
        assert_eq!(
            use_paths("{super::x, self::y::z,};"),
            ["super::x", "self::y::z"]
        );
    }

    #[test]
    fn cfg_test_and_path_attributes_are_told_apart() {
        let read = |source| attribute(&tokenize(source));
        assert_eq!(read("[cfg(test)]"), Attribute::CfgTest { inner: false });
        assert_eq!(read("![cfg(test)]"), Attribute::CfgTest { inner: true });
        assert_eq!(read(r#"[path = "x.rs"]"#), Attribute::Path);
        assert_eq!(read("[cfg(not(test))]"), Attribute::Other);
    }
}
