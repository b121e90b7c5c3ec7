#!/bin/sh
# docker/entrypoint.sh -- starts kvd with settings from the environment.
#
# Every kvd setting (see `kvd --help`) may be given as an environment variable named
# KVD_ + the setting in capitals: KVD_NODE_ID=2, KVD_SEEDS=kvd1:7379,kvd2:7379,
# KVD_REPLICATION_FACTOR=3, KVD_DEFAULT_CONSISTENCY=quorum ... The list is read from
# `kvd --help`, so a new setting needs no change here. Precedence, lowest first: the INI
# file named by KVD_CONFIG (a mounted file, e.g. /etc/kvd/kvd.conf; kvd applies --config
# before any flag), the variables, then the arguments given to the container
# (`docker run kvd-node --log-level debug`).
# KVD_ADVERTISE defaults to this container's host name and the listen port, which other
# containers on the same user-defined network resolve.
# Arguments that do not start with '-' run that command instead (kvctl, sh, ...).
set -eu
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi
if [ -z "${KVD_ADVERTISE:-}" ]; then
  KVD_ADVERTISE="$(hostname):${KVD_LISTEN##*:}"
  export KVD_ADVERTISE
fi
# Appends the flags after the container's own arguments, then rotates those to the end,
# so that they win; values are kept whole (no word splitting).
n=$#
for setting in $(kvd --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p'); do
  var="KVD_$(printf '%s' "$setting" | tr 'a-z-' 'A-Z_')"
  eval "val=\${$var:-}"
  if [ -n "$val" ]; then
    set -- "$@" "--$setting=$val"
  fi
done
if [ -n "${KVD_CONFIG:-}" ]; then
  set -- "$@" "--config=$KVD_CONFIG"
fi
i=0
while [ "$i" -lt "$n" ]; do
  set -- "$@" "$1"
  shift
  i=$((i + 1))
done
exec kvd "$@"
