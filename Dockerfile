# The Switchboard daemon, built from source in a first stage and run from a slim second
# one. Production runs it with RUNNER=docker (docker-compose.yml); the simulator worker
# is included for demos. The base is an argument so that a machine that cannot pull
# images can build on a local Debian 12 image (scripts/docker-images makes one).
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libevent-dev libcurl4-openssl-dev libsqlite3-dev \
      libjansson-dev libssl-dev libqrencode-dev libarchive-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src ./src
COPY workers/sim ./workers/sim
RUN make -j"$(nproc)" build/switchboard build/sim-worker

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libcurl4 libsqlite3-0 libjansson4 libssl3 libqrencode4 libarchive13 \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/switchboard /src/build/sim-worker /usr/local/bin/
COPY web /usr/local/share/switchboard/web
ENV DATA_DIR=/var/lib/switchboard \
    WEB_DIR=/usr/local/share/switchboard/web \
    ORCH_HOST=0.0.0.0 \
    RUNNER=docker
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/switchboard"]
