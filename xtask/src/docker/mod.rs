//! The Docker end-to-end check: builds every target of the Dockerfile against the real
//! engine, prints their sizes, and checks the images as a user would, with `docker` and
//! `curl`. [`e2e`] runs the steps in order; each check lives in the module named for what it
//! checks, [`harness`] holds the docker and curl calls they share, and [`tags`] names the
//! images.

use std::time::Instant;

use anyhow::Context as _;

use crate::root::workspace_root;
use harness::{build, build_image, docker};
use tags::{DEFAULT_REPO, Tags};

mod arm64;
mod cache;
mod compose_yaml;
mod context_size;
mod harness;
mod hot_reload;
mod production;
mod scale;
mod sizes;
mod swap;
mod tags;
mod test_target;

/// Runs the whole check.
pub(crate) fn e2e() -> anyhow::Result<()> {
    docker(&["info", "--format", "{{.ServerVersion}}"])
        .context("no Docker engine answers (run ../shared/docker/engine.sh)")?;
    let tags = Tags::from_env();
    let root = workspace_root();
    let work = root.join("target/docker-e2e");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    step("the build context is under 2 MB", || {
        context_size::check(&root, &work)
    })?;
    let components = work.join("components");
    step("target component, exported with -o", || {
        let out = components.display().to_string();
        build(&root, &["--target", "component", "-o", &out])?;
        // BuildKit creates the export directory 0700; the image runs as uid 10001, which must
        // be able to read a component mounted from it.
        std::fs::set_permissions(
            &components,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        Ok(())
    })?;
    // Each image is checked right after it is built; arm64, the slowest, comes last.
    for (target, tag) in [("production", &tags.prod), ("host-builder", &tags.builder)] {
        step(&format!("target {target}"), || {
            build_image(&root, &["--target", target], tag)
        })?;
    }
    step(
        "production: the seed's whoami and echo checks, CRUD, health, uid, stop, volume, hardening",
        || production::check(&tags.prod),
    )?;
    step(
        "compose: `up` serves production on :8000 with a named volume",
        || compose_yaml::check(&tags, &work),
    )?;
    // compose.scale.yaml names the default tags, as a user's file would.
    if tags.repo == DEFAULT_REPO {
        step(
            "compose.scale.yaml: three replicas on one Redis behind nginx, one stopped under load",
            || scale::check(compose_yaml::command(), &workspace_root()),
        )?;
    }
    step("production: swapping in another component", || {
        swap::check(&tags.prod, &components)
    })?;
    step("target development", || {
        build_image(&root, &["--target", "development"], &tags.dev)
    })?;
    step("development: an edit is served without a restart", || {
        hot_reload::check(&tags.dev, &work)
    })?;
    // What the test target checks on the real tree, the native run above has checked
    // already; building it on a tree with a broken test shows that it runs those checks,
    // that the rest of the tree passes them, and that any failure fails the build.
    step("target test: a deliberately failing test fails it", || {
        test_target::check_failing_test(&work)
    })?;
    step(
        "editing component/ and host/tests leaves the host build cached",
        || cache::check(&tags.cache_check, &work),
    )?;
    step("production for linux/arm64, cross-built", || {
        build_image(&root, &["--platform", "linux/arm64"], &tags.arm64)
    })?;
    arm64::check(&tags.arm64, &work)?;
    sizes::print_and_check(&tags)?;
    Ok(())
}

fn step(name: &str, check: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("==> docker: {name}");
    let started = Instant::now();
    check().with_context(|| format!("docker: {name}"))?;
    eprintln!("    ok in {:.0?}", started.elapsed());
    Ok(())
}
