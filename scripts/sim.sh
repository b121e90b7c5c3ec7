#!/usr/bin/env bash
# scripts/sim.sh -- seeded chaos runs of whole simulated clusters (tests/sim/chaos.h) on the
# release build, in parallel on every core (docs/testing.md, "Deterministic simulation").
#
#   scripts/sim.sh --seeds N [--from S] [--nodes K] [kvsim options]   N seeds from S (default 1)
#   scripts/sim.sh --seed N [--nodes K] [kvsim options]               replay one seed, verbose
#
# Builds build-sim-rel (Release, no sanitizers) when kvsim is missing or older than the
# sources. Any other option goes to kvsim as is (--duration, --clients, --keys, --jumps,
# --bug hint-ack, --history-dir, --digest, --twice). Prints seeds/s and every failing seed
# with the command that replays it; exit status 0 when no seed failed.
# KVSIM=path runs that binary instead (an ASan build, say) and builds nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SIM_BUILD_DIR:-$ROOT/build-sim-rel}
JOBS=${SIM_JOBS:-$(nproc 2>/dev/null || echo 2)}

args=() seed=""
while (($#)); do
    case $1 in
        --seed) seed=$2; args+=("$1" "$2"); shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

if [[ -n ${KVSIM:-} ]]; then
    bin=$KVSIM
else
    bin=$BUILD/tests/sim/kvsim
    newest=$(find "$ROOT/cluster" "$ROOT/tests/sim" "$ROOT/storage" "$ROOT/common" "$ROOT/proto" \
        -newer "$bin" -type f \( -name '*.c' -o -name '*.h' -o -name '*.proto' \) 2>/dev/null | head -1 || true)
    if [[ ! -x $bin || -n $newest ]]; then
        echo "sim.sh: building kvsim in $BUILD (Release)" >&2
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BUILD" -j"$JOBS" --target kvsim_chaos >/dev/null
    fi
fi

cd "$ROOT"
if [[ -n $seed ]]; then
    exec "$bin" --verbose --digest "${args[@]}"
fi
exec "$bin" --jobs "$JOBS" "${args[@]}"
