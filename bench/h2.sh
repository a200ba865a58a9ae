#!/bin/bash
# HTTP/2 over TLS benchmark: weir against haproxy, nginx and h2o, on loopback.
#
#   bash bench/h2.sh [ROUNDS]          (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION
# (seconds of h2load per request run, default 5), HS_TIME (seconds of
# handshakes per run, default 3), HS_CONNS (connections per h2load batch in
# the handshake phase, default 100), WEIR_BIN (default build/weir).
# Needs: apt-get install -y nginx haproxy h2o nghttp2-client openssl curl
#
# Setup. The script makes an ECDSA P-256 certificate with openssl. Every
# proxy terminates TLS 1.3 with it, speaks HTTP/2 to the client (ALPN h2)
# and HTTP/1.1 keep-alive to one origin: Debian's nginx on CPU 1 answering
# `return 200` with a 64-byte body, so every proxy forwards the same 64-byte
# response to a GET without a body (a 64-byte POST body would also measure
# how each proxy buffers request bodies, which differs by default: nginx
# reads a whole body before it connects upstream; GET keeps all four on the
# same path). Each proxy runs ONE worker pinned to CPU 0
# (weir core.workers: 1, haproxy nbthread 1, nginx worker_processes 1, h2o
# num-threads 1); h2load and the origin are pinned to CPU 1. The client
# offers only TLS_AES_128_GCM_SHA256 and X25519 (h2load --tls13-ciphers,
# --groups); the servers are also limited to TLS 1.3, that suite and X25519
# where their configuration allows it (weir tls.options, haproxy
# ssl-default-bind-*, nginx ssl_protocols/ssl_conf_command/ssl_ecdh_curve;
# h2o 2.2 only takes minimum-version). What each proxy negotiated is printed
# before the runs (from h2load's "TLS Protocol/Cipher/Server Temp Key").
#
# Part 1, requests: h2load -c16 -m10 -D DURATION (16 connections, 10 streams
# each, GET /). Printed per run: req/s (h2load), p99 latency (h2load prints no
# percentiles, so it is the 99th percentile of the per-request times of
# h2load --log-file), the proxy's CPU time per request (utime+stime of all its
# processes and threads from /proc/<pid>/stat over the run, divided by the
# requests h2load counts as succeeded). Three load columns tell what bounded
# the run: proxy % (the proxy's CPU time / wall time), cpu0 % and cpu1 % (how
# busy CPU 0 and CPU 1 were, from /proc/stat). cpu0 % well above proxy %
# means something else ran on CPU 0 (the run is disturbed); cpu1 % near 100
# with proxy % below it means h2load + origin were the bottleneck, so req/s
# is the client's limit and cpu/req is the figure that compares proxies.
#
# Part 2, TLS handshakes, one request per connection: h2load cannot open a new
# connection per request, so each run repeats `h2load -c HS_CONNS -n HS_CONNS
# -m1` (HS_CONNS clients making exactly one request each: HS_CONNS full
# handshakes, h2load does not resume sessions) until HS_TIME seconds have
# passed. handshakes/s = handshakes that completed a 2xx request / the sum of
# the "finished in" times h2load reports (h2load's start-up between batches
# is not counted); cpu/handshake = the proxy's CPU time over the run /
# handshakes. An OpenSSL 3 client handshake costs h2load more CPU than the
# server's handshake costs the proxy (about 500 us against 300 us when this
# was written), so CPU 1 saturates first: handshakes/s is then the client's
# limit (the load columns show it) and cpu/handshake compares the proxies.
#
# Rounds are interleaved (each round runs every proxy once). Each round ends
# with weir's ratios to the best peer (lowest cpu/req, highest req/s, highest
# handshakes/s, lowest cpu/handshake); the summary gives medians over rounds
# and the same ratios. A proxy that fails to start, to serve the sanity
# request, or dies during a run is reported and left out; the others go on.
# Only 127.0.0.1 is used; every process started is killed by PID on exit.
set -uo pipefail
cd "$(dirname "$0")/.."

R=${1:-${R:-3}}
DURATION=${DURATION:-5}
HS_TIME=${HS_TIME:-3}
HS_CONNS=${HS_CONNS:-100}
WEIR=${WEIR_BIN:-$PWD/build/weir}
PY=/usr/bin/python3
PEERS=(haproxy nginx h2o)

case "$R" in ''|*[!0-9]*|0) echo "usage: bench/h2.sh [ROUNDS]" >&2; exit 2 ;; esac
for tool in nginx h2load openssl curl taskset timeout "$PY"; do
    command -v "$tool" >/dev/null || {
        echo "h2.sh: $tool is missing (apt-get install -y nginx haproxy h2o nghttp2-client openssl curl)" >&2
        exit 1
    }
