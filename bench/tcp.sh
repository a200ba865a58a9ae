#!/bin/bash
# TLS passthrough by SNI benchmark: weir against haproxy and nginx, on loopback.
#
#   bash bench/tcp.sh [ROUNDS]         (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION
# (seconds of h2load per run, default 5), WEIR_BIN (default build/weir),
# HAPROXY_SPLICE (1 adds `option splice-auto` to haproxy; default 0), ONLY
# (the proxies to measure, default "weir haproxy nginx").
# Needs: apt-get install -y nginx libnginx-mod-stream haproxy nghttp2-client openssl curl
#
# Setup. No proxy holds a key: each one reads the SNI of the ClientHello and
# relays the bytes, TLS and all, to one origin that terminates TLS: Debian's
# nginx on CPU 1 (`listen ssl http2`, an openssl-made ECDSA P-256 certificate
# for a.example.test, TLS 1.3 only) answering / with a 64-byte body and /1m
# with a 1 MiB file. The proxies, each ONE worker pinned to CPU 0:
#   weir     core.workers: 1; a TCP router HostSNI(`a.example.test`) with
#            tls.passthrough: true to a tcp service with the origin's address.
#   haproxy  nbthread 1, mode tcp: tcp-request inspect-delay 5s, accept once
#            req.ssl_hello_type is 1, use_backend by req.ssl_sni; no logs;
#            no splice options by default (HAProxy's default: it copies
#            through its buffers; HAPROXY_SPLICE=1 lets it splice).
#   nginx    worker_processes 1 (master + one worker, both counted), the
#            stream module from libnginx-mod-stream (load_module), ssl_preread
#            on and a map from $ssl_preread_server_name to the origin.
# h2load runs on CPU 1 too, with --connect-to=127.0.0.1:<proxy port> and the
# URI https://a.example.test:<port>/..., so the SNI (and :authority) is
# a.example.test while only 127.0.0.1 is dialled; it offers only
# TLS_AES_128_GCM_SHA256 and X25519. All the TLS work (client and server
# side) therefore sits on CPU 1: CPU 1 bounds the run, and the proxy's CPU
# time per request (or per MiB) is the figure that compares the proxies.
#
# Part 1, requests: h2load -c16 -m10 -D DURATION, GET / (16 connections, 10
# streams each). Printed per run: req/s (h2load), the proxy's CPU time per
# request (utime+stime of all its processes and threads from /proc/<pid>/stat
# over the run, divided by the requests h2load counts as succeeded), and
# three load columns: proxy % (the proxy's CPU time / wall time), cpu0 % and
# cpu1 % (how busy CPU 0 and CPU 1 were, from /proc/stat). cpu0 % well above
# proxy % means something else ran on CPU 0 (the run is disturbed; a note
# follows a run where the gap exceeds 20 points).
#
# Part 2, 1 MiB transfers: h2load -c4 -m1 -D DURATION, GET /1m (4 connections,
# one 1 MiB response in flight on each). Printed per run: MiB/s (the bytes
# h2load received, its "traffic: ... total", over its "finished in" time),
# the proxy's CPU time per MiB received, the same load columns and the
# completed transfers.
#
# Rounds are interleaved (each round runs every proxy once). Each round ends
# with weir's ratios to the best peer (lowest cpu/req, highest req/s, lowest
# cpu/MiB, highest MiB/s); the summary gives medians over rounds and the same
# ratios. A proxy that fails to start, to pass the sanity requests through,
# or dies during a run is reported and left out; the others go on.
# Only 127.0.0.1 is used; every process started is killed by PID on exit.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

R=${1:-${R:-3}}
DURATION=${DURATION:-5}
WEIR=${WEIR_BIN:-$PWD/build/weir}
PY=/usr/bin/python3
PEERS=(haproxy nginx)
SNI=a.example.test
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
MIB=1048576

case "$R" in ''|*[!0-9]*|0) echo "usage: bench/tcp.sh [ROUNDS]" >&2; exit 2 ;; esac
case "$DURATION" in ''|*[!0-9]*|0) echo "tcp.sh: DURATION is whole seconds" >&2; exit 2 ;; esac
for tool in nginx h2load openssl curl taskset timeout "$PY"; do
    command -v "$tool" >/dev/null || {
        echo "tcp.sh: $tool is missing (apt-get install -y nginx libnginx-mod-stream haproxy nghttp2-client openssl curl)" >&2
        exit 1
    }
