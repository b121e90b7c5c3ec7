#!/usr/bin/env bash
# scripts/run.sh -- builds kvd (release) and starts one node in the foreground.
# Data goes to ./kvd-data unless --data-dir is given; extra arguments go to kvd
# (see build/server/kvd --help). Stop it with Ctrl-C (a clean shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKV_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "kvd: client port 127.0.0.1:7379, metrics http://127.0.0.1:7380/metrics; try: build/client/kvctl put hello world" >&2
exec build/server/kvd "$@"
