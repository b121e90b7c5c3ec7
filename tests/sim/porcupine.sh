#!/usr/bin/env bash
# tests/sim/porcupine.sh KVSIM CHECKER_SRC WORKDIR -- ctest sim_chaos_porcupine: the
# histories of a few chaos seeds through jepsen/checker (porcupine). Exit 77 (skipped)
# without a Go toolchain or when the checker cannot be built (no module cache, no proxy).
set -euo pipefail
KVSIM=$1 SRC=$2 WORK=$3
SEEDS=${SIM_PORCUPINE_SEEDS:-20}
GO=${KVSIM_GO:-}
[[ -n $GO && -x $GO ]] || GO=$(command -v go || true)
[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n $GO ]] || { echo "no Go toolchain: skipped"; exit 77; }
rm -rf "$WORK" && mkdir -p "$WORK/hist"
(cd "$SRC" && GOFLAGS=-mod=mod "$GO" build -o "$WORK/checker" .) >"$WORK/go.log" 2>&1 ||
    { echo "cannot build jepsen/checker: $(tail -3 "$WORK/go.log")"; exit 77; }
"$KVSIM" --seeds "$SEEDS" --from 1 --history-dir "$WORK/hist"
rc=0
for h in "$WORK"/hist/seed-*.jsonl; do
    s=$(basename "$h" .jsonl)
    if ! "$WORK/checker" -history "$h" -level linearizable -out "$WORK/$s" >/dev/null \
        2>"$WORK/$s.err"; then
        echo "FAIL $s: jepsen/checker says: $(cat "$WORK/$s.err") (exit bits: see checker main.go)"
        echo "  replay: scripts/sim.sh --seed ${s#seed-}"
        rc=1
    fi
done
n=$(ls "$WORK"/hist/seed-*.jsonl | wc -l)
echo "porcupine: $n histories checked, $( ((rc)) && echo "some FAILED" || echo "all linearizable")"
exit $rc
