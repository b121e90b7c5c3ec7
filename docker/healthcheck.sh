#!/bin/bash
# docker/healthcheck.sh -- HEALTHCHECK: GET /health on the node's http port answers 200.
# The runtime image has no curl: bash's /dev/tcp does the one request. The port comes from
# KVD_HTTP (the same variable the entrypoint turns into --http).
set -u
http=${KVD_HTTP:-0.0.0.0:7380}
port=${http##*:}
host=${http%:*}
case $host in 0.0.0.0|"") host=127.0.0.1 ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
IFS= read -r -t 2 status <&3 || exit 1
case $status in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "kvd /health: $status" >&2; exit 1 ;;
esac
