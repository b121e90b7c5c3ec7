#!/usr/bin/env bash
# scripts/deps.sh -- installs kvd's build and test dependencies (Debian 12) when missing.
# Usage: scripts/deps.sh [build|test|fuzz]   (test adds the tools only the suite needs;
# fuzz adds clang and its libFuzzer runtime for scripts/fuzz.sh, which nothing else needs)
set -euo pipefail
pkgs=(cmake make gcc g++ pkg-config protobuf-c-compiler libprotobuf-c-dev librocksdb-dev
      libuv1-dev liblz4-dev libxxhash-dev libinih-dev libmicrohttpd-dev libjansson-dev check)
if [ "${1:-build}" = test ]; then
  pkgs+=(curl iproute2 iptables procps)
fi
if [ "${1:-build}" = fuzz ]; then
  pkgs+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
