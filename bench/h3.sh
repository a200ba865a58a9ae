#!/bin/bash
# HTTP/3 benchmark: weir against caddy (Debian's, quic-go), and weir's HTTP/3
# against its own HTTP/2, on loopback.
#
#   bash bench/h3.sh [ROUNDS]          (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION
# (seconds per run, default 5), CONNS (connections, default 16), STREAMS
# (requests in flight per connection, default 10), WEIR_BIN (default
# build/weir). Needs: apt-get install -y caddy nginx nghttp2-client openssl
# curl, and builds build/bench/h3load (make bench-tools).
#
# Setup. One origin, Debian's nginx pinned to CPU 1, answers every GET with
# the same 64-byte body over HTTP/1.1 keep-alive. Each proxy runs on CPU 0
# alone: weir with core.workers 1, caddy with GOMAXPROCS=1. Both terminate
# TLS 1.3 with one ECDSA P-256 certificate and serve HTTP/1.1, HTTP/2 and
# HTTP/3 on one port (caddy: `protocols h1 h2 h3`; weir: http3 on the entry
# point). The load generators run on CPU 1 beside the origin:
#   - HTTP/3: bench/h3load (ngtcp2 + nghttp3, AES-128-GCM, X25519),
#   - HTTP/2: h2load, for weir's own h2 figure and caddy's.
# Each run is CONNS connections × STREAMS streams of GET / for DURATION
# seconds. Printed per run: req/s, p99 latency (h3load's percentiles; for
# h2load the 99th percentile of its --log-file request times), and the
# proxy's CPU time per request (utime+stime of its process tree from
# /proc/<pid>/stat over the run, divided by the successful requests).
#
# The goal the issue sets: weir's CPU per HTTP/3 request ≤ 0.33× caddy's
# and ≤ 2× weir's own HTTP/2 figure, with a lower p99 than caddy. The
# summary prints the medians over rounds and these ratios. Only 127.0.0.1
# is used; every process started is killed by PID on exit.
set -uo pipefail
cd "$(dirname "$0")/.."

R=${1:-${R:-3}}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-10}
WEIR=${WEIR_BIN:-$PWD/build/weir}
H3LOAD=$PWD/build/bench/h3load
PY=/usr/bin/python3

case "$R" in ''|*[!0-9]*|0) echo "usage: bench/h3.sh [ROUNDS]" >&2; exit 2 ;; esac
for tool in nginx caddy h2load openssl curl taskset timeout "$PY"; do
    command -v "$tool" >/dev/null || {
        echo "h3.sh: $tool is missing (apt-get install -y caddy nginx nghttp2-client openssl curl)" >&2
        exit 1
    }
done
[ -x "$WEIR" ] || { echo "h3.sh: $WEIR not found (run make)" >&2; exit 1; }
make -s bench-tools >/dev/null || { echo "h3.sh: cannot build $H3LOAD" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "h3.sh: needs 2 CPUs" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. bench/lib.sh
bench_setup h3

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    { echo "h3.sh: openssl could not make the certificate" >&2; exit 1; }

# ---------------------------------------------------------------- origin
start_origin || { echo "h3.sh: the origin does not start" >&2; exit 1; }

# ---------------------------------------------------------------- proxies
declare -A PORT PID
W_PORT=$(free_port)
cat > "$TMP/weir.yml" <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  websecure:
    address: "127.0.0.1:$W_PORT"
    http3: {}
    transport: {respondingTimeouts: {idleTimeout: 600s}}
tls:
  certificates:
    - {certFile: $TMP/cert.pem, keyFile: $TMP/key.pem}
  options:
    default:
      minVersion: VersionTLS13
      cipherSuites: [TLS_AES_128_GCM_SHA256]
      curvePreferences: [X25519]
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: origin, tls: {}}
  services:
    origin:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$O_PORT"}]
EOF
taskset -c 0 "$WEIR" --configFile "$TMP/weir.yml" > "$TMP/weir.out" 2>&1 &
PID[weir]=$!
PIDS+=("$!")
PORT[weir]=$W_PORT

C_PORT=$(free_port)
mkdir -p "$TMP/caddy"
cat > "$TMP/Caddyfile" <<EOF
{
    admin off
    auto_https off
    default_sni bench.test
    storage file_system $TMP/caddy
    servers {
        protocols h1 h2 h3
    }
}
https://bench.test:$C_PORT, https://127.0.0.1:$C_PORT {
    tls $TMP/cert.pem $TMP/key.pem
    reverse_proxy 127.0.0.1:$O_PORT
}
EOF
HOME=$TMP/caddy XDG_DATA_HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy GOMAXPROCS=1 \
    taskset -c 0 caddy run --adapter caddyfile --config "$TMP/Caddyfile" > "$TMP/caddy.out" 2>&1 &
PID[caddy]=$!
PIDS+=("$!")
PORT[caddy]=$C_PORT

