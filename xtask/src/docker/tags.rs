//! The images the Docker check builds and runs: their repository and tags, which a second
//! checkout can change so that two checks share one engine.

/// The repository of the images the check builds, unless `XTASK_DOCKER_REPO` names another.
pub(super) const DEFAULT_REPO: &str = "task-api";

/// The tags the check builds and runs. `XTASK_DOCKER_REPO=task-api-wt` makes them
/// `task-api-wt:prod` and so on, so that a second checkout can run the check on the same
/// engine without replacing the first one's images.
pub(super) struct Tags {
    /// The repository, `task-api` by default.
    pub(super) repo: String,
    /// The production image (amd64).
    pub(super) prod: String,
    /// The `host-builder` stage: what a single-stage build would ship.
    pub(super) builder: String,
    /// The development image.
    pub(super) dev: String,
    /// The production image cross-built for linux/arm64.
    pub(super) arm64: String,
    /// The throwaway image of the build-cache check.
    pub(super) cache_check: String,
}

impl Tags {
    /// The tags for the repository `XTASK_DOCKER_REPO` names, or [`DEFAULT_REPO`].
    pub(super) fn from_env() -> Self {
        let repo = std::env::var("XTASK_DOCKER_REPO").unwrap_or_else(|_| DEFAULT_REPO.into());
        let tag = |name: &str| format!("{repo}:{name}");
        Self {
            prod: tag("prod"),
            builder: tag("builder"),
            dev: tag("dev"),
            arm64: tag("arm64"),
            cache_check: tag("cache-check"),
            repo,
        }
    }
}
