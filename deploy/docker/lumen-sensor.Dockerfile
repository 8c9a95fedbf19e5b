# syntax=docker/dockerfile:1.7
#checkov:skip=CKV_DOCKER_2:Kubernetes ignores Docker HEALTHCHECK; the StatefulSet and DaemonSet define their own probes (deploy/terraform).
#checkov:skip=CKV_DOCKER_3:The sensor runs as root by design; the DaemonSet drops every capability and adds back BPF, PERFMON, SYS_PTRACE and DAC_READ_SEARCH only (deploy/terraform/sensor.tf).
# `lumen-sensor`, the node agent. Build from the repository root (linux/amd64: the BPF programs are built
# for x86 by ebpf/sensor/build.rs):
#
#   docker build -f deploy/docker/lumen-sensor.Dockerfile -t <registry>/lumen-sensor:<version> .
#
# The image runs as root on purpose: the DaemonSet (deploy/terraform/sensor.tf) drops every capability and
# adds back only BPF, PERFMON, SYS_PTRACE and DAC_READ_SEARCH, with hostPID and two read-only host paths.

FROM rust:1.95-bookworm AS build
# clang compiles the BPF programs (bpf/*.bpf.c) in build.rs; libbpf-dev provides their headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libbpf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lumen-sensor --bin lumen-sensor \
 && install -D -m 0755 target/release/lumen-sensor /out/lumen-sensor

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lumen-sensor /usr/local/bin/lumen-sensor
ENTRYPOINT ["/usr/local/bin/lumen-sensor"]
CMD ["run"]
