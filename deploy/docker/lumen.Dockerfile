# syntax=docker/dockerfile:1.7
#checkov:skip=CKV_DOCKER_2:Kubernetes ignores Docker HEALTHCHECK; the StatefulSet and DaemonSet define their own probes (deploy/terraform).
# The `lumen` backend. Build from the repository root:
#
#   docker build -f deploy/docker/lumen.Dockerfile -t <registry>/lumen:<version> .
#
# Runs as an unprivileged user (uid/gid 10001). Configuration is by LUMEN_* environment variables or flags
# (`lumen serve --help`); listening on a non-loopback address requires --ingest-token and --query-token.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lumen-server --bin lumen \
 && install -D -m 0755 target/release/lumen /out/lumen

FROM debian:bookworm-slim
# ca-certificates: TLS to S3, STS (IRSA) and other AWS endpoints.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lumen \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/lumen --no-create-home --shell /usr/sbin/nologin lumen \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/lumen
COPY --from=build /out/lumen /usr/local/bin/lumen
USER 10001:10001
WORKDIR /var/lib/lumen
ENV LUMEN_LISTEN=0.0.0.0:4318 \
    LUMEN_DATA_DIR=/var/lib/lumen
EXPOSE 4318
VOLUME ["/var/lib/lumen"]
ENTRYPOINT ["/usr/local/bin/lumen"]
CMD ["serve"]
