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