done
[ "$(nproc)" -ge 2 ] || { echo "h2.sh: needs 2 CPUs (proxy on CPU 0, h2load and origin on CPU 1)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. bench/lib.sh
bench_setup h2

FMT_REQ='%-8s %5s %10s %9s %13s %8s %7s %7s\n'
FMT_HS='%-8s %5s %13s %12s %8s %7s %7s %11s\n'

# ---------------------------------------------------------------- certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    { echo "h2.sh: openssl could not make the certificate" >&2; exit 1; }
cat "$TMP/cert.pem" "$TMP/key.pem" > "$TMP/both.pem"

# ---------------------------------------------------------------- origin
start_origin || { echo "h2.sh: the origin does not start" >&2; exit 1; }

# ---------------------------------------------------------------- proxies
declare -A PORT PID NOTE
start() { # $1 name, then the command (run pinned to CPU 0)
    local name=$1
    shift
    taskset -c 0 "$@" > "$TMP/$name.out" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!")
}

# weir: Traefik-style static file with the dynamic part inline.
PORT[weir]=$(free_port)
weir_conf() { # $1 = 1 to add tls.options.default
    cat <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  websecure:
    address: "127.0.0.1:${PORT[weir]}"
    transport: {respondingTimeouts: {idleTimeout: 600s}}
tls:
  certificates:
    - {certFile: $TMP/cert.pem, keyFile: $TMP/key.pem}
EOF
    [ "$1" = 1 ] && cat <<EOF
  options:
    default:
      minVersion: VersionTLS13
      cipherSuites: [TLS_AES_128_GCM_SHA256]
      curvePreferences: [X25519]
EOF
    cat <<EOF
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: origin, tls: {}}
  services:
    origin:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$O_PORT"}]
EOF
}
if [ ! -x "$WEIR" ]; then
    NOTE[weir]="$WEIR not found (run make)"
else
    weir_conf 1 > "$TMP/weir.yml"
    if ! timeout 10 "$WEIR" --check --configFile "$TMP/weir.yml" > "$TMP/weir.check" 2>&1; then
        weir_conf 0 > "$TMP/weir0.yml"
        if timeout 10 "$WEIR" --check --configFile "$TMP/weir0.yml" > /dev/null 2>&1; then
            echo "# weir: tls.options refused ($(head -1 "$TMP/weir.check")); running without them"
            mv "$TMP/weir0.yml" "$TMP/weir.yml"
        else
            NOTE[weir]="--check refuses the configuration: $(head -1 "$TMP/weir.check" | grep . || echo "(no message)")"
        fi
    fi
    [ -n "${NOTE[weir]:-}" ] || start weir "$WEIR" --configFile "$TMP/weir.yml"
fi

if command -v haproxy >/dev/null; then
    PORT[haproxy]=$(free_port)
    cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
    ssl-default-bind-options ssl-min-ver TLSv1.3
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
    ssl-default-bind-curves X25519
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
else
    NOTE[haproxy]="haproxy is not installed"
fi