done
[ "$(nproc)" -ge 2 ] || { echo "tcp.sh: needs 2 CPUs (proxy on CPU 0, h2load and origin on CPU 1)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. bench/lib.sh
bench_setup tcp

# h2load's "finished in 5.00s, ..." (s, ms or us) in seconds.
finished_secs() {
    awk '/^finished in/ { v = $3; sub(/,$/, "", v);
        if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /us$/) { sub(/us$/, "", v); v /= 1e6 }
        else sub(/s$/, "", v); printf "%.6f", v }'
}
FMT_REQ='%-8s %5s %10s %13s %8s %7s %7s\n'
FMT_MIB='%-8s %5s %8s %14s %8s %7s %7s %10s\n'

# ---------------------------------------------------------------- certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    { echo "tcp.sh: openssl could not make the certificate" >&2; exit 1; }

# ---------------------------------------------------------------- origin
# Debian's nginx on CPU 1 terminating TLS (h2 and http/1.1): / answers the
# 64-byte body, /1m is a 1 MiB file of random bytes.
BODY=$(printf 'x%.0s' $(seq 1 63))
O_PORT=$(free_port)
mkdir -p "$TMP/origin/www"
head -c $MIB /dev/urandom > "$TMP/origin/www/1m"
cat > "$TMP/origin/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/error.log error;
events { worker_connections 8192; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/origin")
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$O_PORT ssl http2 backlog=4096;
        server_name $SNI;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_ecdh_curve X25519;
        root $TMP/origin/www;
        location = / { return 200 "$BODY\n"; }
        location = /1m { }
    }
}
EOF
taskset -c 1 nginx -p "$TMP/origin" -e "$TMP/origin/error.log" -c "$TMP/origin/nginx.conf" \
    > "$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_port "$O_PORT" "$ORIGIN_PID" origin || { echo "tcp.sh: the origin does not start" >&2; exit 1; }

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
if [ ! -x "$WEIR" ]; then
    NOTE[weir]="$WEIR not found (run make)"
else
    cat > "$TMP/weir.yml" <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  tls: {address: "127.0.0.1:${PORT[weir]}"}
tcp:
  routers:
    a: {entryPoints: [tls], rule: "HostSNI(\`$SNI\`)", service: origin, tls: {passthrough: true}}
  services:
    origin: {loadBalancer: {servers: [{address: "127.0.0.1:$O_PORT"}]}}
EOF
    if ! timeout 10 "$WEIR" --check --configFile "$TMP/weir.yml" > "$TMP/weir.check" 2>&1; then
        NOTE[weir]="--check refuses the configuration: $(head -1 "$TMP/weir.check" | grep . || echo "(no message)")"
    else
        start weir "$WEIR" --configFile "$TMP/weir.yml"
    fi
fi

if command -v haproxy >/dev/null; then
    PORT[haproxy]=$(free_port)
    cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
EOF
    [ "${HAPROXY_SPLICE:-0}" = 1 ] && echo "    option splice-auto" >> "$TMP/haproxy.cfg"
    cat >> "$TMP/haproxy.cfg" <<EOF
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend b_a if { req.ssl_sni -i $SNI }
backend b_a
    server origin 127.0.0.1:$O_PORT
EOF
    start haproxy haproxy -db -f "$TMP/haproxy.cfg"
else
    NOTE[haproxy]="haproxy is not installed"
fi

if [ -f "$STREAM_MOD" ]; then
    PORT[nginx]=$(free_port)
    mkdir -p "$TMP/nginx"
    cat > "$TMP/nginx/nginx.conf" <<EOF
load_module $STREAM_MOD;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 20000; }
stream {
    map \$ssl_preread_server_name \$up {
        $SNI 127.0.0.1:$O_PORT;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        ssl_preread on;
        proxy_pass \$up;
        proxy_timeout 600s;
    }
}
EOF
    start nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf"
else
    NOTE[nginx]="$STREAM_MOD is missing (apt-get install -y libnginx-mod-stream)"
fi

H2LOAD_TLS=(--tls13-ciphers=TLS_AES_128_GCM_SHA256 --groups=X25519)

