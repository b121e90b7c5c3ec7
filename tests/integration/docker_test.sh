#!/usr/bin/env bash
# tests/integration/docker_test.sh [KVCTL] -- the docker-compose cluster on the real engine.
#
# Builds the image (docker-compose.yml, Dockerfile), starts the five nodes under a project
# name unique to this run, and checks through kvctl: QUORUM writes and reads; with one
# container stopped QUORUM still works and ALL answers UNAVAILABLE; a container cut off
# the network (`docker network disconnect`) gets the writes it missed from hints once it is
# reconnected (kvd_cluster_hints_pending back to 0, and `kvctl get --local` on that node
# never shows a value older than the one written while it was away). Everything the run
# created (containers, network, volumes) is removed on exit, pass or fail; the images
# (kvd-base:bookworm, kvd-node:latest) stay cached for the next run. The image is built
# from the work tree the script lives in, under a tag of its own (see KVD_IMAGE below).
#
# Exit 77 (ctest SKIP_RETURN_CODE) with a reason when it cannot run: KVD_SKIP_DOCKER=1, no
# Docker engine, no compose, or (KVD_DOCKER_CACHED_ONLY=1, as ctest runs it) the images
# are not built yet. Build them once with:  scripts/docker-base.sh && \
#   KVD_BASE_IMAGE=kvd-base:bookworm docker-compose build
# KVCTL: the host's kvctl (default: build/client/kvctl); it talks to kvd1's published port.
# Timings on a 2-core machine: the base image ~30 s, a cold image build 1.5-2.5 min, the
# cluster part ~45 s idle (~2 min under heavy load); the whole run is bounded by
# KVD_DOCKER_TEST_SECONDS (900), below the ctest TIMEOUT (1200).
set -euo pipefail
SKIP=77
skip() { echo "SKIP: $*" >&2; exit $SKIP; }
log() { echo "docker_test: $(date -u +%T) $*" >&2; }
die() { echo "docker_test: FAIL: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
KVCTL=${1:-$root/build/client/kvctl}
[ "${KVD_SKIP_DOCKER:-0}" = 1 ] && skip "KVD_SKIP_DOCKER=1"
command -v docker >/dev/null 2>&1 || skip "no docker command on this machine"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (docker info failed)"
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  skip "neither 'docker compose' nor docker-compose is installed"
fi
[ -x "$KVCTL" ] || die "no kvctl at $KVCTL (build first or pass its path)"

CACHE_IMAGE=${KVD_IMAGE:-kvd-node:latest}
if [ -z "${KVD_BASE_IMAGE:-}" ]; then
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    KVD_BASE_IMAGE=debian:bookworm-slim
  else
    KVD_BASE_IMAGE=kvd-base:bookworm   # no registry here: the debootstrap base
  fi
fi
export KVD_BASE_IMAGE
if [ "${KVD_DOCKER_CACHED_ONLY:-0}" = 1 ]; then
  for img in "$KVD_BASE_IMAGE" "$CACHE_IMAGE"; do
    docker image inspect "$img" >/dev/null 2>&1 ||
      skip "image $img is not built yet; build once with: scripts/docker-base.sh && KVD_BASE_IMAGE=kvd-base:bookworm docker-compose build"
  done
fi

t_start=$(date +%s)
DEADLINE=$((t_start + ${KVD_DOCKER_TEST_SECONDS:-900}))
check_deadline() { [ "$(date +%s)" -lt "$DEADLINE" ] || die "over the time budget"; }

PROJECT="kvdtest$$$(date +%s)"
NET="${PROJECT}_kvd"
# This run's image has its own tag, so that concurrent runs (other work trees) never start
# each other's builds; on exit it becomes $CACHE_IMAGE (kvd-node:latest) for the next run.
export KVD_IMAGE="kvd-node:$PROJECT"
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port"
}
export KVD_CLIENT_PORT; KVD_CLIENT_PORT=$(free_port)
export KVD_METRICS_PORT; KVD_METRICS_PORT=$(free_port)
while [ "$KVD_METRICS_PORT" = "$KVD_CLIENT_PORT" ]; do KVD_METRICS_PORT=$(free_port); done
export KVD_REPLICATION_FACTOR=3 KVD_LOG_LEVEL=info
dc() { "${COMPOSE[@]}" -p "$PROJECT" -f "$root/docker-compose.yml" "$@"; }

