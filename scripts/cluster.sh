#!/usr/bin/env bash
# scripts/cluster.sh -- a local kvd cluster on 127.0.0.1 for development (docs/operations.md).
#
#   scripts/cluster.sh start [N] [KVD FLAGS...]  build (release, like scripts/run.sh), then
#                                                start N nodes (default 3) in the background
#   scripts/cluster.sh stop                      stop exactly the nodes `start` recorded
#   scripts/cluster.sh status                    kvctl status against the nodes
#   scripts/cluster.sh wipe                      stop, then delete ./kvd-data
#
# Node i (1..N): node id i, client port 7379+2(i-1), http 7380+2(i-1), data
# ./kvd-data/nodeI, log ./kvd-data/nodeI.log. Node 1 is the seed of the others. PIDs go
# to ./kvd-data/pids ("PID node-id" per line); `stop` signals only those PIDs, and only
# while they still run kvd (a PID reused by another program is left alone).
# Extra flags after N go to every node, e.g.:  scripts/cluster.sh start 5 --replication-factor 2
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=./kvd-data
PIDS=$DATA/pids
BASE_PORT=${KVD_BASE_PORT:-7379}

port_of() { echo $((BASE_PORT + 2 * ($1 - 1))); }
http_of() { echo $((BASE_PORT + 1 + 2 * ($1 - 1))); }

is_kvd() {   # PID still runs a kvd binary
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [[ ${exe%% (deleted)} == */kvd ]]
}

nodes_list() {
    local list="" n
    n=$(wc -l <"$PIDS" 2>/dev/null || echo 0)
    for ((i = 1; i <= n; i++)); do
        list+="${list:+,}127.0.0.1:$(port_of "$i")"
    done
    echo "${list:-127.0.0.1:$BASE_PORT}"
}

build() {
    scripts/deps.sh build
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKV_TESTS=OFF >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
}

cmd_start() {
    local n=${1:-3}
    [[ $# -gt 0 ]] && shift
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 32)); then
        echo "cluster.sh: N must be 1..32 (got '$n')" >&2
        exit 2
    fi
    if [[ -s $PIDS ]]; then
        while read -r pid _; do
            if is_kvd "$pid"; then
                echo "cluster.sh: a cluster is already running (PID $pid); run '$0 stop' first" >&2
                exit 1
            fi
        done <"$PIDS"
        rm -f "$PIDS"
    fi
    build
    mkdir -p "$DATA"
    local seed="127.0.0.1:$(port_of 1)"
    for ((i = 1; i <= n; i++)); do
        local port http args
        port=$(port_of "$i")
        http=$(http_of "$i")
        args=(--node-id "$i" --listen "127.0.0.1:$port" --http "127.0.0.1:$http"
              --data-dir "$DATA/node$i")
        ((i > 1)) && args+=(--seeds "$seed")
        build/server/kvd "${args[@]}" "$@" >>"$DATA/node$i.log" 2>&1 &
        echo "$! $i" >>"$PIDS"
        # Wait for the client port before starting the next node (the seed first).
        local up=0
        for _ in $(seq 1 100); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
            if ! kill -0 "$!" 2>/dev/null; then break; fi
            sleep 0.1
        done
        if ((up == 0)); then
            echo "cluster.sh: node $i did not start; see $DATA/node$i.log:" >&2
            tail -n 20 "$DATA/node$i.log" >&2 || true
            cmd_stop
            exit 1
        fi
        echo "node $i: pid $!, 127.0.0.1:$port, http http://127.0.0.1:$http/metrics, data $DATA/node$i"
    done
    echo "try: KVD_NODES=$(nodes_list) build/client/kvctl status"
}

cmd_stop() {
    [[ -s $PIDS ]] || { echo "cluster.sh: no cluster recorded in $PIDS" >&2; return 0; }
    local pids=()
    while read -r pid id; do
        if is_kvd "$pid"; then
            kill -TERM "$pid" 2>/dev/null && pids+=("$pid") && echo "stopping node $id (pid $pid)"
        fi
    done <"$PIDS"
    # A clean shutdown answers in-flight requests first; give it shutdown_timeout_ms and more.
    for _ in $(seq 1 150); do
        local left=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        ((left == 0)) && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null && is_kvd "$pid"; then
            echo "pid $pid did not stop in 15 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$PIDS"
}

cmd_status() {
    local kvctl=build/client/kvctl
    [[ -x $kvctl ]] || build
    "$kvctl" --nodes "$(nodes_list)" status "$@"
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
status) shift; cmd_status "$@" ;;
wipe) cmd_stop; rm -rf "$DATA"; echo "removed $DATA" ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
