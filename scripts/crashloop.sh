#!/usr/bin/env bash
# scripts/crashloop.sh -- kill -9 kvd under a write load at sync = always, restart it on the
# same data, and check after every restart that every acknowledged write is there
# (docs/testing.md, "Crash loop").
#
#   scripts/crashloop.sh [--mode single|cluster] [--cycles N] [--kvd PATH] [--kvcrash PATH]
#                        [--seed N] [--load-seconds S] [--keys N] [--keep]
#
# single: one node. cluster: three nodes on 127.0.0.1 (distinct ports), RF 3, load and
# verify at QUORUM, a random node killed each cycle. A cycle: tests/crash/kvcrash writes
# keys for --load-seconds, recording every acknowledged write in its expected-values file;
# the victim dies either by kill -9 at a random moment, or (about one cycle in three, when
# kvd was built with KV_FAILPOINTS) by a failpoint armed at a random hit (the victim is
# restarted with KV_FAILPOINTS first); it is restarted on the same data dir while the load
# goes on; once it serves, kvcrash verify reads every key and compares. Exit 0 only when no
# value was lost or wrong, every node died only by SIGKILL, and all stopped cleanly at the
# end. Every process is stopped by its PID; the temp dir goes away (kept with --keep).
# Without --kvd it builds the sanitized test build in build-test (as scripts/test.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=single CYCLES=20 KVD="" KVCRASH="" SEED=$(( (RANDOM << 15) | RANDOM )) LOAD_S=1.2
KEYS=2000 KEEP=0
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
    case "$1" in
    --mode) MODE=${2:-}; shift 2 ;;
    --cycles) CYCLES=${2:-}; shift 2 ;;
    --kvd) KVD=${2:-}; shift 2 ;;
    --kvcrash) KVCRASH=${2:-}; shift 2 ;;
    --seed) SEED=${2:-}; shift 2 ;;
    --load-seconds) LOAD_S=${2:-}; shift 2 ;;
    --keys) KEYS=${2:-}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "crashloop.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[[ $MODE == single || $MODE == cluster ]] || usage
[[ $CYCLES =~ ^[0-9]+$ && $SEED =~ ^[0-9]+$ && $KEYS =~ ^[0-9]+$ ]] || usage
if [[ -z $KVD ]]; then
    scripts/deps.sh test
    cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=ON >/dev/null
    cmake --build build-test -j"$(nproc)" --target kvd kvcrash >/dev/null
    KVD=build-test/server/kvd
fi
[[ -n $KVCRASH ]] || KVCRASH=$(dirname "$(dirname "$KVD")")/tests/crash/kvcrash
if [[ ! -x $KVD || ! -x $KVCRASH ]]; then
    echo "crashloop.sh: need kvd ($KVD) and kvcrash ($KVCRASH)" >&2
    exit 2
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

RANDOM=$SEED
exec 3>&2
FAILPOINTS=0
grep -aq 'commit.before_wal' "$KVD" && FAILPOINTS=1
POINTS=(commit.before_wal commit.after_wal ack.before_reply ack.after_write)
if [[ $MODE == single ]]; then N=1; else N=3; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvcrash.XXXXXX")
STATE=$TMP/expected.bin
read -r -a PORTS <<<"$("$KVCRASH" ports $((2 * N)))"
declare -a PID PORT HTTP
NODES=""
for ((i = 1; i <= N; i++)); do
    PORT[i]=${PORTS[2 * (i - 1)]}
    HTTP[i]=${PORTS[2 * (i - 1) + 1]}
    NODES+="${NODES:+,}127.0.0.1:${PORT[i]}"
done
# Cluster: 12 tokens spread over kvcrash's key space (crash:00000 ..), dealt round-robin,
# so each node is the first replica, and the coordinator, of a third of the keys.
declare -a TOKENS
for ((j = 1; j <= 12; j++)); do
    i=$(( (j - 1) % N + 1 ))
    TOKENS[i]+="${TOKENS[i]:+,}$(printf 'crash:%05d' $((j * KEYS / 12)))"
done
LPID=""
FAILED=0

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rand_s() {   # a random number of seconds in [lo, hi]
    awk -v lo="$1" -v hi="$2" -v r="$RANDOM" 'BEGIN { printf "%.3f", lo + (hi - lo) * r / 32767 }'
}
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1" | head -n1; }
alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

is_kvd() {   # the PID still runs our kvd binary (a reused PID is left alone)
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [[ ${exe%% (deleted)} == "$(readlink -f "$KVD")" ]]
}

