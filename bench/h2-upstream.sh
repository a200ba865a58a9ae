#!/bin/bash
# HTTP/2 to backends: HTTP/1.1 clients (wrk) through the proxy to an h2c
# backend (Debian's nghttpd), all on loopback.
#
#   bash bench/h2-upstream.sh [ROUNDS]   (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION (wrk
# run length, default 8s), CONNS (wrk connections, default 64), WEIR_BIN.
#
# The backend is nghttpd --no-tls (h2c with prior knowledge only) serving a
# 64-byte file, pinned to CPU 1 with wrk. Each proxy runs ONE worker pinned
# to CPU 0 and speaks HTTP/2 to the backend:
#   weir     server url h2c://...
#   haproxy  server ... proto h2, http-reuse always
#   nginx    grpc_pass grpc://... (nginx's only HTTP/2 upstream; it opens one
#            stream per connection, so it shows what multiplexing saves)
#   h2o      only if its version can use HTTP/2 upstream (proxy.http2.ratio,
#            2.3 and later); Debian's 2.2 cannot, and nghttpd answers no
#            HTTP/1.1, so it is left out with a note.
# Rounds are interleaved. Each run prints req/s, p99, the proxy's CPU time
# per request (utime+stime of its processes over the run / requests) and the
# number of the proxy's established backend connections during the run (the
# most seen in samples taken every 0.5 s). Each round ends with weir's cpu/req against
# the best peer of that round; the goal is <= 0.80.
#
# Every process this script starts is killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

R=${1:-${R:-3}}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
WEIR=${WEIR_BIN:-$PWD/build/weir}
PY=/usr/bin/python3

for tool in nghttpd haproxy nginx wrk taskset ss curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "h2-upstream.sh: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "$WEIR" ] || { echo "h2-upstream.sh: $WEIR not found: run make first" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
    echo "h2-upstream.sh: needs 2 CPUs (proxy on CPU 0, wrk and backend on CPU 1)" >&2
    exit 1
fi

. bench/lib.sh
bench_setup h2up

# ---------------------------------------------------------------- backend
BODY=$(printf 'x%.0s' $(seq 1 63))
mkdir -p "$TMP/htdocs"
printf '%s\n' "$BODY" > "$TMP/htdocs/index.html"
B_PORT=$(free_port)
taskset -c 1 nghttpd --no-tls -d "$TMP/htdocs" "$B_PORT" > "$TMP/backend.out" 2>&1 &
B_PID=$!
PIDS+=("$B_PID")
wait_port "$B_PORT" "$B_PID" backend || exit 1

# ---------------------------------------------------------------- proxies
W_PORT=$(free_port)
cat > "$TMP/weir.yml" <<EOF
core:
  workers: 1
log:
  level: ERROR
entryPoints:
  web:
    address: "127.0.0.1:$W_PORT"
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: backend
  services:
    backend:
      loadBalancer:
        servers:
          - url: "h2c://127.0.0.1:$B_PORT"
EOF
taskset -c 0 "$WEIR" --configFile "$TMP/weir.yml" > "$TMP/weir.out" 2>&1 &
W_PID=$!
PIDS+=("$W_PID")

H_PORT=$(free_port)
cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$H_PORT
    default_backend be
backend be
    server backend 127.0.0.1:$B_PORT proto h2
EOF
taskset -c 0 haproxy -db -f "$TMP/haproxy.cfg" > "$TMP/haproxy.out" 2>&1 &
H_PID=$!
PIDS+=("$H_PID")

N_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/nginx")
    keepalive_requests 10000000;
    upstream backend {
        server 127.0.0.1:$B_PORT;
        keepalive 128;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$N_PORT backlog=4096;
        location / { grpc_pass grpc://backend; }
    }
}
EOF
taskset -c 0 nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    > "$TMP/nginx.out" 2>&1 &
N_PID=$!
PIDS+=("$N_PID")

