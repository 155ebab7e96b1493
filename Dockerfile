# syntax=docker/dockerfile:1
#
# One image holding both binaries, as the Helm chart expects: its Deployments run
# `switchboard-gateway` and `switchboard-operator` by name (from PATH), as UID 65532, on a
# read-only root filesystem. The runtime image has no shell.
#
#   docker build -t registry.example.com/switchboard:0.1.0 .
#
# Not built in CI: the CI machine has no container engine.

# The workspace's rust-version (Cargo.toml).
ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target folders are cache mounts, kept between builds; the binaries are copied
# out of the target cache in the same step, since it is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p switchboard-gateway -p switchboard-operator \
    && mkdir /out \
    && cp target/release/switchboard-gateway target/release/switchboard-operator /out/

# glibc and libgcc from Debian 12, like the builder; CA certificates; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/switchboard-gateway /out/switchboard-operator /usr/local/bin/
USER 65532:65532