PORT[nginx]=$(free_port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 20000; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/nginx")
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    upstream origin {
        server 127.0.0.1:$O_PORT;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl http2 backlog=4096;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_ecdh_curve X25519;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
start nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf"

if command -v h2o >/dev/null; then
    PORT[h2o]=$(free_port)
    # user: root keeps h2o from switching to "nobody" (which could not read
    # the key in $TMP). Debian's h2o 2.2 has no TLS 1.3 cipher-suite setting.
    cat > "$TMP/h2o.conf" <<EOF
num-threads: 1
user: root
pid-file: $TMP/h2o.pid
error-log: $TMP/h2o.err
listen:
  host: 127.0.0.1
  port: ${PORT[h2o]}
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
    minimum-version: TLSv1.3
    ocsp-update-interval: 0
http2-idle-timeout: 600
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$O_PORT/
EOF
    start h2o h2o -c "$TMP/h2o.conf"
else
    NOTE[h2o]="h2o is not installed"
fi

H2LOAD_TLS=(--tls13-ciphers=TLS_AES_128_GCM_SHA256 --groups=X25519)

PROXIES=()
for p in weir haproxy nginx h2o; do
    if [ -n "${NOTE[$p]:-}" ]; then
        echo "# $p: skipped: ${NOTE[$p]}"
        continue
    fi
    wait_port "${PORT[$p]}" "${PID[$p]}" "$p" || continue
    # Sanity check: h2 over TLS, the origin's 64-byte body, and what TLS was negotiated.
    got=$(curl -sk --http2 --max-time 5 -w '|%{http_version}' "https://127.0.0.1:${PORT[$p]}/" 2>&1)
    if [ "$got" != "$BODY"$'\n|2' ]; then
        echo "# $p: does not serve h2 over TLS correctly (curl: ${got:0:100}); skipped"
        continue
    fi
    tls=$(timeout 10 taskset -c 1 h2load "${H2LOAD_TLS[@]}" -n1 -c1 "https://127.0.0.1:${PORT[$p]}/" 2>&1 |
        awk -F': ' '/^TLS Protocol:|^Cipher:|^Server Temp Key:|^Application protocol:/ {printf "%s ", $2}')
    if [ -z "$tls" ]; then
        echo "# $p: h2load cannot connect with TLS 1.3/TLS_AES_128_GCM_SHA256/X25519; skipped"
        continue
    fi
    echo "# $p: ok, negotiated: $tls"
    PROXIES+=("$p")
done
[ ${#PROXIES[@]} -gt 0 ] || { echo "h2.sh: no proxy serves; nothing to measure" >&2; exit 1; }

# Results: one line per run in $TMP/res.<phase>, "name round v1 v2 ...".
: > "$TMP/res.req"
: > "$TMP/res.hs"
declare -A RPS CPU HSR HSC

p99_ms() { # per-request log: start_us status duration_us
    awk '$2 >= 200 && $2 < 400 {print $3}' "$1" | sort -n |
        awk '{a[NR] = $1} END { if (NR == 0) { print "-"; exit }
             i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; printf "%.2f", a[i] / 1000 }'
}

run_requests() { # $1 name, $2 round
    local name=$1 round=$2 port=${PORT[$1]} c0 c1 s0 s1 w0 w1 out reqs rps p99 cpu busy
    alive "$name" || return 0
    c0=$(cpu_ticks "${PID[$name]}")
    s0=$(cpu_stat)
    w0=$(now)
    out=$(timeout $((DURATION + 30)) taskset -c 1 h2load "${H2LOAD_TLS[@]}" -c16 -m10 -D "$DURATION" \
        --log-file="$TMP/lat" "https://127.0.0.1:$port/" 2>&1)
    w1=$(now)
    s1=$(cpu_stat)
    c1=$(cpu_ticks "${PID[$name]}")
    reqs=$(awk '/^requests:/ {print $8}' <<< "$out")
    rps=$(awk '/^finished in/ {printf "%.0f", $4}' <<< "$out")
    if ! [[ "$reqs" =~ ^[0-9]+$ ]] || [ "$reqs" -eq 0 ]; then
        printf '%-8s %5s   failed: %s\n' "$name" "$round" \
            "$(grep -E '^requests:|^status codes:' <<< "$out" | tr '\n' ' ' | tr -s ' ' | head -c 150)"
        alive "$name"
        rm -f "$TMP/lat"
        return 0
    fi
    p99=$(p99_ms "$TMP/lat")
    rm -f "$TMP/lat"
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    busy="$(proxy_pct $((c1 - c0)) "$w0" "$w1") $(busy_pct "$s0" "$s1")"
    printf "$FMT_REQ" "$name" "$round" "$rps" "$p99" "$cpu" $busy
    if awk '/^requests:/ && ($10 > 0 || $12 > 0 || $14 > 0) {f=1} END {exit !f}' <<< "$out"; then
        echo "   ($name: $(grep '^requests:' <<< "$out"))"
    fi
    RPS[$name]=$rps
    CPU[$name]=$cpu
    echo "$name $round $rps $p99 $cpu" >> "$TMP/res.req"
}

run_handshakes() { # $1 name, $2 round
    local name=$1 round=$2 port=${PORT[$1]} c0 c1 s0 s1 w0 w1 out ok=0 bad=0 secs=0 t_end batches=0 v rate cpu busy
    alive "$name" || return 0
    c0=$(cpu_ticks "${PID[$name]}")
    s0=$(cpu_stat)
    w0=$(now)
    t_end=$(awk -v t="$w0" -v d="$HS_TIME" 'BEGIN {printf "%.3f", t + d}')
    while awk -v t="$(now)" -v e="$t_end" 'BEGIN {exit !(t < e)}' && [ $batches -lt 1000 ]; do
        out=$(timeout 30 taskset -c 1 h2load "${H2LOAD_TLS[@]}" -c "$HS_CONNS" -n "$HS_CONNS" -m1 \
            "https://127.0.0.1:$port/" 2>&1)
        batches=$((batches + 1))
        v=$(awk '/^requests:/ {print $8}' <<< "$out")
        [[ "$v" =~ ^[0-9]+$ ]] || v=0
        ok=$((ok + v))
        bad=$((bad + HS_CONNS - v))
        secs=$(awk -v s="$secs" '/^finished in/ { v = $3; sub(/,$/, "", v);
            if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /us$/) { sub(/us$/, "", v); v /= 1e6 }
            else sub(/s$/, "", v); s += v } END {printf "%.6f", s}' <<< "$out")
        [ "$v" -gt 0 ] || break
    done
    w1=$(now)
    s1=$(cpu_stat)
    c1=$(cpu_ticks "${PID[$name]}")
    if [ "$ok" -le 0 ]; then
        printf '%-8s %5s   failed: %s\n' "$name" "$round" \
            "$(grep -E '^requests:' <<< "$out" | tr -s ' ' | head -c 150)"
        alive "$name"
        return 0
    fi
    rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}')
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$ok" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    busy="$(proxy_pct $((c1 - c0)) "$w0" "$w1") $(busy_pct "$s0" "$s1")"
    printf "$FMT_HS" "$name" "$round" "$rate" "$cpu" $busy "$ok"
    [ "$bad" -eq 0 ] || echo "   ($name: $bad of $((ok + bad)) connections did not complete a 2xx request)"
    HSR[$name]=$rate
    HSC[$name]=$cpu
}

# weir's value over the best peer's: $1 = assoc array name, $2 = min|max, $3 = label
ratio_best() {
    local -n arr=$1
    local best="" bestname="" p v
    [ -n "${arr[weir]:-}" ] || { echo "$3 n/a (no weir result)"; return; }
    for p in "${PEERS[@]}"; do
        v=${arr[$p]:-}
        [ -n "$v" ] || continue
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" -v m="$2" \
            'BEGIN {exit !((m == "min" && a < b) || (m == "max" && a > b))}'; then
            best=$v
            bestname=$p
        fi
    done
    [ -n "$best" ] || { echo "$3 n/a (no peer result)"; return; }
    echo "$3 $(awk -v a="${arr[weir]}" -v b="$best" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b}') ($bestname)"
}

# ---------------------------------------------------------------- part 1
echo "== requests: h2load -c16 -m10 -D $DURATION (h2, TLS 1.3 AES-128-GCM), $R rounds, proxy on CPU 0"
printf "$FMT_REQ" proxy round "req/s" "p99 (ms)" "cpu/req (us)" "proxy %" "cpu0 %" "cpu1 %"
for round in $(seq 1 "$R"); do
    RPS=()
    CPU=()
    for p in "${PROXIES[@]}"; do run_requests "$p" "$round"; done
    echo "   round $round: weir/best peer: $(ratio_best CPU min cpu/req);" \
        "$(ratio_best RPS max req/s)"
done

# ---------------------------------------------------------------- part 2
echo "== handshakes: h2load -c$HS_CONNS -n$HS_CONNS -m1 repeated for ${HS_TIME}s" \
    "(one request per connection, full handshakes), $R rounds"
printf "$FMT_HS" proxy round "handshakes/s" "cpu/hs (us)" "proxy %" "cpu0 %" "cpu1 %" handshakes
for round in $(seq 1 "$R"); do
    HSR=()
    HSC=()
    for p in "${PROXIES[@]}"; do
        run_handshakes "$p" "$round"
        [ -z "${HSR[$p]:-}" ] || echo "$p $round ${HSR[$p]} ${HSC[$p]}" >> "$TMP/res.hs"
    done
    echo "   round $round: weir/best peer: $(ratio_best HSR max handshakes/s);" \
        "$(ratio_best HSC min cpu/handshake)"
done

# ---------------------------------------------------------------- summary
echo "== summary: medians over $R rounds"
printf '%-8s %10s %9s %13s %13s %13s\n' proxy "req/s" "p99 (ms)" "cpu/req (us)" "handshakes/s" "cpu/hs (us)"
RPS=() CPU=() HSR=() HSC=()
median() { # $1 file, $2 name, $3 column, $4 printf format
    awk -v n="$2" -v c="$3" '$1 == n && $c != "-" {print $c}' "$1" | sort -g |
        awk -v f="$4" '{a[NR] = $1} END { if (NR == 0) { print "-"; exit }
             m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf f, m }'
}
for p in weir "${PEERS[@]}"; do
    rps=$(median "$TMP/res.req" "$p" 3 %.0f)
    p99=$(median "$TMP/res.req" "$p" 4 %.2f)
    cpu=$(median "$TMP/res.req" "$p" 5 %.2f)
    hsr=$(median "$TMP/res.hs" "$p" 3 %.0f)
    hsc=$(median "$TMP/res.hs" "$p" 4 %.1f)
    if [ "$rps$hsr" = "--" ]; then
        printf '%-8s %s\n' "$p" "no result"
        continue
    fi
    printf '%-8s %10s %9s %13s %13s %13s\n' "$p" "$rps" "$p99" "$cpu" "$hsr" "$hsc"
    [ "$rps" = - ] || { RPS[$p]=$rps; CPU[$p]=$cpu; }
    [ "$hsr" = - ] || { HSR[$p]=$hsr; HSC[$p]=$hsc; }
done
echo "weir/best peer: $(ratio_best CPU min cpu/req); $(ratio_best RPS max req/s);" \
    "$(ratio_best HSR max handshakes/s); $(ratio_best HSC min cpu/handshake)"