teardown() {
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne $SKIP ]; then
    log "failed (exit $rc); last log lines of every node:"
    dc logs --no-color --tail 25 >&2 2>/dev/null || true
  fi
  log "tearing down project $PROJECT"
  dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  if docker image inspect "$KVD_IMAGE" >/dev/null 2>&1; then
    docker tag "$KVD_IMAGE" "$CACHE_IMAGE" >/dev/null 2>&1 || true
    docker rmi "$KVD_IMAGE" >/dev/null 2>&1 || true   # only the tag: $CACHE_IMAGE keeps it
  fi
  # Every build leaves its build stage untagged, and a retag leaves the previous runtime
  # image untagged: keep the newest build stage (the next build's layer cache), drop the
  # rest. Images in use by a concurrent run are refused by docker rmi, which is fine.
  docker images -q --filter dangling=true --filter label=kvd.stage=build | tail -n +2 |
    xargs -r docker rmi >/dev/null 2>&1 || true
  docker images -q --filter dangling=true --filter label=kvd.stage=runtime |
    xargs -r docker rmi >/dev/null 2>&1 || true
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

# --- build ----------------------------------------------------------------------------
t0=$(date +%s)
if [ "$KVD_BASE_IMAGE" = kvd-base:bookworm ] && ! docker image inspect "$KVD_BASE_IMAGE" >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || skip "no base image $KVD_BASE_IMAGE and not root: run sudo scripts/docker-base.sh once"
  "$root/scripts/docker-base.sh" || die "cannot build the base image (scripts/docker-base.sh)"
fi
log "building $KVD_IMAGE from $KVD_BASE_IMAGE (a cold build takes a few minutes)"
buildlog=$(mktemp /tmp/kvd-docker-build.XXXXXX)
build_flags=()   # the classic builder (docker-compose v1) leaves failed steps' containers
[ "${COMPOSE[0]}" = docker-compose ] && build_flags=(--force-rm)
timeout 780 "${COMPOSE[@]}" -p "$PROJECT" -f "$root/docker-compose.yml" build "${build_flags[@]}" kvd1 \
  >"$buildlog" 2>&1 || { tail -n 40 "$buildlog" >&2; rm -f "$buildlog"; die "image build failed"; }
rm -f "$buildlog"
log "image built in $(( $(date +%s) - t0 )) s"

