# Helpers shared by the bash benchmarks (sourced, not run). Loopback only.
# SB_BUILD may name another build directory (default: build/ of this checkout).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
SB_BUILD=$(cd "$ROOT" && realpath -m "${SB_BUILD:-build}")
DAEMON="$SB_BUILD/switchboard"
SIM="$SB_BUILD/sim-worker"
CLK_TCK=$(getconf CLK_TCK)

bench_need() {
    local missing=()
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    if [ "${#missing[@]}" -ne 0 ]; then
        echo "bench: missing ${missing[*]}; run 'scripts/setup --bench' (or 'make bench')" >&2
        exit 2
    fi
    if [ ! -x "$DAEMON" ] || [ ! -x "$SIM" ]; then
        echo "bench: $DAEMON or $SIM is missing; run 'make' first" >&2
        exit 2
    fi
}

# a free TCP port on 127.0.0.1 (the kernel picks it; the small race is acceptable here)
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close();});'
}

# utime+stime of a pid in clock ticks (fields 14 and 15 of /proc/pid/stat)
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    # after "comm) ": field 3 is the state, so utime (14) is word 12, stime (15) word 13
    awk '{print $12 + $13}' <<<"$stat"
}

# VmRSS of a pid in KiB
rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# hex HMAC-SHA256(key, message), the key used as bytes of the string (node, not the
# openssl CLI, which scripts/setup does not install)
hmac_hex() {
    node -e 'process.stdout.write(require("crypto").createHmac("sha256", process.argv[1]).update(process.argv[2]).digest("hex"))' "$1" "$2"
}

# waits until a URL answers 200, at most $2 seconds; 0 or 1
wait_http_200() {
    local url=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = "200" ]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# pids of the processes carrying SWITCHBOARD_INSTANCE=$1 in their environment (a daemon's workers)
instance_pids() {
    local inst=$1 d
    [ -n "$inst" ] || return 0
    for d in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qx "SWITCHBOARD_INSTANCE=$inst"; then
            echo "${d#/proc/}"
        fi
    done
}

# SIGKILL every worker (and its process group) of the daemon instance whose DATA_DIR is $1
kill_instance_workers() {
    local data=$1 inst p n=0
    inst=$(cat "$data/instance_id" 2>/dev/null) || return 0
    for p in $(instance_pids "$inst"); do
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
        n=$((n + 1))
    done
    [ "$n" -eq 0 ] || echo "bench: killed $n leftover worker process(es)" >&2
}

# machine facts, one per line
machine_info() {
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc:   $(nproc)"
    echo "memory:  $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:  $(uname -sr)"
    echo "cpu:     $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "gcc:     $(gcc --version 2>/dev/null | head -1)"
    echo "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "wrk:     $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    echo "node:    $(node --version 2>/dev/null)"
    echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src workers 2>/dev/null || echo ' (src/ or workers/ modified in the working tree)')"
}

# raises the open-files limit and checks that $1 more worker processes fit under the
# per-user limit, pid_max and the cgroup's pids.max (exit 2 when not); $2 names the
# benchmark in messages. The daemon keeps one keep-alive connection per worker plus one
# outbound /health connection per worker during a watchdog sweep (it raises its own soft
# limit to the hard one); the node driver talks to every worker too.
bench_worker_limits() {
    local N=$1 name=$2 hard nproc_lim pid_max cg pids_max running lim
    hard=$(ulimit -Hn)
    if [ "$hard" != "unlimited" ] && [ "$hard" -lt $((3 * N + 256)) ]; then
        echo "$name: warning: the hard open-files limit is $hard; $((3 * N + 256)) or more is advisable for $N workers" >&2
    fi
    ulimit -n "$hard" 2>/dev/null || true
    nproc_lim=$(ulimit -u)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    cg=$(awk -F: '$2 == "pids" {print $3}' /proc/self/cgroup 2>/dev/null | head -1)
    pids_max=$(cat "/sys/fs/cgroup/pids${cg}/pids.max" 2>/dev/null || cat "/sys/fs/cgroup${cg}/pids.max" 2>/dev/null || echo "?")
    running=$(ls -d /proc/[0-9]* | wc -l)
    echo "limits: open files $(ulimit -n) (hard $hard), user processes $nproc_lim, pid_max $pid_max, cgroup pids.max $pids_max, processes now $running"
    for lim in "$nproc_lim" "$pid_max" "$pids_max"; do
        case "$lim" in unlimited | max | \? | 9223372036854771712) continue ;; esac
        if [ "$lim" -lt $((running + N + 64)) ]; then
            echo "$name: a process limit ($lim) is too low for $N more workers; raise it (ulimit -u, kernel.pid_max, pids.max)" >&2
            exit 2
        fi
    done
    echo "machine: $(nproc) cores, $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
}

# on exit: stops the daemon whose pid is in $1/daemon.pid and every simulator of the
# instance in $1/data, then removes $1 (kept with SB_KEEP=1); $2 names the benchmark
bench_instance_trap() {
    BENCH_TMP=$1
    BENCH_NAME=$2
    trap bench_instance_cleanup EXIT
    trap 'exit 130' INT TERM
}
bench_instance_cleanup() {
    set +e
    local pid
    pid=$(cat "$BENCH_TMP/daemon.pid" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    kill_instance_workers "$BENCH_TMP/data"
    if [ -n "${SB_KEEP:-}" ]; then echo "$BENCH_NAME: kept $BENCH_TMP"; else rm -rf "$BENCH_TMP"; fi
}
