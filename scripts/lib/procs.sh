# scripts/lib/procs.sh -- what the measuring scripts share (sourced, not run): a log line,
# free ports on 127.0.0.1, waiting for a port, and stopping a process by its PID.
# Every caller starts its own processes and stops each by PID, never by name.

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# A port nothing listens on, below the ephemeral range (32768-). Called as $(free_port),
# so it cannot remember what it handed out: a caller starting two servers before either
# binds compares the two ports itself.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# wait_port PORT PID: until something accepts on PORT (0), or PID has exited or 10 s
# passed (1).
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_pid PID: SIGTERM, up to 10 s for a clean exit, then SIGKILL; reaps it.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