for p in weir caddy; do
    wait_port "${PORT[$p]}" "${PID[$p]}" "$p" || { echo "h3.sh: $p does not start" >&2; exit 1; }
    got=$(curl -sk --http2 --max-time 5 --resolve "bench.test:${PORT[$p]}:127.0.0.1" \
        "https://bench.test:${PORT[$p]}/" 2>&1)
    [ "$got" = "$BODY" ] || { echo "h3.sh: $p does not proxy h2 (${got:0:80})" >&2; exit 1; }
    sleep 0.5 # caddy opens its UDP socket after the TCP one
    out=$(timeout 20 taskset -c 1 "$H3LOAD" -c 1 -m 1 -n 10 --sni bench.test \
        "https://127.0.0.1:${PORT[$p]}/" 2>&1)
    echo "$out" | grep -q "10 succeeded" ||
        { echo "h3.sh: $p does not serve HTTP/3: $out" >&2; exit 1; }
    echo "# $p: serves h2 and h3"
done

# ---------------------------------------------------------------- runs
declare -A RES # "$proxy:$proto:$round" -> "rps p99 cpu"
measure_h3() { # $1 proxy
    local c0 c1 out n rps p99
    c0=$(cpu_ticks "${PID[$1]}")
    out=$(taskset -c 1 "$H3LOAD" -c "$CONNS" -m "$STREAMS" -n 100000000 -D "$DURATION" \
        --sni bench.test "https://127.0.0.1:${PORT[$1]}/" 2>&1)
    c1=$(cpu_ticks "${PID[$1]}")
    n=$(echo "$out" | awk '/^requests:/ {print $6}')
    rps=$(echo "$out" | awk '/^req\/s:/ {printf "%d", $2}')
    p99=$(echo "$out" | awk '/^latency ms:/ {print $8}')
    echo "$out" | grep -q " 0 errors" || echo "   ($1 h3: $(echo "$out" | grep requests:))" >&2
    echo "$rps $p99 $(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="${n:-0}" \
        'BEGIN {printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0)}')"
}
measure_h2() { # $1 proxy
    local c0 c1 out n rps p99
    rm -f "$TMP/h2.log"
    c0=$(cpu_ticks "${PID[$1]}")
    out=$(taskset -c 1 h2load --tls13-ciphers=TLS_AES_128_GCM_SHA256 --groups=X25519 \
        -c "$CONNS" -m "$STREAMS" -D "$DURATION" --log-file="$TMP/h2.log" \
        "https://127.0.0.1:${PORT[$1]}/" 2>&1)
    c1=$(cpu_ticks "${PID[$1]}")
    n=$(echo "$out" | awk '/^requests:/ {print $8}')
    echo "$out" | grep -q " 0 failed, 0 errored" || echo "   ($1 h2: $(echo "$out" | grep '^requests:'))" >&2
    rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); printf "%d", $4}')
    p99=$(awk '{print $3 / 1000}' "$TMP/h2.log" 2>/dev/null | sort -n |
        awk '{a[NR] = $1} END {i = int(NR * 0.99 + 0.5); if (i > NR) i = NR; if (i < 1) i = 1;
             if (NR) printf "%.3f", a[i]}')
    echo "$rps $p99 $(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="${n:-0}" \
        'BEGIN {printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0)}')"
}

FMT='%-6s %-6s %5s %10s %10s %14s\n'
printf "$FMT" proxy proto round "req/s" "p99 ms" "cpu/req µs"
for r in $(seq 1 "$R"); do
    for p in weir caddy; do
        for proto in h3 h2; do
            kill -0 "${PID[$p]}" 2>/dev/null || { echo "h3.sh: $p died" >&2; exit 1; }
            res=$(measure_$proto "$p")
            RES[$p:$proto:$r]=$res
            set -- $res
            printf "$FMT" "$p" "$proto" "$r" "$1" "$2" "$3"
        done
    done
done

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { # $1 proxy $2 proto $3 field (1 rps, 2 p99, 3 cpu)
    local r
    for r in $(seq 1 "$R"); do echo "${RES[$1:$2:$r]}" | awk -v f="$3" '{print $f}'; done | median
}
echo
echo "medians over $R rounds (CONNS=$CONNS STREAMS=$STREAMS DURATION=${DURATION}s):"
printf "$FMT" proxy proto "" "req/s" "p99 ms" "cpu/req µs"
for p in weir caddy; do
    for proto in h3 h2; do
        printf "$FMT" "$p" "$proto" "" "$(col $p $proto 1)" "$(col $p $proto 2)" "$(col $p $proto 3)"
    done
done
w3=$(col weir h3 3); c3=$(col caddy h3 3); w2=$(col weir h2 3)
wp=$(col weir h3 2); cp=$(col caddy h3 2)
echo
awk -v a="$w3" -v b="$c3" 'BEGIN {printf "weir h3 cpu/req / caddy h3 cpu/req = %.2f  (goal <= 0.33)\n", a / b}'
awk -v a="$w3" -v b="$w2" 'BEGIN {printf "weir h3 cpu/req / weir h2 cpu/req  = %.2f  (goal <= 2)\n", a / b}'
awk -v a="$wp" -v b="$cp" 'BEGIN {printf "weir h3 p99 / caddy h3 p99         = %.2f  (goal < 1)\n", a / b}'