cleanup() {
    [[ -n $LPID ]] && kill -9 "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
    for ((i = 1; i <= N; i++)); do
        if alive "$i" && is_kvd "${PID[i]}"; then
            kill -9 "${PID[i]}" 2>/dev/null
            wait "${PID[i]}" 2>/dev/null
        fi
    done
    if ((FAILED && KEEP)); then
        echo "crashloop: kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'FAILED=1; exit 130' INT TERM

fail() {
    FAILED=1
    echo "crashloop: FAIL: $*" >&3
    for ((i = 1; i <= N; i++)); do
        echo "--- node $i log (last 15 lines) ---" >&3
        tail -n 15 "$TMP/node$i.log" >&3 2>/dev/null
    done
    exit 1
}

# start_node I [FAILPOINT-SPEC]: starts node I in the background (PID[I]).
start_node() {
    local i=$1 fp=${2:-} seeds="" j
    local args=(--node-id "$i" --listen "127.0.0.1:${PORT[i]}" --http "127.0.0.1:${HTTP[i]}"
                --data-dir "$TMP/node$i" --sync always --log-level warn)
    if ((N > 1)); then
        for ((j = 1; j <= N; j++)); do
            ((j != i)) && seeds+="${seeds:+,}127.0.0.1:${PORT[j]}"
        done
        args+=(--replication-factor 3 --gossip-interval-ms 100 --default-timeout-ms 2000
               --seeds "$seeds" --tokens "${TOKENS[i]}")
    fi
    echo "=== start $(date -u +%T.%N) ${fp:+KV_FAILPOINTS=$fp}" >>"$TMP/node$i.log"
    if [[ -n $fp ]]; then
        KV_FAILPOINTS=$fp KV_FAILPOINTS_SEED=$RANDOM "$KVD" "${args[@]}" >>"$TMP/node$i.log" 2>&1 &
    else
        "$KVD" "${args[@]}" >>"$TMP/node$i.log" 2>&1 &
    fi
    PID[i]=$!
}

# reap I: waits for node I, which must have died by SIGKILL (status 137).
reap() {
    local st=0
    wait "${PID[$1]}" 2>/dev/null || st=$?
    PID[$1]=""
    ((st == 137)) || fail "node $1 exited with status $st, not by SIGKILL (see its log)"
}

# serve_wait [SKIP]: every node (but SKIP) answers and sees all N up; bounded.
serve_wait() {
    local list="" i
    for ((i = 1; i <= N; i++)); do
        [[ $i == "${1:-}" ]] || list+="${list:+,}127.0.0.1:${PORT[i]}"
    done
    "$KVCRASH" wait --nodes "$list" --up "$N" --seconds 30 >/dev/null
}

# fp_wait I: node I, armed, serves (the others see it up; alone, it answers), or it has
# already died at its point (a status reply or a replayed hint can hit it). Bounded.
fp_wait() {
    local v=$1 list="" i t
    for ((i = 1; i <= N; i++)); do
        ((i != v || N == 1)) && list+="${list:+,}127.0.0.1:${PORT[i]}"
    done
    for ((t = 0; t < 60; t++)); do
        alive "$v" || return 0
        "$KVCRASH" wait --nodes "$list" --up "$N" --seconds 0.5 >/dev/null 2>&1 && return 0
    done
    return 1
}

for ((i = 1; i <= N; i++)); do start_node "$i"; done
serve_wait || fail "the nodes did not come up"
echo "crashloop: mode=$MODE nodes=$NODES cycles=$CYCLES seed=$SEED keys=$KEYS" \
     "load=${LOAD_S}s failpoints=$([[ $FAILPOINTS == 1 ]] && echo on || echo off) dir=$TMP"

# crash_victim: kills the victim now (kill -9 at a random moment of the load), or waits
# for its armed failpoint to fire (kill -9 when the load ends first); `all` kills every
# node at once. Sets `what`.
crash_victim() {
    if [[ $how != failpoint ]]; then
        sleep "$(rand_s "$(awk -v l="$LOAD_S" 'BEGIN{print l*0.15}')" \
                        "$(awk -v l="$LOAD_S" 'BEGIN{print l*0.75}')")"
        at=$(elapsed "$tc")
        for v in "${VICTIMS[@]}"; do kill -9 "${PID[v]}" 2>/dev/null; done
        KILLS=$((KILLS + ${#VICTIMS[@]}))
        what="kill -9 at ${at}s"
    else
        while alive "$victim" && kill -0 "$LPID" 2>/dev/null; do sleep 0.02; done
        if alive "$victim"; then
            kill -9 "${PID[victim]}"
            FP_MISSED=$((FP_MISSED + 1))
            what="$spec not reached: kill -9 at $(elapsed "$tc")s"
        else
            FP_FIRED=$((FP_FIRED + 1))
            FP_BY_POINT[$point]=$(( ${FP_BY_POINT[$point]:-0} + 1 ))
            what="$spec fired at $(elapsed "$tc")s"
        fi
    fi
}

# The checker must see damage before its silence means anything: an older value and a
# delete of acknowledged keys must count as lost, a flipped bit as wrong; restored, clean.
selftest() {
    local out k1 k2 k3 d=(--nodes "$NODES" --state "$STATE" --level quorum)
    "$KVCRASH" load "${d[@]}" --keys "$KEYS" --seconds 0.6 --seed "$SEED" >/dev/null ||
        fail "self-test: load failed"
    "$KVCRASH" verify "${d[@]}" >/dev/null || fail "self-test: first verify failed"
    k1=$("$KVCRASH" damage "${d[@]}" --how older --key 0) &&
        k2=$("$KVCRASH" damage "${d[@]}" --how delete --key $((k1 + 1))) &&
        k3=$("$KVCRASH" damage "${d[@]}" --how garbage --key $((k2 + 1))) ||
        fail "self-test: damage failed"
    out=$("$KVCRASH" verify "${d[@]}" 2>"$TMP/verify.err")
    [[ $? == 1 && $(field "$out" lost) == 2 && $(field "$out" wrong) == 1 ]] ||
        fail "self-test: verify missed the damage to keys $k1 $k2 $k3: $out"
    for k in "$k1" "$k2" "$k3"; do
        "$KVCRASH" damage "${d[@]}" --how restore --key "$k" >/dev/null || fail "self-test: restore"
    done
    "$KVCRASH" verify "${d[@]}" >/dev/null || fail "self-test: verify after restore failed"
    echo "crashloop: checker self-test: older value and delete of acked keys $k1 $k2 counted" \
         "lost, a flipped bit in key $k3 counted wrong, clean once restored"
}

selftest
T0=$(now)
TOT_ACKED=0 TOT_UNKNOWN=0 TOT_VERIFIED=0 TOT_LOST=0 TOT_WRONG=0 TOT_DOUBT=0
KILLS=0 FP_FIRED=0 FP_MISSED=0 REC_SUM=0 REC_MAX=0
declare -A FP_BY_POINT=()
for ((c = 1; c <= CYCLES; c++)); do
    victim=1
    ((N > 1)) && victim=$((RANDOM % N + 1))
    # kill: kill -9 the victim; failpoint: it dies at an armed point; again: kill -9, and
    # once more while it recovers; all (cluster): kill -9 every node at once.
    how=kill r=$((RANDOM % 12))
    if ((FAILPOINTS && r < 4)); then how=failpoint
    elif ((r == 4)); then how=again
    elif ((N > 1 && r == 5)); then how=all
    fi
    VICTIMS=("$victim") label="node $victim"
    [[ $how == all ]] && VICTIMS=($(seq 1 "$N")) label="all nodes"
    if [[ $how == failpoint ]]; then
        # Arm a random point: crash at a random hit (mostly), or with a small probability.
        point=${POINTS[RANDOM % ${#POINTS[@]}]}
        if ((RANDOM % 4)); then spec="$point=crash@$((RANDOM % 150 + 1))"
        else spec="$point=crash%$((RANDOM % 3 + 1))"; fi
        kill -9 "${PID[victim]}"; reap "$victim"
        start_node "$victim" "$spec"
        fp_wait "$victim" || fail "node $victim did not serve with $spec"
    fi
    "$KVCRASH" load --nodes "$NODES" --state "$STATE" --keys "$KEYS" --level quorum \
        --seconds "$LOAD_S" --seed $((SEED * 1000 + c)) >"$TMP/load.out" 2>"$TMP/load.err" &
    LPID=$!
    tc=$(now)
    crash_victim 2>/dev/null   # bash's "Killed" notices; failures go to fd 3
    for v in "${VICTIMS[@]}"; do reap "$v"; done
    sleep "$(rand_s 0 0.3)"
    tr=$(now)
    for v in "${VICTIMS[@]}"; do start_node "$v"; done
    if [[ $how == again ]]; then
        # A crash during recovery: the WAL replay, the join, the first requests.
        sleep "$(rand_s 0 0.4)"
        what+=", again $(elapsed "$tr")s into its restart"
        kill -9 "${PID[victim]}" 2>/dev/null; KILLS=$((KILLS + 1))
        reap "$victim" 2>/dev/null
        tr=$(now)
        start_node "$victim"
    fi
    serve_wait || fail "cycle $c: $label did not serve again"
    rec=$(elapsed "$tr")
    wait "$LPID"; lst=$?; LPID=""
    ((lst == 0)) || fail "cycle $c: load failed ($lst): $(tail -n 3 "$TMP/load.err")"
    load=$(cat "$TMP/load.out")
    vout=$("$KVCRASH" verify --nodes "$NODES" --state "$STATE" --level quorum 2>"$TMP/verify.err")
    vst=$?
    acked=$(field "$load" acked) unknown=$(field "$load" unknown) unav=$(field "$load" unavailable)
    verified=$(field "$vout" verified) lost=$(field "$vout" lost) wrong=$(field "$vout" wrong)
    doubt=$(field "$vout" in_doubt)
    printf '%s %s; load acked=%s unknown=%s unavailable=%s; recovery %ss; %s\n' \
        "cycle $c/$CYCLES $label:" "$what" "$acked" "$unknown" "$unav" "$rec" \
        "verify verified=${verified:-?} lost=${lost:-?} wrong=${wrong:-?} in_doubt=${doubt:-?}"
    TOT_ACKED=$((TOT_ACKED + ${acked:-0})) TOT_UNKNOWN=$((TOT_UNKNOWN + ${unknown:-0}))
    TOT_VERIFIED=$((TOT_VERIFIED + ${verified:-0})) TOT_LOST=$((TOT_LOST + ${lost:-0}))
    TOT_WRONG=$((TOT_WRONG + ${wrong:-0})) TOT_DOUBT=$((TOT_DOUBT + ${doubt:-0}))
    REC_SUM=$(awk -v a="$REC_SUM" -v b="$rec" 'BEGIN { print a + b }')
    REC_MAX=$(awk -v a="$REC_MAX" -v b="$rec" 'BEGIN { print (b > a ? b : a) }')
    if ((vst != 0)); then
        head -n 20 "$TMP/verify.err" >&2
        fail "cycle $c: verify exit $vst ($vout)"
    fi
done

# A clean stop of every node at the end: the sanitizers check the shutdown (leaks) too.
for ((i = 1; i <= N; i++)); do kill -TERM "${PID[i]}" 2>/dev/null; done
for ((i = 1; i <= N; i++)); do
    for _ in $(seq 1 200); do alive "$i" || break; sleep 0.1; done
    if alive "$i"; then
        kill -9 "${PID[i]}"; wait "${PID[i]}" 2>/dev/null; PID[i]=""
        fail "node $i did not stop on SIGTERM"
    fi
    st=0; wait "${PID[i]}" 2>/dev/null || st=$?; PID[i]=""
    ((st == 0)) || fail "node $i exited $st on SIGTERM"
done

fps=""
for p in "${!FP_BY_POINT[@]}"; do fps+=" $p:${FP_BY_POINT[$p]}"; done
printf 'crashloop: %s %d cycles in %ss: crashes %d (kill -9 %d, failpoint %d, %s %d)%s\n' \
    "$MODE" "$CYCLES" "$(elapsed "$T0")" $((KILLS + FP_FIRED + FP_MISSED)) "$KILLS" "$FP_FIRED" \
    "failpoint not reached" "$FP_MISSED" "${fps:+ [$fps ]}"
REC_MEAN=$(awk -v s="$REC_SUM" -v n="$CYCLES" 'BEGIN { printf "%.2f", n ? s / n : 0 }')
printf 'crashloop: acked writes %d, unknown outcome %d, keys verified %d, in doubt resolved %d,' \
    "$TOT_ACKED" "$TOT_UNKNOWN" "$TOT_VERIFIED" "$TOT_DOUBT"
printf ' lost %d, wrong %d; recovery mean %ss max %ss\n' "$TOT_LOST" "$TOT_WRONG" "$REC_MEAN" \
    "$REC_MAX"
((TOT_LOST == 0 && TOT_WRONG == 0)) || { FAILED=1; exit 1; }
echo "crashloop: PASS"
