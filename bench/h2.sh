#!/bin/bash
# HTTP/2 over TLS benchmark: weir against haproxy, nginx and h2o, on loopback.
#
#   bash bench/h2.sh [ROUNDS]          (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION
# (seconds of h2load per run, default 8), HS (connections per handshake run,
# default 400), WEIR_BIN.
#
# Every proxy terminates TLS with the same ECDSA P-256 certificate (made here
# with openssl), speaks HTTP/2 to the client (ALPN h2) and HTTP/1.1
# keep-alive to one origin: Debian's nginx answering a 64-byte body. Each
# proxy runs ONE worker pinned to CPU 0 (weir core.workers: 1, haproxy
# nbthread 1, nginx worker_processes 1, h2o num-threads 1); h2load and the
# origin are pinned to CPU 1. The client forces TLS 1.3 with
# TLS_AES_128_GCM_SHA256.
#
# Part 1, requests: h2load -c16 -m10 for DURATION seconds. Printed: req/s,
# p99 latency (from h2load's per-request log), and the proxy's CPU time per
# request (utime+stime of all its processes over the run / requests).
# Part 2, handshakes: h2load with HS clients making one request each (-n HS
# -c HS -m 1), i.e. HS full TLS handshakes (no resumption); printed:
# handshakes per second and the proxy's CPU time per handshake.
# Rounds are interleaved (each round runs every proxy once); each round ends
# with weir's ratios to the best peer. Everything started is killed by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

R=${1:-${R:-3}}
DURATION=${DURATION:-8}
HS=${HS:-400}
WEIR=${WEIR_BIN:-$PWD/build/weir}
PY=/usr/bin/python3

for tool in nginx haproxy h2o h2load openssl taskset "$PY"; do
    command -v "$tool" >/dev/null || {
        echo "h2.sh: $tool is missing (apt-get install -y nginx haproxy h2o nghttp2-client openssl)" >&2
        exit 1
    }
done
[ -x "$WEIR" ] || { echo "h2.sh: $WEIR not found: run make first" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "h2.sh: needs 2 CPUs" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d /tmp/weir-bench-h2.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # $1 port, $2 pid, $3 name; returns 1 if it never listens
    local i
    for i in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || { echo "h2.sh: $3 exited at startup" >&2; tail -5 "$TMP/$3.out" >&2; return 1; }
        "$PY" -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "h2.sh: $3 did not listen on $1" >&2
    return 1
}

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

