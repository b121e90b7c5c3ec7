#!/usr/bin/env bash
# scripts/overload.sh -- admission control figures on this machine (docs/testing.md
# "Overload"): one kvd node driven past its capacity by an open-loop kvbench.
#
#   scripts/overload.sh [--seconds S] [--factor F] [--no-floods] [--results DIR]
#
#   --seconds S   length of each measured phase (default 10, plus 2 s of warm-up)
#   --factor F    the open loop's rate as a multiple of the measured capacity (default 3)
#   --no-floods   skip the connection-flood figure (step 5)
#   --results D   where the raw outputs and summary.md go (default overload-results/DATE)
#   KVD_BIN, KVBENCH_BIN, ADMISSION_TEST_BIN: use these binaries instead of building
#   build-overload/ (a Release build of this tree).
#
# What it does:
#   1. Starts kvd (defaults, sync=batch) pinned to CPU 0 and runs kvbench pinned to CPU 1,
#      so the client has a core of its own; on a 2-core machine a cheap operation (a get of
#      100 bytes) costs kvbench more than kvd, so the client could never offer 3x. The
#      workload is YCSB E (95% scans of 1..100 records, 5% inserts) over 10,000 records
#      that were each overwritten ~10 times first: every scan merges the versions the
#      merge operator has not compacted yet, so the node, not the client, is the bottleneck.
#   2. Capacity: a closed loop (8 connections x pipeline 16) for S seconds: the peak.
#   3. Overload: an open loop at F x the first peak (8 connections x pipeline 128 slots; a
#      late op keeps its scheduled start, so waiting shows in its latency). Reported:
#      goodput (answered OK per second), admitted p50/p99, shed (OVERLOADED) count and
#      latency. Closed and open loops alternate, c o c o c, and the table shows the
#      medians (of 3 and of 2): this machine's noise is +-30% from one run to the next.
#      kvd runs with UV_THREADPOOL_SIZE=$KVD_THREADS (default 4, libuv's own default);
#      pinned to one core, storage threads take CPU from the loop, so even an OVERLOADED
#      answer waits for the loop's turn on the core.
#   4. Steps 1-3 again on fresh data with every shed signal off (max_node_inflight_requests
#      0, overload_queue_ms 0), at the same rate: what admission control buys.
#   5. test_admission's flood case (5,000 stalled half frames + 20,000 connects while a
#      normal client measures its p99) with KVD_ADMISSION_STRICT=1, three times.
# Pass criteria printed at the end: goodput >= 80% of the peak; admitted p99 under 1 s;
# no TIMEOUT; shed answers' p99 under 100 ms (the request timeout is 5 s).
# Every process is started here and stopped by its PID (trap on EXIT); data lives in a
# mktemp directory. The run takes about 4 minutes plus the build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=10
FACTOR=3
FLOODS=1
RESULTS=
while [[ $# -gt 0 ]]; do
    case "$1" in
    --seconds) SECS=$2; shift ;;
    --factor) FACTOR=$2; shift ;;
    --no-floods) FLOODS=0 ;;
    --results) RESULTS=$2; shift ;;
    -h | --help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "overload.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
RESULTS=${RESULTS:-$ROOT/overload-results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/overload.XXXXXX")
PIDS=()
. "$ROOT/scripts/lib/procs.sh"   # log, free_port, wait_port, stop_pid

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


if [[ -z ${KVD_BIN:-} || -z ${KVBENCH_BIN:-} || ( $FLOODS == 1 && -z ${ADMISSION_TEST_BIN:-} ) ]]; then
    log "building kvd, kvbench, test_admission (Release) in build-overload/"
    cmake -S "$ROOT" -B "$ROOT/build-overload" -DCMAKE_BUILD_TYPE=Release >"$RESULTS/build.log" 2>&1
    cmake --build "$ROOT/build-overload" -j"$(nproc)" --target kvd kvbench test_admission \
        >>"$RESULTS/build.log" 2>&1 || { echo "overload.sh: build failed, see $RESULTS/build.log" >&2; exit 1; }
fi
KVD=${KVD_BIN:-$ROOT/build-overload/server/kvd}
KVBENCH=${KVBENCH_BIN:-$ROOT/build-overload/client/bench/kvbench}
ADMISSION_TEST=${ADMISSION_TEST_BIN:-$ROOT/build-overload/tests/integration/test_admission}
PIN_SERVER=(taskset -c 0)
PIN_CLIENT=(taskset -c 1)
command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]] || { PIN_SERVER=(); PIN_CLIENT=(); }

