#!/usr/bin/env bash
# scripts/docker-base.sh -- creates the local base image kvd-base:bookworm without a registry.
#
# For Docker engines that cannot pull images (no registry access): debootstrap's minbase
# variant of Debian 12 (it has apt and dpkg) is built into a temporary directory and turned
# into an image with `docker import`. The Dockerfile then builds from it:
#   docker-compose build --build-arg BASE_IMAGE=kvd-base:bookworm      (or KVD_BASE_IMAGE=...)
# With registry access none of this is needed: the Dockerfile defaults to
# debian:bookworm-slim.
#
# (1) Cached: does nothing when the image already exists (--force rebuilds it).
# (2) The image's apt sources point at the mirror this host's apt uses (deb.debian.org or
#     whatever /etc/apt/sources.list* name), so the build stage's apt-get works there too.
#     KVD_DEBIAN_MIRROR / KVD_DEBIAN_SECURITY override both.
# (3) Needs root (debootstrap) and about 1-3 minutes and ~150 MB of downloads the first time.
set -euo pipefail
IMAGE=${KVD_BASE_IMAGE:-kvd-base:bookworm}
SUITE=bookworm
force=0
[ "${1:-}" = --force ] && force=1

if ! command -v docker >/dev/null 2>&1; then
  echo "docker-base: no docker command" >&2
  exit 1
fi
if [ $force = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "docker-base: $IMAGE exists (use --force to rebuild)" >&2
  exit 0
fi

# The mirror host apt uses: first deb.debian.org-like URI from deb822 .sources files or
# one-line sources.list entries, split into the main archive and the security archive.
find_uri() {   # $1: grep pattern the URI must match, $2: pattern it must not match
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'
  } | grep -E "$1" | grep -vE "$2" | head -n1 || true
}
MIRROR=${KVD_DEBIAN_MIRROR:-$(find_uri '/debian/?$' 'security')}
SECURITY=${KVD_DEBIAN_SECURITY:-$(find_uri 'debian-security/?$' '^$')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
MIRROR=${MIRROR%/}
SECURITY=${SECURITY%/}

if [ "$(id -u)" -ne 0 ]; then
  echo "docker-base: debootstrap needs root; run: sudo $0" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "docker-base: installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/kvd-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "docker-base: debootstrap --variant=minbase $SUITE from $MIRROR (takes a few minutes)" >&2
start=$(date +%s)
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"

cat >"$root/etc/apt/sources.list" <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
SRC
# What debian:bookworm-slim does: no recommends, no package caches left in layers.
cat >"$root/etc/apt/apt.conf.d/90kvd-docker" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
CONF
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar --numeric-owner -C "$root" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    -m "debootstrap --variant=minbase $SUITE ($MIRROR), scripts/docker-base.sh" \
    - "$IMAGE" >/dev/null
echo "docker-base: $IMAGE built in $(( $(date +%s) - start )) s" >&2
