# Shared by the benchmarks (sourced, not run): a temporary directory and
# the PIDs to kill on exit, free ports, waiting for a listener, and the CPU
# time of a process tree. The sourcing script sets PY and calls
# bench_setup NAME first.

bench_setup() { # $1 = short name for the temporary directory
    TMP=$(mktemp -d "/tmp/weir-bench-$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for 127.0.0.1:$1; returns 1 (with a note on stdout) when
# process $2, named $3 (its output in $TMP/$3.out), exits or never listens.
wait_port() {
    local i
    for i in $(seq 1 100); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "# $3: exited at startup; last lines of its output:"
            tail -5 "$TMP/$3.out" 2>/dev/null | sed 's/^/#    /'
            return 1
        fi
        "$PY" -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# $3: did not listen on 127.0.0.1:$1 within 10 s"
    return 1
}

# Process tree of a PID (the PID and all descendants), one per line.
tree_pids() {
    local queue=("$1") p c
    while [ ${#queue[@]} -gt 0 ]; do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        [ -d "/proc/$p" ] || continue
        echo "$p"
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do queue+=("$c"); done
    done
}

# utime+stime in clock ticks of a process tree (all threads included).
cpu_ticks() {
    local total=0 p f
    for p in $(tree_pids "$1"); do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after "pid (comm) ": state=1 ... utime=12 stime=13
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)

# Runs wrk (pinned to CPU 1) at URL $3 while measuring the CPU of the
# process tree of PID $2; $1 names the proxy in messages. Sets RPS, P99,
# REQS and CPU (µs of proxy CPU per request) and prints wrk's error lines.
# With $4, that command runs every 0.5 s while wrk does (sampling).
# Uses CONNS and DURATION; exits when wrk fails.
wrk_measure() {
    local name=$1 pid=$2 url=$3 sample=${4:-} c0 c1 out wrk_pid
    c0=$(cpu_ticks "$pid")
    taskset -c 1 wrk -c"$CONNS" -d"$DURATION" -t1 --latency "$url" > "$TMP/wrk.out" 2>&1 &
    wrk_pid=$!
    while [ -n "$sample" ] && kill -0 "$wrk_pid" 2>/dev/null; do
        $sample
        sleep 0.5
    done
    wait "$wrk_pid" || true
    c1=$(cpu_ticks "$pid")
    out=$(cat "$TMP/wrk.out")
    RPS=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
    P99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    REQS=$(awk '/requests in/ {print $1}' <<< "$out")
    if [ -z "$RPS" ] || [ -z "$REQS" ] || [ "$REQS" -eq 0 ]; then
        echo "wrk against $name failed:" >&2
        echo "$out" >&2
        exit 1
    fi
    if grep -q "Non-2xx\|Socket errors" <<< "$out"; then
        echo "   ($name: $(grep 'Non-2xx\|Socket errors' <<< "$out" | tr -s ' '))"
    fi
    CPU=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$REQS" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
}

# a / b with two decimals ("n/a" when b is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

# The origin every HTTP benchmark uses: Debian's nginx, one worker pinned to
# CPU 1, answering every request with the same 64-byte body (BODY, 63 x and
# a newline) over HTTP/1.1 keep-alive. Sets BODY, O_PORT and ORIGIN_PID;
# returns 1 when it does not start. $1: worker_connections (default 8192).
start_origin() {
    local conns=${1:-8192}
    BODY=$(printf 'x%.0s' $(seq 1 63))
    O_PORT=$(free_port)
    mkdir -p "$TMP/origin"
    cat > "$TMP/origin/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((conns + 100));
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/error.log error;
events { worker_connections $conns; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/origin")
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$O_PORT backlog=4096;
        location / { return 200 "$BODY\n"; }
    }
}
EOF
    taskset -c 1 nginx -p "$TMP/origin" -e "$TMP/origin/error.log" -c "$TMP/origin/nginx.conf" \
        > "$TMP/origin.out" 2>&1 &
    ORIGIN_PID=$!
    PIDS+=("$ORIGIN_PID")
    wait_port "$O_PORT" "$ORIGIN_PID" origin
}

# "busy total" jiffies of cpu0 and cpu1 from /proc/stat: "b0 t0 b1 t1".
cpu_stat() {
    awk '$1 == "cpu0" || $1 == "cpu1" { t = 0; for (i = 2; i <= NF; i++) t += $i;
         printf "%d %d ", t - $5 - $6, t }' /proc/stat
}
busy_pct() { # $1 before, $2 after (cpu_stat); prints "c0 c1" percentages
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        for (i = 1; i <= 3; i += 2) { dt = y[i+1] - x[i+1];
            printf "%s%d", (i > 1 ? " " : ""), (dt > 0 ? 100 * (y[i] - x[i]) / dt + 0.5 : 0) } }'
}

now() { date +%s.%N; }
proxy_pct() { # $1 ticks, $2 $3 wall clock start and end: the proxy's share of one CPU
    awk -v t="$1" -v hz="$HZ" -v a="$2" -v b="$3" 'BEGIN {printf "%d", (b > a ? 100 * t / hz / (b - a) + 0.5 : 0)}'
}

# Drops proxy $1 from PROXIES when its process (PID[$1]) has died, with the
# last lines of its output ($TMP/$1.out); returns 1 then.
alive() { # $1 name: drops a proxy that died
    local p
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    echo "   ($1 died; last lines of its output:)"
    tail -5 "$TMP/$1.out" 2>/dev/null | sed 's/^/   /'
    local keep=()
    for p in "${PROXIES[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PROXIES=("${keep[@]}")
    return 1
}

# The *_temp_path lines of an nginx http block keeping its files under $1.
nginx_temp_paths() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do
        printf '    %s_temp_path %s/%s;\n' "$t" "$1" "${t#client_}"
    done
}