PORT=$(free_port)
HTTP=$(free_port)
while [[ $HTTP == "$PORT" ]]; do HTTP=$(free_port); done
KVD_PID=
start_kvd() {   # extra flags...
    UV_THREADPOOL_SIZE=${KVD_THREADS:-4} "${PIN_SERVER[@]}" "$KVD" --listen "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP" \
        --data-dir "$TMP/data" --log-level warn "$@" >>"$RESULTS/kvd.log" 2>&1 &
    KVD_PID=$!
    PIDS+=("$KVD_PID")
    wait_port "$PORT" "$KVD_PID" || { echo "overload.sh: kvd did not start" >&2; exit 1; }
}
stop_kvd() { stop_pid "$KVD_PID"; }
bench() {   # NAME args...: runs kvbench, JSON into NAME.json, text into NAME.txt
    local name=$1
    shift
    "${PIN_CLIENT[@]}" "$KVBENCH" -n "127.0.0.1:$PORT" --records 10000 --json "$RESULTS/$name.json" \
        "$@" >"$RESULTS/$name.txt" 2>/dev/null || true
}
# Fields of the last phase of a kvbench JSON: ops/s, OK p50/p99 (scan), errors, shed.
summary() {   # NAME
    python3 - "$RESULTS/$1.json" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))[-1]
ops = run["ops"]
ok = sum(o["count"] for o in ops.values())
errs = {}
for o in ops.values():
    for k, v in o.get("errors", {}).items():
        errs[k] = errs.get(k, 0) + v
main = ops.get("scan") or next(iter(ops.values()))
shed = run.get("shed", {})
print(f'{ok / run["seconds"]:.0f} {main["p50_us"]:.0f} {main["p99_us"]:.0f} '
      f'{errs.get("OVERLOADED", 0)} {errs.get("TIMEOUT", 0)} {sum(errs.values())} '
      f'{shed.get("p50_us", 0):.0f} {shed.get("p99_us", 0):.0f}')
EOF
}

# One configuration on fresh data: load, churn, closed-loop capacity, then (with RATE set)
# the open loop. A restart would flush the memtable and resolve the merges, making scans
# cheaper, so every configuration starts from scratch.
run_config() {   # NAME kvd-flags...
    local name=$1
    shift
    rm -rf "$TMP/data"
    start_kvd "$@"
    bench "$name.load" -w e --load-only
    bench "$name.churn" --mix set --no-load --operations 100000 -c 8 -p 16
    # Closed and open loop alternate (c1 o1 c2 o2 c3): the machine's drift falls on both.
    bench "$name.c1" -w e --no-load -c 8 -p 16 -d $((SECS + 2)) --warmup 2
    if [[ -z ${RATE:-} ]]; then
        RATE=$(python3 -c "print(int($(summary "$name.c1" | cut -d' ' -f1) * $FACTOR))")
    fi
    local i
    for i in 1 2; do
        bench "$name.o$i" -w e --no-load -c 8 -p 128 -r "$RATE" -d $((SECS + 2)) --warmup 2
        bench "$name.c$((i + 1))" -w e --no-load -c 8 -p 16 -d $((SECS + 2)) --warmup 2
    done
    curl -s "127.0.0.1:$HTTP/metrics" | grep -E '^kvd_requests_shed_total' \
        >"$RESULTS/$name.shed_metrics.txt" || true
    stop_kvd
    # Two lines: the medians of the closed loops (the peak) and of the open ones.
    medians "$name" >"$RESULTS/$name.medians"
}
medians() {   # NAME
    local f
    for f in c1 c2 c3; do summary "$1.$f"; done | python3 -c "$MEDIAN_PY"
    for f in o1 o2; do summary "$1.$f"; done | python3 -c "$MEDIAN_PY"
}
MEDIAN_PY='
import sys, statistics
rows = [[float(x) for x in l.split()] for l in sys.stdin if l.strip()]
print(" ".join(str(round(statistics.median(c))) for c in zip(*rows)))
'