NAMES=(weir haproxy nginx)
declare -A PORT=([weir]=$W_PORT [haproxy]=$H_PORT [nginx]=$N_PORT)
declare -A PID=([weir]=$W_PID [haproxy]=$H_PID [nginx]=$N_PID)

# h2o: only when it can speak HTTP/2 to the backend.
H2O_VERSION=$(h2o -v 2>/dev/null | awk 'NR == 1 {print $3}' || true)
if [ -n "$H2O_VERSION" ] && [ "$(printf '%s\n2.3\n' "$H2O_VERSION" | sort -V | head -1)" = 2.3 ]; then
    O_PORT=$(free_port)
    cat > "$TMP/h2o.conf" <<EOF
num-threads: 1
listen:
  host: 127.0.0.1
  port: $O_PORT
access-log: /dev/null
error-log: $TMP/h2o.err
proxy.http2.ratio: 100
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$B_PORT/
EOF
    taskset -c 0 h2o -c "$TMP/h2o.conf" > "$TMP/h2o.out" 2>&1 &
    O_PID=$!
    PIDS+=("$O_PID")
    NAMES+=(h2o)
    PORT[h2o]=$O_PORT
    PID[h2o]=$O_PID
else
    echo "# h2o ${H2O_VERSION:-not installed}: no HTTP/2 upstream before 2.3 (proxy.http2.ratio)," \
        "and nghttpd answers no HTTP/1.1: left out"
fi

for name in "${NAMES[@]}"; do
    wait_port "${PORT[$name]}" "${PID[$name]}" "$name" || exit 1
    got=$(curl -s --max-time 5 "http://127.0.0.1:${PORT[$name]}/index.html" || true)
    if [ "$got" != "$BODY" ]; then
        echo "h2-upstream.sh: $name does not proxy to the h2c backend (got: ${got:0:80})" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------- runs
echo "== wrk -c$CONNS -d$DURATION -t1 --latency (HTTP/1.1) -> proxy (CPU 0) -> nghttpd h2c (CPU 1), $R rounds"
printf '%-8s %5s %12s %10s %14s %10s\n' proxy round "req/s" p99 "cpu/req (us)" "backend conns"

backend_conns() { # $1 = proxy PID: its established connections to the backend
    local re
    re=$(tree_pids "$1" | sed 's/.*/pid=&,/' | paste -sd'|')
    ss -Htnp state established "( dport = :$B_PORT )" 2>/dev/null | grep -cE "$re" || true
}

MOST=0
sample_conns() { # the most backend connections of the proxy under test
    local n
    n=$(backend_conns "${PID[$CURRENT]}")
    [ "$n" -gt "$MOST" ] && MOST=$n
    return 0
}

run_one() { # $1 = name, $2 = round; sets CPU_<name>
    CURRENT=$1
    MOST=0
    wrk_measure "$1" "${PID[$1]}" "http://127.0.0.1:${PORT[$1]}/index.html" sample_conns
    printf '%-8s %5s %12s %10s %14s %10s\n' "$1" "$2" "$RPS" "$P99" "$CPU" "$MOST"
    eval "CPU_$1=$CPU"
}

for round in $(seq 1 "$R"); do
    for name in "${NAMES[@]}"; do
        run_one "$name" "$round"
        sleep 1 # let idle backend connections settle between proxies
    done
    best=""
    best_name=""
    for name in "${NAMES[@]}"; do
        [ "$name" = weir ] && continue
        v=$(eval echo "\$CPU_$name")
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN {exit !(a < b)}'; then
            best=$v
            best_name=$name
        fi
    done
    echo "   round $round: weir cpu/req / best peer ($best_name) = $(ratio "$CPU_weir" "$best") (goal <= 0.80);" \
        " weir/haproxy $(ratio "$CPU_weir" "$CPU_haproxy"), weir/nginx $(ratio "$CPU_weir" "$CPU_nginx")"
done