cpu_ticks() {
    local total=0 p f
    for p in $(tree_pids "$1"); do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" > "$TMP/both.pem"
chmod 755 "$TMP"
chmod 644 "$TMP"/*.pem  # h2o reads them after dropping to its own user

# ---------------------------------------------------------------- origin
BODY=$(printf 'x%.0s' $(seq 1 63))
O_PORT=$(free_port)
mkdir -p "$TMP/origin"
cat > "$TMP/origin/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/origin/body;
    proxy_temp_path $TMP/origin/proxy;
    fastcgi_temp_path $TMP/origin/fastcgi;
    uwsgi_temp_path $TMP/origin/uwsgi;
    scgi_temp_path $TMP/origin/scgi;
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
PIDS+=("$!")
wait_port "$O_PORT" "$!" origin

# ---------------------------------------------------------------- proxies
declare -A PORT PID
start() { # $1 name, then the command
    local name=$1
    shift
    taskset -c 0 "$@" > "$TMP/$name.out" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!")
}

PORT[weir]=$(free_port)
cat > "$TMP/weir.yml" <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  websecure:
    address: "127.0.0.1:${PORT[weir]}"
    transport: {respondingTimeouts: {idleTimeout: 600s}}
tls:
  certificates:
    - {certFile: $TMP/cert.pem, keyFile: $TMP/key.pem}
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: origin, tls: {}}
  services:
    origin:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$O_PORT"}]
EOF
start weir "$WEIR" --configFile "$TMP/weir.yml"

PORT[haproxy]=$(free_port)
cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]} ssl crt $TMP/both.pem alpn h2,http/1.1
    default_backend be
backend be
    server origin 127.0.0.1:$O_PORT
EOF
start haproxy haproxy -db -f "$TMP/haproxy.cfg"

PORT[nginx]=$(free_port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    http2_max_requests 10000000;
    upstream origin { server 127.0.0.1:$O_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl http2 backlog=4096;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
start nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf"

PORT[h2o]=$(free_port)
cat > "$TMP/h2o.conf" <<EOF
num-threads: 1
user: root
listen:
  host: 127.0.0.1
  port: ${PORT[h2o]}
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
http2-idle-timeout: 600
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$O_PORT/
EOF
start h2o h2o -c "$TMP/h2o.conf"

PROXIES=()
for p in weir haproxy nginx h2o; do
    if wait_port "${PORT[$p]}" "${PID[$p]}" "$p"; then PROXIES+=("$p"); fi
done
echo "# proxies: ${PROXIES[*]}; origin nginx on CPU 1; h2load on CPU 1; proxy on CPU 0"
echo "# h2load -c16 -m10 -D $DURATION, TLS 1.3 TLS_AES_128_GCM_SHA256, 64-byte body"

H2LOAD_TLS=(--tls13-ciphers=TLS_AES_128_GCM_SHA256)

p99_ms() { # per-request log: start_us status duration_us
    awk '{print $3}' "$1" | sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}
        i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]/1000}'
}

declare -A CPU_US HS_RATE

run_requests() { # $1 proxy
    local name=$1 port=${PORT[$1]} before after out reqs rps
    before=$(cpu_ticks "${PID[$name]}")
    out=$(taskset -c 1 h2load "${H2LOAD_TLS[@]}" -c 16 -m 10 -D "$DURATION" --warm-up-time=1 \
        --log-file="$TMP/$name.lat" "https://127.0.0.1:$port/" 2>&1) || true
    after=$(cpu_ticks "${PID[$name]}")
    reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
    rps=$(echo "$out" | awk '/^finished in/ {print $4}')
    if [ -z "$reqs" ] || [ "$reqs" -le 0 ]; then
        echo "$name: no successful requests"
        echo "$out" | tail -3
        return
    fi
    CPU_US[$name]=$("$PY" -c "print(round(($after-$before)*1e6/$HZ/$reqs, 2))")
    printf "%-8s req/s %10s  p99 %6s ms  cpu/req %6s us  (%s requests)\n" \
        "$name" "$rps" "$(p99_ms "$TMP/$name.lat")" "${CPU_US[$name]}" "$reqs"
    rm -f "$TMP/$name.lat"
}

run_handshakes() { # $1 proxy
    local name=$1 port=${PORT[$1]} before after out ok secs
    before=$(cpu_ticks "${PID[$name]}")
    out=$(taskset -c 1 h2load "${H2LOAD_TLS[@]}" -n "$HS" -c "$HS" -m 1 "https://127.0.0.1:$port/" 2>&1) || true
    after=$(cpu_ticks "${PID[$name]}")
    ok=$(echo "$out" | awk '/^requests:/ {print $8}')
    secs=$(echo "$out" | awk '/^finished in/ {v=$3; sub(/,$/,"",v); if (v ~ /ms$/) {sub(/ms$/,"",v); v=v/1000} else sub(/s$/,"",v); print v}')
    if [ -z "$ok" ] || [ "$ok" -le 0 ]; then
        echo "$name: no handshakes"
        return
    fi
    HS_RATE[$name]=$("$PY" -c "print(round($ok/$secs))")
    printf "%-8s handshakes/s %8s  cpu/handshake %7s us  (%s of %s)\n" "$name" "${HS_RATE[$name]}" \
        "$("$PY" -c "print(round(($after-$before)*1e6/$HZ/$ok, 1))")" "$ok" "$HS"
}

for round in $(seq 1 "$R"); do
    CPU_US=()
    HS_RATE=()
    echo "== round $round: requests"
    for p in "${PROXIES[@]}"; do run_requests "$p"; done
    echo "== round $round: handshakes (one request per connection)"
    for p in "${PROXIES[@]}"; do run_handshakes "$p"; done
    if [ -n "${CPU_US[weir]:-}" ]; then
        best=""
        bestname=""
        for p in haproxy nginx h2o; do
            v=${CPU_US[$p]:-}
            [ -n "$v" ] || continue
            if [ -z "$best" ] || "$PY" -c "import sys; sys.exit(0 if $v < $best else 1)"; then
                best=$v
                bestname=$p
            fi
        done
        if [ -n "$best" ]; then
            echo "round $round: weir cpu/req ${CPU_US[weir]} us = $("$PY" -c "print(round(${CPU_US[weir]}/$best, 2))") x best peer ($bestname $best us)"
        fi
    fi
    if [ -n "${HS_RATE[weir]:-}" ]; then
        for p in haproxy nginx h2o; do
            if [ -n "${HS_RATE[$p]:-}" ]; then
                echo "round $round: weir handshakes/s ${HS_RATE[weir]} = $("$PY" -c "print(round(${HS_RATE[weir]}/${HS_RATE[$p]}, 2))") x $p (${HS_RATE[$p]})"
            fi
        done
    fi
done
