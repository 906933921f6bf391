# Helpers for the benchmarks that compare against the Express + BullMQ peer
# (bench/enqueue, bench/dispatch); sourced after bench/common.sh. Loopback only.

PEER_DIR="$BENCH_DIR/peer"

# npm ci of bench/peer (exact versions from its package-lock.json), skipped while the
# installed tree is from the same lock file
peer_install() {
    local stamp="$PEER_DIR/node_modules/.sb-lock.sha256" want
    want=$(sha256sum "$PEER_DIR/package-lock.json" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "peer: npm ci in $PEER_DIR"
    if ! (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "peer: npm ci failed in $PEER_DIR (the npm registry must be reachable once)" >&2
        return 1
    fi
    echo "$want" >"$stamp"
}

# redis_start DIR PORT APPENDFSYNC: a redis-server of our own on 127.0.0.1:PORT with its
# data in DIR, AOF on (appendonly yes) with the given appendfsync, no RDB snapshots.
# Sets REDIS_PID. Waits until it answers PING (10 s at most).
REDIS_PID=""
redis_start() {
    local dir=$1 port=$2 fsync=$3 i
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize no \
        --appendonly yes --appendfsync "$fsync" --save "" \
        --protected-mode yes --logfile "$dir/redis.log" &
    REDIS_PID=$!
    for ((i = 0; i < 200; i++)); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "peer: redis-server did not start on 127.0.0.1:$port:" >&2
    tail -20 "$dir/redis.log" >&2 || true
    return 1
}

# stops a pid we started: TERM, then KILL after $2 tenths of a second (default 50)
stop_pid() {
    local pid=$1 tenths=${2:-50}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

redis_stop() {
    stop_pid "$REDIS_PID" 100
    REDIS_PID=""
}

# wrk output -> "req_per_s p99_ms non2xx socket_errors requests" (as bench/ingest reads it)
wrk_parse() {
    awk '
    function ms(v) {
        if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
        if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
        if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
        return v
    }
    /^ +99%/ { p99 = ms($2) }
    /Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
    / requests in / { reqs = $1 }
    END { printf "%s %.3f %d %d %d\n", rps, p99, non2xx + 0, serr + 0, reqs + 0 }'
}

# sum of utime+stime ticks of the pids given
ticks_of() {
    local s=0 p
    for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done
    echo "$s"
}
