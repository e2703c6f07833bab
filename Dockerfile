# syntax=docker/dockerfile:1
# retrobridge in a container: built with the Rust toolchain, run on a slim Debian as a
# non-root user. deploy/docker-compose.yml runs it next to Synapse; the README's
# "Deployment" section explains the volumes. Build from the repository root:
#   docker build -t retrobridge .

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY . .
# Only the bridge's binary: the workspace also holds the simulators and the tests.
RUN cargo build --release --locked -p retrobridge --bins

FROM debian:trixie-slim
# The binary needs only glibc; ca-certificates for https (homeserver, MSN's Passport).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid (10001) that the compose file refers to. /registration is created here,
# owned by that user, so that a named volume mounted there starts with that owner.
RUN groupadd --system --gid 10001 retrobridge \
    && useradd --system --uid 10001 --gid retrobridge --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin retrobridge \
    && mkdir -p /config /data /registration \
    && chown retrobridge:retrobridge /data /registration \
    && chmod 0700 /data
COPY --from=build /src/target/release/retrobridge /usr/local/bin/retrobridge
USER 10001:10001
# The database: set database.path to /data/retrobridge.sled. The config is mounted at
# /config (read-only is fine: keep the paths in it absolute).
VOLUME ["/data"]
# appservice.port (with appservice.address 0.0.0.0): the homeserver connects here.
EXPOSE 29330
ENTRYPOINT ["/usr/local/bin/retrobridge"]
CMD ["run", "-c", "/config/config.yaml"]
