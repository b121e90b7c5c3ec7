#!/usr/bin/env bash
# scripts/fuzz.sh -- builds the clang libFuzzer build and runs one fuzz target.
# Usage: scripts/fuzz.sh TARGET SECONDS [--merge] [libFuzzer flags...]
#   TARGET   one of tests/fuzz/*.c that defines LLVMFuzzerTestOneInput (frame_req, peer,
#            record, hint, scan, config, client_resp, disk_state)
#   SECONDS  -max_total_time; 0 = no time bound (pass -runs=N then)
#   --merge  afterwards, minimise tests/fuzz/corpus/TARGET with -merge=1 over it and what
#            this run found (the committed corpus stays small)
# New inputs go to $BUILD/fuzz-work/TARGET (not committed); the committed seeds in
# tests/fuzz/corpus/TARGET are read too. Crashes, leaks, timeouts and OOMs are written to
# tests/fuzz/crashes/TARGET/ -- commit them: the default suite replays them forever.
# Env: KV_FUZZ_BUILD (default build-fuzz-clang), CC/CXX (default clang/clang++).
# Needs clang and libclang-rt-14-dev (scripts/deps.sh fuzz installs them). docs/testing.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  sed -n 2,14p "$0" >&2
  exit 2
fi
target=$1 secs=$2
shift 2
merge=0
if [ "${1:-}" = --merge ]; then merge=1; shift; fi
[ -f "$root/tests/fuzz/$target.c" ] || { echo "fuzz.sh: no target tests/fuzz/$target.c" >&2; exit 2; }
build=${KV_FUZZ_BUILD:-$root/build-fuzz-clang}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DKV_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j"${KV_FUZZ_JOBS:-2}" --target "fuzz_$target" >/dev/null
bin="$build/tests/fuzz/fuzz_$target"
corpus="$root/tests/fuzz/corpus/$target"
crashes="$root/tests/fuzz/crashes/$target"
work="$build/fuzz-work/$target"
mkdir -p "$corpus" "$crashes" "$work"
log="$build/fuzz-work/$target.log"
# The targets that hold a simulated cluster keep state across inputs (stores, members), so
# libFuzzer's per-input leak check would stop the world with LSan on most inputs; they run
# without it (leaks are still caught by the replay in the default suite, under LSan).
leak_flag=()
case $target in peer|scan|hint|disk_state) leak_flag=(-detect_leaks=0) ;; esac
time_flag=()
[ "$secs" != 0 ] && time_flag=(-max_total_time="$secs")
echo "fuzz.sh: $target for ${secs}s, log $log" >&2
# A smaller ASan quarantine keeps the targets that hold RocksDB stores under the rss limit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64}
rc=0
"$bin" "$work" "$corpus" "${time_flag[@]}" -rss_limit_mb=512 -timeout=25 \
  -artifact_prefix="$crashes/" -print_final_stats=1 "${leak_flag[@]}" "$@" >"$log" 2>&1 || rc=$?
# The last status line carries cov: (edges) and ft: (features); the final stats the count.
last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "fuzz.sh: $target: executions ${execs:-?}; ${last:-no status line}"
if [ $rc -ne 0 ]; then
  echo "fuzz.sh: $target: libFuzzer exited $rc -- finding(s) in $crashes:" >&2
  ls -1 "$crashes" >&2 || true
  grep -E 'ERROR|SUMMARY|property failed' "$log" | head -5 >&2 || true
fi
if [ $merge = 1 ]; then
  fresh="$build/fuzz-work/$target.merged"
  rm -rf "$fresh" && mkdir -p "$fresh"
  "$bin" -merge=1 -rss_limit_mb=512 "$fresh" "$corpus" "$work" >"$log.merge" 2>&1
  rm -rf "$corpus" && mv "$fresh" "$corpus"
  echo "fuzz.sh: $target: corpus merged to $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
fi
exit $rc