PROXIES=()
for p in ${ONLY:-weir haproxy nginx}; do
    if [ -n "${NOTE[$p]:-}" ]; then
        echo "# $p: skipped: ${NOTE[$p]}"
        continue
    fi
    wait_port "${PORT[$p]}" "${PID[$p]}" "$p" || continue
    # Sanity check: the origin's 64-byte body over h2 and the 1 MiB file
    # byte-exact, through the passthrough, with SNI a.example.test.
    port=${PORT[$p]}
    got=$(curl -sk --http2 --max-time 5 --resolve "$SNI:$port:127.0.0.1" -w '|%{http_version}' \
        "https://$SNI:$port/" 2>&1)
    if [ "$got" != "$BODY"$'\n|2' ]; then
        echo "# $p: does not pass h2 over TLS through to the origin (curl: ${got:0:100}); skipped"
        continue
    fi
    got=$(curl -sk --max-time 10 --resolve "$SNI:$port:127.0.0.1" "https://$SNI:$port/1m" 2>/dev/null |
        cmp - "$TMP/origin/www/1m" 2>&1)
    if [ -n "$got" ]; then
        echo "# $p: /1m does not come through byte-exact (${got:0:100}); skipped"
        continue
    fi
    tls=$(timeout 10 taskset -c 1 h2load "${H2LOAD_TLS[@]}" -n1 -c1 --connect-to="127.0.0.1:$port" \
        "https://$SNI:$port/" 2>&1 |
        awk -F': ' '/^TLS Protocol:|^Cipher:|^Server Temp Key:|^Application protocol:/ {printf "%s ", $2}')
    if [ -z "$tls" ]; then
        echo "# $p: h2load cannot connect with TLS 1.3/TLS_AES_128_GCM_SHA256/X25519; skipped"
        continue
    fi
    [ "$p" = haproxy ] && [ "${HAPROXY_SPLICE:-0}" = 1 ] && tls+="(haproxy: option splice-auto)"
    echo "# $p: ok, origin negotiated: $tls"
    PROXIES+=("$p")