# --- helpers --------------------------------------------------------------------------
cid() { dc ps -q "$1"; }
host_kvctl() { "$KVCTL" --nodes "127.0.0.1:$KVD_CLIENT_PORT" "$@"; }
# kvctl inside a node's container, talking to that node.
node_kvctl() { local s=$1; shift; docker exec "$(cid "$s")" kvctl --nodes 127.0.0.1:7379 "$@"; }
# One series' value from a node's /metrics (read inside the container: only kvd1 publishes).
metric() {
  docker exec "$(cid "$1")" bash -c 'exec 3<>/dev/tcp/127.0.0.1/7380 &&
    printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null |
    awk -v s="$2" '$1 == s {print $2; found = 1} END {if (!found) print "NA"}'
}
wait_for() {   # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2; shift 2
  local until=$(( $(date +%s) + secs ))
  until "$@"; do
    [ "$(date +%s)" -lt "$until" ] || die "timed out after ${secs}s waiting for $what"
    check_deadline
    sleep 0.5
  done
}
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$1")" 2>/dev/null)" = healthy ]; }
all_healthy() { for s in "$@"; do healthy "$s" || return 1; done; }
up_is() { [ "$(metric "$1" 'kvd_cluster_nodes{state="up"}')" = "$2" ]; }
sum_hints() {
  local total=0 v
  for s in "$@"; do
    v=$(metric "$s" kvd_cluster_hints_pending)
    [ "$v" = NA ] && { echo NA; return; }
    total=$((total + ${v%.*}))
  done
  echo $total
}
hints_zero() { [ "$(sum_hints "$@")" = 0 ]; }
# Keys whose first bytes spread over the whole byte space, so that (with hashed tokens)
# they land in many ranges and every node is a replica of some of them.
KEYS=()
for i in $(seq 0 15); do KEYS+=("$(printf '\\x%x0docker-key-%d' "$i" "$i")"); done
put_all() {   # put_all LEVEL PREFIX: every key = PREFIX-i through kvd1 (host kvctl)
  local i=0 k
  for k in "${KEYS[@]}"; do
    host_kvctl -c "$1" put "$k" "$2-$i" || return 1
    i=$((i + 1))
  done
}
get_all() {   # get_all LEVEL PREFIX: every key reads PREFIX-i
  local i=0 k v
  for k in "${KEYS[@]}"; do
    v=$(host_kvctl -c "$1" get "$k") || return 1
    [ "$v" = "$2-$i" ] || die "get $k at $1: '$v', want '$2-$i'"
    i=$((i + 1))
  done
}
# On node $1 (its own store, --local): no key may hold a value other than $2-i or none
# at all (not a replica); at least one must hold $2-i. Anything else is a lost hint.
check_local() {
  local s=$1 want=$2 i=0 line rc v found=0
  if ! docker exec "$(cid "$s")" kvctl get --help 2>&1 | grep -q -- --local; then
    log "this kvctl has no 'get --local': $s checked through /metrics only"
    return 0
  fi
  # One docker exec for all keys: "exit-code|value-or-error" per key, in order.
  local out
  out=$(docker exec "$(cid "$s")" sh -c 'for k; do
      v=$(kvctl --nodes 127.0.0.1:7379 get --local "$k" 2>&1); echo "$?|$v"; done' \
      sh "${KEYS[@]}") || die "$s: docker exec kvctl failed"
  while IFS= read -r line; do
    rc=${line%%|*} v=${line#*|}
    if [ "$rc" -eq 0 ]; then
      [ "$v" = "$want-$i" ] ||
        die "$s holds '$v' for ${KEYS[$i]}, want '$want-$i' (hint not replayed)"
      found=$((found + 1))
    elif [ "$rc" -ne 1 ]; then
      die "$s: get --local ${KEYS[$i]} failed (exit $rc): $v"
    fi
    i=$((i + 1))
  done <<<"$out"
  [ $i -eq ${#KEYS[@]} ] || die "$s: $i answers for ${#KEYS[@]} keys"
  [ $found -gt 0 ] || die "$s is a replica of none of the ${#KEYS[@]} keys"
  log "$s holds the latest value of the $found keys it replicates (--local)"
}

# --- start ------------------------------------------------------------------------------
SERVICES=(kvd1 kvd2 kvd3 kvd4 kvd5)
t0=$(date +%s)
dc up -d --no-build >/dev/null 2>&1 || { dc up -d --no-build; die "compose up failed"; }
wait_for 180 "every container healthy" all_healthy "${SERVICES[@]}"
for s in "${SERVICES[@]}"; do wait_for 90 "$s to see 5 nodes up" up_is "$s" 5; done
log "cluster up: 5 healthy nodes that all see 5 up, in $(( $(date +%s) - t0 )) s"
host_kvctl status >&2

# --- QUORUM and ALL with every node up ------------------------------------------------
wait_for 30 "a write at ALL" host_kvctl -c all put docker:probe 1
put_all all v1 || die "put at ALL with all nodes up"
get_all quorum v1
log "writes at ALL and reads at QUORUM through kvd1's published port: ok"

# --- one container stopped: QUORUM works, ALL is UNAVAILABLE --------------------------
docker stop -t 10 "$(cid kvd3)" >/dev/null
wait_for 30 "kvd1 to see kvd3 down" up_is kvd1 4
put_all quorum v2 || die "put at QUORUM with kvd3 stopped"
get_all quorum v2
unavailable=0
for k in "${KEYS[@]}"; do
  rc=0; out=$(host_kvctl -c all get "$k" 2>&1) || rc=$?
  case $rc in
    0) ;;   # kvd3 is not a replica of this key
    5) grep -q UNAVAILABLE <<<"$out" || die "ALL get $k: exit 5 without UNAVAILABLE: $out"
       unavailable=$((unavailable + 1)) ;;
    *) die "ALL get $k with kvd3 stopped: exit $rc: $out" ;;
  esac
done
[ $unavailable -gt 0 ] || die "no read at ALL was UNAVAILABLE with kvd3 stopped"
log "kvd3 stopped: QUORUM ok, ALL UNAVAILABLE for the $unavailable keys kvd3 replicates"
docker start "$(cid kvd3)" >/dev/null
wait_for 120 "kvd3 healthy again" healthy kvd3
for s in "${SERVICES[@]}"; do wait_for 90 "$s to see 5 nodes up" up_is "$s" 5; done
wait_for 90 "hints for kvd3 replayed" hints_zero "${SERVICES[@]}"
check_local kvd3 v2

# --- one container off the network: hints replay when it is back ----------------------
docker network disconnect "$NET" "$(cid kvd5)"
wait_for 30 "kvd1 to see kvd5 down" up_is kvd1 4
put_all quorum v3 || die "put at QUORUM with kvd5 disconnected"
pending=$(metric kvd1 kvd_cluster_hints_pending)
log "kvd5 disconnected: QUORUM writes ok; kvd1 holds $pending hints"
[ "$pending" != NA ] && [ "${pending%.*}" -gt 0 ] || die "no hints stored for kvd5 on kvd1"
docker network connect --alias kvd5 "$NET" "$(cid kvd5)"
for s in "${SERVICES[@]}"; do wait_for 90 "$s to see 5 nodes up" up_is "$s" 5; done
wait_for 90 "hints for kvd5 replayed" hints_zero "${SERVICES[@]}"
log "kvd5 reconnected: hints pending 0 everywhere, replayed total on kvd1: $(metric kvd1 kvd_cluster_hints_replayed_total)"
check_local kvd5 v3
get_all quorum v3

log "PASS in $(( $(date +%s) - t_start )) s"
