//! The check on small crates written to a temporary directory, one rule at a time.

use std::path::Path;

use tempfile::TempDir;

use super::{MAX_FILE_LINES, MAX_TOP_FILES, member_problems};
use crate::workspace::Member;

/// A package whose `src/` holds `files` (path, text); its crate root is `src/lib.rs`.
fn package(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a fixture directory");
        }
        std::fs::write(&path, text).expect("writing a fixture file");
    }
    dir
}

/// The package in `dir` as a workspace member called `name`.
fn member(dir: &Path, name: &str) -> Member {
    let src = dir.join("src");
    Member {
        name: name.to_owned(),
        roots: vec![src.join("lib.rs")],
        src,
    }
}

/// The problems the check reports for the package in `dir` if it is called `name`.
fn problems(dir: &Path, name: &str) -> Vec<String> {
    member_problems(&member(dir, name), dir)
        .expect("the fixture reads")
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A package whose modules `a`, `b` and `c` each import the next, and `c` imports `a`.
const THREE_IN_A_CIRCLE: [(&str, &str); 4] = [
    ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
    ("a.rs", "use crate::b::B;\npub struct A;\n"),
    (
        "b.rs",
        "pub struct B;\n\nfn c() -> crate::c::C {\n    todo!()\n}\n",
    ),
    ("c.rs", "use super::a::A;\npub struct C;\n"),
];

#[test]
fn a_circle_of_three_names_its_members_and_their_imports() {
    let dir = package(&THREE_IN_A_CIRCLE);
    assert_eq!(
        problems(dir.path(), "core"),
        [
            "circle of src/a.rs, src/b.rs, src/c.rs: src/a.rs:1 crate::b::B -> \
          src/b.rs:3 crate::c::C -> src/c.rs:1 super::a::A"
        ]
    );
}

#[test]
fn each_item_of_a_use_group_is_an_import() {
    let dir = package(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "b.rs",
            "use crate::{\n    a::{A, self},\n    b::B,\n};\npub struct B;\n",
        ),
        (
            "a.rs",
            "use crate::{b::{self as bee}, std_name};\npub struct A;\n",
        ),
    ]);
    assert_eq!(
        problems(dir.path(), "core"),
        ["circle of src/a.rs, src/b.rs: src/a.rs:1 crate::b -> src/b.rs:2 crate::a::A"]
    );
}

#[test]
fn a_parent_naming_its_child_is_an_import_too() {
    let dir = package(&[
        (
            "lib.rs",
            "mod a;\npub struct Root;\nfn f() {\n    a::g();\n}\n",
        ),
        ("a.rs", "pub fn g() -> crate::Root {\n    todo!()\n}\n"),
    ]);
    assert_eq!(
        problems(dir.path(), "core"),
        ["circle of src/lib.rs, src/a.rs: src/lib.rs:4 a::g -> src/a.rs:1 crate::Root"]
    );
}

#[test]
fn comments_and_string_literals_import_nothing() {
    let dir = package(&[
        ("lib.rs", "mod a;\npub struct Root;\n"),
        (
            "a/mod.rs",
            "//! Unlike crate::Root, /* or super::Root */ ...\nmod b;\npub struct A;\n",
        ),
        (
            "a/b.rs",
            "/// Not [`super::A`].\nconst S: &str = \"super::A\";\nconst R: &str = r#\"crate::Root\"#;\n",
        ),
    ]);
    assert_eq!(problems(dir.path(), "task-host"), Vec::<String>::new());
}

#[test]
fn an_import_from_an_ancestor_s_file_is_reported_where_it_is_forbidden() {
    let files = [
        ("lib.rs", "mod a;\npub struct Root;\n"),
        ("a/mod.rs", "mod b;\npub struct A;\n"),
        (
            "a/b.rs",
            "use super::A;\n\nfn root() -> crate::Root {\n    todo!()\n}\n",
        ),
    ];
    let dir = package(&files);
    assert_eq!(
        problems(dir.path(), "task-host"),
        [
            "src/a/b.rs:1: `super::A` imports from src/a/mod.rs, an ancestor's own file",
            "src/a/b.rs:3: `crate::Root` imports from src/lib.rs, an ancestor's own file",
        ]
    );
    assert_eq!(problems(dir.path(), "core"), Vec::<String>::new());
}

#[test]
fn test_only_modules_may_import_their_parents() {
    let dir = package(&[
        ("lib.rs", "mod a;\npub struct Root;\n"),
        (
            "a/mod.rs",
            "mod b;\npub struct A;\n#[cfg(test)]\nmod tests;\n",
        ),
        ("a/tests.rs", "use super::A;\nuse crate::Root;\n"),
        (
            "a/b.rs",
            "#[cfg(test)]\n#[allow(unused)]\nmod fuzz;\n\n\
             #[cfg(test)]\nmod tests {\n    use super::super::A;\n    mod deeper {\n        use crate::Root;\n    }\n}\n",
        ),
        ("a/b/fuzz.rs", "use crate::a::A;\n"),
    ]);
    assert_eq!(problems(dir.path(), "task-host"), Vec::<String>::new());
}

#[test]
fn a_module_that_is_not_test_only_is_held_to_the_rule() {
    let dir = package(&[
        ("lib.rs", "mod a;\npub struct Root;\n"),
        (
            "a.rs",
            "#[cfg(test)]\nfn helper() {}\nmod inner {\n    use crate::Root;\n}\n",
        ),
    ]);
    assert_eq!(
        problems(dir.path(), "xtask"),
        ["src/a.rs:4: `crate::Root` imports from src/lib.rs, an ancestor's own file"]
    );
}

#[test]
fn a_path_in_an_inline_module_is_relative_to_that_module() {
    // The generated bindings of kv/wit.rs name its own types as `super::Bucket`.
    let dir = package(&[
        ("lib.rs", "mod kv;\n"),
        ("kv/mod.rs", "mod wit;\npub struct Bucket;\n"),
        (
            "kv/wit.rs",
            "mod bindings {\n    type T = super::Bucket;\n}\npub struct Bucket;\n\
             pub(in crate::kv) fn f() {}\n",
        ),
    ]);
    assert_eq!(problems(dir.path(), "task-host"), Vec::<String>::new());
}

#[test]
fn the_host_s_size_limits_count_top_files_and_lines() {
    let long = "\n".repeat(MAX_FILE_LINES + 1);
    let mut files = vec![("lib.rs", ""), ("deep/long.rs", long.as_str())];
    let names: Vec<String> = (0..MAX_TOP_FILES).map(|n| format!("f{n}.rs")).collect();
    files.extend(names.iter().map(|name| (name.as_str(), "")));
    let dir = package(&files);
    assert_eq!(
        problems(dir.path(), "task-host"),
        [
            format!(
                "src: {} source files at the top, over {MAX_TOP_FILES}",
                MAX_TOP_FILES + 1
            ),
            format!(
                "src/deep/long.rs: {} lines, over {MAX_FILE_LINES}",
                MAX_FILE_LINES + 1
            ),
        ]
    );
    assert_eq!(problems(dir.path(), "xtask"), Vec::<String>::new());
}

#[test]
fn a_module_without_its_file_is_an_error() {
    let dir = package(&[("lib.rs", "mod gone;\n")]);
    let error = member_problems(&member(dir.path(), "core"), dir.path())
        .expect_err("src/gone.rs is missing");
    assert!(
        error
            .to_string()
            .contains("lib.rs:1: module `gone` has no file"),
        "{error:#}"
    );
}