done
[ ${#PROXIES[@]} -gt 0 ] || { echo "tcp.sh: no proxy passes through; nothing to measure" >&2; exit 1; }

# Results: one line per run in $TMP/res.<phase>, "name round v1 v2 ...".
: > "$TMP/res.req"
: > "$TMP/res.mib"
declare -A RPS CPU MBS CPM

# Runs h2load through proxy $1 (pinned to CPU 1, bounded by timeout) with
# the remaining arguments before the URI path $2; sets OUT, TICKS, BUSY.
h2load_through() {
    local name=$1 path=$2 c0 c1 s0 s1 w0 w1
    shift 2
    c0=$(cpu_ticks "${PID[$name]}")
    s0=$(cpu_stat)
    w0=$(now)
    OUT=$(timeout $((DURATION + 30)) taskset -c 1 h2load "${H2LOAD_TLS[@]}" "$@" -D "$DURATION" \
        --connect-to="127.0.0.1:${PORT[$name]}" "https://$SNI:${PORT[$name]}$path" 2>&1)
    w1=$(now)
    s1=$(cpu_stat)
    c1=$(cpu_ticks "${PID[$name]}")
    TICKS=$((c1 - c0))
    BUSY="$(proxy_pct "$TICKS" "$w0" "$w1") $(busy_pct "$s0" "$s1")"
}

# Sets REQS to the requests h2load counts as succeeded; returns 1 (with a
# failure line) when there are none.
succeeded() { # $1 name, $2 round
    REQS=$(awk '/^requests:/ {print $8}' <<< "$OUT")
    if ! [[ "$REQS" =~ ^[0-9]+$ ]] || [ "$REQS" -eq 0 ]; then
        printf '%-8s %5s   failed: %s\n' "$1" "$2" \
            "$(grep -E '^requests:|^status codes:' <<< "$OUT" | tr '\n' ' ' | tr -s ' ' | head -c 150)"
        alive "$1"
        return 1
    fi
}

errors_note() { # $1 name: h2load's requests line when some failed or errored; disturbed runs
    local gap
    if awk '/^requests:/ && ($10 > 0 || $12 > 0 || $14 > 0) {f=1} END {exit !f}' <<< "$OUT"; then
        echo "   ($1: $(grep '^requests:' <<< "$OUT"))"
    fi
    set -- "$1" $BUSY
    gap=$(($3 - $2))
    [ "$gap" -le 20 ] || echo "   ($1: CPU 0 was $gap points busier than the proxy: something else ran there)"
}

run_requests() { # $1 name, $2 round
    local name=$1 round=$2 reqs rps cpu
    alive "$name" || return 0
    h2load_through "$name" / -c16 -m10
    succeeded "$name" "$round" || return 0
    reqs=$REQS
    rps=$(awk '/^finished in/ {printf "%.0f", $4}' <<< "$OUT")
    cpu=$(awk -v t="$TICKS" -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    printf "$FMT_REQ" "$name" "$round" "$rps" "$cpu" $BUSY
    errors_note "$name"
    alive "$name" || return 0
    RPS[$name]=$rps
    CPU[$name]=$cpu
    echo "$name $round $rps $cpu" >> "$TMP/res.req"
}

run_transfers() { # $1 name, $2 round
    local name=$1 round=$2 reqs bytes secs mbs cpm
    alive "$name" || return 0
    h2load_through "$name" /1m -c4 -m1
    succeeded "$name" "$round" || return 0
    reqs=$REQS
    bytes=$(awk '/^traffic:/ { v = $3; gsub(/[()]/, "", v); print v }' <<< "$OUT")
    [[ "$bytes" =~ ^[0-9]+$ ]] || bytes=$((reqs * MIB))
    secs=$(finished_secs <<< "$OUT")
    mbs=$(awk -v b="$bytes" -v s="$secs" -v m=$MIB 'BEGIN {printf "%.0f", (s > 0 ? b / m / s : 0)}')
    cpm=$(awk -v t="$TICKS" -v hz="$HZ" -v b="$bytes" -v m=$MIB 'BEGIN {printf "%.1f", t / hz * 1e6 / (b / m)}')
    printf "$FMT_MIB" "$name" "$round" "$mbs" "$cpm" $BUSY "$reqs"
    errors_note "$name"
    alive "$name" || return 0
    MBS[$name]=$mbs
    CPM[$name]=$cpm
    echo "$name $round $mbs $cpm" >> "$TMP/res.mib"
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
echo "== requests through the passthrough: h2load -c16 -m10 -D $DURATION GET / (h2, TLS 1.3" \
    "AES-128-GCM to the origin), $R rounds, proxy on CPU 0"
printf "$FMT_REQ" proxy round "req/s" "cpu/req (us)" "proxy %" "cpu0 %" "cpu1 %"
for round in $(seq 1 "$R"); do
    RPS=()
    CPU=()
    for p in "${PROXIES[@]}"; do run_requests "$p" "$round"; done
    echo "   round $round: weir/best peer: $(ratio_best CPU min cpu/req);" \
        "$(ratio_best RPS max req/s)"
done

# ---------------------------------------------------------------- part 2
echo "== 1 MiB transfers through the passthrough: h2load -c4 -m1 -D $DURATION GET /1m, $R rounds"
printf "$FMT_MIB" proxy round "MiB/s" "cpu/MiB (us)" "proxy %" "cpu0 %" "cpu1 %" transfers
for round in $(seq 1 "$R"); do
    MBS=()
    CPM=()
    for p in "${PROXIES[@]}"; do run_transfers "$p" "$round"; done
    echo "   round $round: weir/best peer: $(ratio_best CPM min cpu/MiB);" \
        "$(ratio_best MBS max MiB/s)"
done

# ---------------------------------------------------------------- summary
echo "== summary: medians over $R rounds"
printf '%-8s %10s %13s %8s %14s\n' proxy "req/s" "cpu/req (us)" "MiB/s" "cpu/MiB (us)"
RPS=() CPU=() MBS=() CPM=()
median() { # $1 file, $2 name, $3 column, $4 printf format
    awk -v n="$2" -v c="$3" '$1 == n && $c != "-" {print $c}' "$1" | sort -g |
        awk -v f="$4" '{a[NR] = $1} END { if (NR == 0) { print "-"; exit }
             m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf f, m }'
}
for p in weir "${PEERS[@]}"; do
    rps=$(median "$TMP/res.req" "$p" 3 %.0f)
    cpu=$(median "$TMP/res.req" "$p" 4 %.2f)
    mbs=$(median "$TMP/res.mib" "$p" 3 %.0f)
    cpm=$(median "$TMP/res.mib" "$p" 4 %.1f)
    if [ "$rps$mbs" = "--" ]; then
        printf '%-8s %s\n' "$p" "no result"
        continue
    fi
    printf '%-8s %10s %13s %8s %14s\n' "$p" "$rps" "$cpu" "$mbs" "$cpm"
    [ "$rps" = - ] || { RPS[$p]=$rps; CPU[$p]=$cpu; }
    [ "$mbs" = - ] || { MBS[$p]=$mbs; CPM[$p]=$cpm; }
done
echo "weir/best peer: $(ratio_best CPU min cpu/req); $(ratio_best RPS max req/s);" \
    "$(ratio_best CPM min cpu/MiB); $(ratio_best MBS max MiB/s)"
