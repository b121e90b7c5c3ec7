# kvd container image: a build stage with the -dev packages, a runtime stage with only the
# runtime libraries, kvd and kvctl. See docs/docker.md.
#
#   docker build -t kvd .                                       (pulls debian:bookworm-slim)
#   scripts/docker-base.sh && docker build --build-arg BASE_IMAGE=kvd-base:bookworm -t kvd .
#                                                               (no registry needed)
# BASE_IMAGE must be Debian 12 (bookworm) with working apt sources.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
# The label lets tests/integration/docker_test.sh find this stage's leftover images.
LABEL kvd.stage=build
ENV DEBIAN_FRONTEND=noninteractive
# deps.sh alone first: this layer (the slow apt-get) stays cached while the sources change.
COPY scripts/deps.sh /src/scripts/deps.sh
RUN /src/scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DKV_TESTS=OFF >/dev/null \
 && cmake --build /build -j"$(nproc)" --target kvd kvctl \
 && strip /build/server/kvd /build/client/kvctl

FROM ${BASE_IMAGE}
LABEL kvd.stage=runtime org.opencontainers.image.title=kvd \
      org.opencontainers.image.description="kvd key-value store node (kvd, kvctl)"
ENV DEBIAN_FRONTEND=noninteractive
# Debian 12 runtime libraries of kvd and kvctl (their own dependencies come along).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      librocksdb7.8 libuv1 libprotobuf-c1 liblz4-1 libxxhash0 libinih1 libmicrohttpd12 \
      libjansson4 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kvd --shell /usr/sbin/nologin kvd \
 && mkdir -p /var/lib/kvd /etc/kvd \
 && chown kvd:kvd /var/lib/kvd
COPY --from=build /build/server/kvd /build/client/kvctl /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/kvd-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/kvd-healthcheck
# Defaults for a container: listen on every interface, data on the volume. Every KVD_*
# variable named after a kvd setting becomes a flag (docker/entrypoint.sh).
ENV KVD_LISTEN=0.0.0.0:7379 \
    KVD_HTTP=0.0.0.0:7380 \
    KVD_DATA_DIR=/var/lib/kvd
USER kvd
WORKDIR /var/lib/kvd
VOLUME /var/lib/kvd
EXPOSE 7379 7380
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 CMD ["/usr/local/bin/kvd-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kvd-entrypoint"]
