# syntax=docker/dockerfile:1
# The `aisha` image: one binary, every role as its subcommand (`aisha worker`, `aisha webhook`,
# `aisha bot`, `aisha migrate`, …). compose/docker-compose.yml runs it; README.md of compose/
# tells how it is built and deployed.
#
# cargo-chef makes the dependencies a cached layer: a change to our sources rebuilds only the
# workspace crates. Cargo.lock is used exactly as committed (--locked; it pins e.g. takecell
# 0.1.1) and the workspace needs rustc 1.95.

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: manifests and lock file only, so it changes only when dependencies do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p aisha --recipe-path recipe.json
# The commit this image is built from (compose/deploy.sh passes
# --build-arg AISHA_COMMIT=$(git rev-parse --short HEAD); .git is not in the build context).
# Read at compile time (option_env!) into aisha_build_info{commit=…} of /metrics. Declared
# after the cook so that a new commit does not rebuild the dependencies.
ARG AISHA_COMMIT=unknown
ENV AISHA_COMMIT=${AISHA_COMMIT}
COPY . .
RUN cargo build --release --locked -p aisha \
    && install -m 0755 target/release/aisha /usr/local/bin/aisha

FROM debian:bookworm-slim AS runtime
ARG AISHA_COMMIT=unknown
LABEL org.opencontainers.image.title="aisha" \
      org.opencontainers.image.revision="${AISHA_COMMIT}"
# ca-certificates: TLS to FAL, Telegram and S3 (rustls with the system roots).
# curl: the HEALTHCHECK below and compose's healthchecks (GET /health), and an operator's
# `docker compose exec worker curl …` against the admin API; ~1 MB of the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 aisha \
    && useradd --system --uid 10001 --gid aisha --home-dir /var/lib/aisha \
        --shell /usr/sbin/nologin aisha \
    && mkdir -p /var/lib/aisha \
    && chown aisha:aisha /var/lib/aisha
COPY --from=builder /usr/local/bin/aisha /usr/local/bin/aisha
USER 10001:10001
WORKDIR /var/lib/aisha
# In a container: listen on every interface, log JSON, keep DATA_DIR in the home directory
# (only the embedded SQLite default writes there; compose runs on Postgres).
ENV DATA_DIR=/var/lib/aisha \
    HTTP_BIND=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["aisha"]
CMD ["serve"]