log "kvd on CPU 0 (UV_THREADPOOL_SIZE=${KVD_THREADS:-4}), kvbench on CPU 1; data in $TMP"
log "admission control on (defaults): load, ~10 overwrites per key, closed/open loops"
RATE=
run_config on
{ read -r PEAK CAP_P50 CAP_P99 _ _ _ _ _; read -r GOOD OV_P50 OV_P99 SHED TIMEOUTS ERRS SHED_P50 SHED_P99; } <"$RESULTS/on.medians"
log "peak (median of 3 closed loops) $PEAK ops/s; open loop at $RATE ops/s: goodput $GOOD"
cp "$RESULTS/on.shed_metrics.txt" "$RESULTS/shed_metrics.txt"
log "the same with every shed signal off"
run_config off --max-node-inflight-requests 0 --overload-queue-ms 0
{ read -r OFF_PEAK _ _ _ _ _ _ _; read -r NS_GOOD NS_P50 NS_P99 _ NS_TIMEOUTS NS_ERRS _ _; } <"$RESULTS/off.medians"

FLOOD_LINES=""
if ((FLOODS)); then
    log "connection floods (test_admission, case floods) x3 with KVD_ADMISSION_STRICT=1"
    ulimit -n "$(ulimit -Hn)" || true
    for i in 1 2 3; do
        KVD_BIN=$KVD KVD_ADMISSION_STRICT=1 CK_RUN_CASE=floods "$ADMISSION_TEST" \
            >"$RESULTS/floods.$i.txt" 2>&1 || true
        line=$(grep -E '^floods:' "$RESULTS/floods.$i.txt" || echo "floods: run $i gave no figure")
        verdict=$(grep -qE '100%: Checks' "$RESULTS/floods.$i.txt" && echo PASS || echo FAIL)
        FLOOD_LINES+="- run $i ($verdict): ${line#floods: }"$'\n'
    done
fi

pct=$(python3 -c "print(f'{100 * $GOOD / $PEAK:.0f}')")
ns_pct=$(python3 -c "print(f'{100 * $NS_GOOD / $PEAK:.0f}')")
ok() { python3 -c "print('PASS' if $1 else 'FAIL')"; }
{
    echo "# overload.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) ($(git -C "$ROOT" describe --always --dirty))"
    echo
    echo "YCSB E, one node, ${SECS}s phases; kvd on CPU 0 (UV_THREADPOOL_SIZE=${KVD_THREADS:-4}), kvbench on CPU 1."
    echo
    echo "| run | offered | goodput ops/s | % of peak | admitted p50 ms | admitted p99 ms | OVERLOADED | their p50 / p99 ms | TIMEOUT | other errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    echo "| capacity (closed loop, median of 3) | 8x16 in flight | $PEAK | 100 | $(python3 -c "print(f'{$CAP_P50/1e3:.1f}')") | $(python3 -c "print(f'{$CAP_P99/1e3:.1f}')") | 0 | - | 0 | 0 |"
    echo "| open loop ${FACTOR}x, admission control on (defaults; median of 2) | $RATE/s | $GOOD | $pct | $(python3 -c "print(f'{$OV_P50/1e3:.1f}')") | $(python3 -c "print(f'{$OV_P99/1e3:.1f}')") | $SHED | $(python3 -c "print(f'{$SHED_P50/1e3:.1f} / {$SHED_P99/1e3:.1f}')") | $TIMEOUTS | $((ERRS - SHED - TIMEOUTS)) |"
    echo "| open loop ${FACTOR}x, shedding off (its own closed-loop peak: $OFF_PEAK) | $RATE/s | $NS_GOOD | $ns_pct | $(python3 -c "print(f'{$NS_P50/1e3:.1f}')") | $(python3 -c "print(f'{$NS_P99/1e3:.1f}')") | 0 | - | $NS_TIMEOUTS | $((NS_ERRS - NS_TIMEOUTS)) |"
    echo
    echo "- goodput >= 80% of the peak: $(ok "$GOOD >= 0.8 * $PEAK") ($pct%)"
    echo "- admitted p99 under 1 s: $(ok "$OV_P99 < 1e6")"
    echo "- no TIMEOUT: $(ok "$TIMEOUTS == 0")"
    echo "- OVERLOADED answers' p99 under 100 ms: $(ok "$SHED > 0 and $SHED_P99 < 1e5")"
    echo "- shed by: $(tr '\n' ' ' <"$RESULTS/shed_metrics.txt")"
    if ((FLOODS)); then
        echo
        echo "Connection floods (normal client's p99 under 5,000 stalled half frames and a 20,000-connect burst):"
        echo
        printf '%s' "$FLOOD_LINES"
    fi
} | tee "$RESULTS/summary.md"
