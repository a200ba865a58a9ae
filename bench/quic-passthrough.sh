#!/bin/bash
# QUIC passthrough benchmark: datagrams per second and added latency through
# weir's UDP routers (QUIC routed by SNI), through a plain UDP relay (socat)
# and direct, plus an HTTP/3 download through each, on loopback.
#
#   bash bench/quic-passthrough.sh [ROUNDS]   (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION
# (seconds of load per run, default 5), FLOWS (client flows, default 8),
# WINDOW (datagrams outstanding per flow, default 8), SIZE (datagram bytes,
# default 1200), PINGS (round trips timed per latency run, default 5000),
# MIB (HTTP/3 download size, default 64), WEIR_BIN (default build/weir).
# Needs: apt-get install -y socat nginx ngtcp2-client openssl python3-cryptography,
# root (unshare -m for a private /etc/hosts), and builds build/bench/udpload
# (make bench-tools).
#
# Setup. The relays run on CPU 0 alone, everything else on CPU 1:
#   weir    core.workers 1 (UDP entry points are served by one worker
#           anyway). Entry point `quic` (UDP) with udp.routers: `a`
#           HostSNI(`a.example.test`) to the echo server, `b`
#           HostSNI(`b.example.test`) to a port where nothing listens, and
#           `rest`, the catch-all, to the echo server; entry point `h3`
#           (UDP): HostSNI(`a.example.test`) to the HTTP/3 origin. Each
#           client flow gets a connected socket toward its server and
#           datagrams move in recvmmsg/sendmmsg batches.
#   socat   Debian's socat 1.7, one per destination:
#           socat -T 30 UDP4-LISTEN:PORT,bind=127.0.0.1,fork,reuseaddr UDP4:127.0.0.1:DEST
#           (a process per client flow, one read/write per datagram; its
#           children are counted in its CPU time).
#   direct  no relay: the clients talk to the servers themselves.
# The servers and clients, on CPU 1:
#   - bench/udpload echo: a UDP echo server (recvmmsg/sendmmsg).
#   - bench/udpload load: FLOWS connected sockets, WINDOW datagrams of SIZE
#     bytes outstanding on each, for DURATION seconds; it counts the echoes
#     that come back on the flow that sent them (`bad`: those that do not,
#     or come back altered). Every flow starts with a real QUIC v1 Initial
#     (1,200 bytes, a TLS 1.3 ClientHello for a.example.test, fresh random
#     connection IDs; made with Python's cryptography below) alone, and
#     waits for its echo: weir then routes the flow by SNI with router `a`
#     (not the catch-all), and socat's fork-per-flow cannot mix up two
#     flows that start at once. The datagrams after it start with 0x40
#     (a QUIC short header) and carry the flow, sequence and send time.
#   - bench/udpload ping: one datagram at a time (after its own Initial),
#     PINGS times: the round-trip time's median and 99th percentile.
#     Added latency = relay's median − direct median (medians over rounds).
#     Two references come with it: `direct@0` pings a second echo server
#     pinned to CPU 0 (no relay, but the round trip crosses CPUs, as each
#     of a relay's two legs does), and `weir@1` and `socat@1` are the same
#     relays moved for that run (taskset -p, all threads and processes) to
#     CPU 1 beside the client and the echo server: no CPU crossing, the
#     relay's own path alone. The issue's setup is the CPU 0 one.
#   - HTTP/3 origin: a second weir (core.workers 1, `http3: {}`, TLS 1.3,
#     an openssl-made P-256 certificate for a.example.test) proxying to
#     Debian's nginx, which serves a MIB MiB file of random bytes.
#   - gtlsclient (Debian's ngtcp2-client, GnuTLS) downloads that file with
#     SNI a.example.test (its host argument; `unshare -m` and a private
#     /etc/hosts make the name resolve to 127.0.0.1), directly, through
#     weir and through socat; the file must arrive byte-exact.
#
# Printed per run: echoes per second (each one is two datagrams relayed:
# to the echo server and back), lost and bad echoes, the relay's CPU time
# per echo (utime+stime of its process tree from /proc/<pid>/stat over the
# run, its reaped children included, divided by the echoes), kernel % (the
# share of that time spent in the kernel: stime / (utime + stime)), relay %
# (its CPU time / wall time), cpu0 % and cpu1 % (/proc/stat); ping median,
# p99 and lost; download seconds and MiB/s. A note follows a run where
# sockets dropped datagrams for a full receive buffer (/proc/net/udp), at
# the relay's listening port or at the echo server. With CPU 1 running the
# client and the echo server, the direct figure bounds what any relay can
# reach: CPU 1 is then the limit and the relay CPU per echo is the figure
# that compares the relays.
#
# The goal the issue sets: weir's echoes/s ≥ 5× socat's and weir's added
# median latency < 50 µs. Rounds are interleaved (each round runs direct,
# weir and socat once, per part). The summary gives medians over rounds and
# these ratios. Only 127.0.0.1 is used; every process started is killed by
# PID on exit (socat's per-flow children too).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

R=${1:-${R:-3}}
DURATION=${DURATION:-5}
FLOWS=${FLOWS:-8}
WINDOW=${WINDOW:-8}
SIZE=${SIZE:-1200}
PINGS=${PINGS:-5000}
MIB=${MIB:-64}
WEIR=${WEIR_BIN:-$PWD/build/weir}
UDPLOAD=$PWD/build/bench/udpload
PY=/usr/bin/python3
SNI=a.example.test
TARGETS=(direct weir socat)

case "$R" in ''|*[!0-9]*|0) echo "usage: bench/quic-passthrough.sh [ROUNDS]" >&2; exit 2 ;; esac
for v in DURATION FLOWS WINDOW SIZE PINGS MIB; do
    case "${!v}" in ''|*[!0-9]*|0) echo "quic-passthrough.sh: $v is a positive whole number" >&2; exit 2 ;; esac
done
[ "$DURATION" -le 600 ] || { echo "quic-passthrough.sh: DURATION is at most 600" >&2; exit 2; }
for tool in socat nginx gtlsclient openssl unshare taskset timeout cmp "$PY"; do
    command -v "$tool" >/dev/null || {
        echo "quic-passthrough.sh: $tool is missing (apt-get install -y socat nginx ngtcp2-client openssl)" >&2
        exit 1
    }
done
"$PY" -c 'import cryptography' 2>/dev/null ||
    { echo "quic-passthrough.sh: $PY lacks cryptography (apt-get install -y python3-cryptography)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "quic-passthrough.sh: needs root (unshare -m for gtlsclient's /etc/hosts)" >&2; exit 1; }
[ -x "$WEIR" ] || { echo "quic-passthrough.sh: $WEIR not found (run make)" >&2; exit 1; }
make -s bench-tools >/dev/null || { echo "quic-passthrough.sh: cannot build $UDPLOAD" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "quic-passthrough.sh: needs 2 CPUs (relay on CPU 0, the rest on CPU 1)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. bench/lib.sh
bench_setup quic

# socat forks a child per client flow: they are killed too (by PID).
qp_cleanup() {
    local p kids
    for p in "${SOCATS[@]}"; do
        mapfile -t kids < <(tree_pids "$p")
        PIDS+=("${kids[@]}")
    done
    bench_cleanup
}
SOCATS=()
trap qp_cleanup EXIT

# "user system" CPU time in clock ticks of a process tree, all threads, and
# the children it has reaped (cutime, cstime): socat's per-flow children
# end after 30 s idle, and their time must not leave the sum.
user_sys() {
    local u=0 k=0 p f
    for p in $(tree_pids "$1"); do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after "pid (comm) ": utime=12 stime=13 cutime=14 cstime=15
        set -- $f
        u=$((u + ${12} + ${14}))
        k=$((k + ${13} + ${15}))
    done
    echo "$u $k"
}

# Datagrams dropped so far by the UDP sockets on 127.0.0.1:$1 (their
# receive buffers were full): the drops column of /proc/net/udp.
udp_drops() {
    awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a {d += $NF} END {print d + 0}' /proc/net/udp
}

# Moves process tree $1 (every thread) to CPU $2.
move_tree() {
    local p
    for p in $(tree_pids "$1"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1; done
}

# A UDP port free on 127.0.0.1 whose TCP twin is free too (the HTTP/3
# origin listens on both).
free_udp_port() {
    "$PY" -c 'import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}

# Waits up to 10 s for something to answer on UDP 127.0.0.1:$1 (an echo or
# a relay to one): udpload ping with Initial file $2; $3 names it.
wait_udp() {
    local _
    for _ in $(seq 1 20); do
        timeout 5 "$UDPLOAD" ping -n 0 -i "$2" "$1" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "# $3: nothing answers on 127.0.0.1:$1/udp"
    return 1
}

# ---------------------------------------------------------------- Initials
# QUIC v1 client Initials (RFC 9000 §17.2.2, RFC 9001 §5): a TLS 1.3
# ClientHello naming SNI (ALPN h3, x25519 key share, transport parameters)
# in one CRYPTO frame at offset 0, padded to 1,200 bytes, random 8-byte
# DCID and SCID, packet number 0. Written as records of a 2-byte length and
# the packet, as udpload -i reads them.
cat > "$TMP/initials.py" <<'EOF'
import os, struct, sys
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")  # QUIC v1


def expand(secret, label, n):
    full = b"tls13 " + label
    return HKDFExpand(hashes.SHA256(), n, struct.pack(">HB", n, len(full)) + full + b"\0").derive(secret)


def ext(t, body):
    return struct.pack(">HH", t, len(body)) + body


def vec16(b):
    return struct.pack(">H", len(b)) + b


def client_hello(sni):
    tp = b"\x04\x04" + struct.pack(">I", 0x80000000 | (1 << 20))  # initial_max_data
    exts = (ext(0, vec16(b"\0" + vec16(sni.encode()))) +                 # server_name
            ext(10, vec16(struct.pack(">H", 0x001d))) +                 # supported_groups
            ext(13, vec16(struct.pack(">HHH", 0x0403, 0x0804, 0x0807))) +  # signature_algorithms
            ext(16, vec16(b"\x02h3")) +                                 # ALPN
            ext(43, b"\x02\x03\x04") +                                  # supported_versions
            ext(45, b"\x01\x01") +                                      # psk_key_exchange_modes
            ext(51, vec16(struct.pack(">HH", 0x001d, 32) + os.urandom(32))) +  # key_share
            ext(0x39, tp))                                              # quic_transport_parameters
    body = b"\x03\x03" + os.urandom(32) + b"\0" + vec16(b"\x13\x01") + b"\x01\x00" + vec16(exts)
    return b"\x01" + len(body).to_bytes(3, "big") + body


def initial(sni, size=1200):
    dcid, scid = os.urandom(8), os.urandom(8)
    h = hmac.HMAC(SALT, hashes.SHA256())
    h.update(dcid)
    secret = expand(h.finalize(), b"client in", 32)
    key, iv, hp = (expand(secret, b"quic key", 16), expand(secret, b"quic iv", 12),
                   expand(secret, b"quic hp", 16))
    hello = client_hello(sni)
    frame = b"\x06\x00" + struct.pack(">H", 0x4000 | len(hello)) + hello  # CRYPTO at offset 0
    head = b"\xc3" + struct.pack(">I", 1) + bytes([8]) + dcid + bytes([8]) + scid + b"\0"
    plen = size - len(head) - 2 - 4 - 16
    payload = frame + b"\0" * (plen - len(frame))  # PADDING frames
    header = head + struct.pack(">H", 0x4000 | (4 + plen + 16)) + struct.pack(">I", 0)
    sealed = AESGCM(key).encrypt(iv, payload, header)  # packet number 0: the nonce is the IV
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sealed[:16]) + enc.finalize()  # sample: 4 bytes after the packet number
    pn = bytes(a ^ b for a, b in zip(header[-4:], mask[1:5]))
    return bytes([header[0] ^ (mask[0] & 0x0f)]) + header[1:-4] + pn + sealed


sni, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "wb") as f:
    for _ in range(count):
        p = initial(sni)
        f.write(struct.pack(">H", len(p)) + p)
EOF
initials() { # $1 SNI, $2 count: a fresh file of Initials (connection IDs never reused)
    local f
    f="$TMP/init.$BASHPID.$SRANDOM" # private directory: a unique name is enough
    "$PY" "$TMP/initials.py" "$1" "$2" "$f" || {
        echo "quic-passthrough.sh: cannot make QUIC Initials" >&2
        exit 1
    }
    echo "$f"
}

# ---------------------------------------------------------------- servers (CPU 1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    { echo "quic-passthrough.sh: openssl could not make the certificate" >&2; exit 1; }

E_PORT=$(free_udp_port)
taskset -c 1 "$UDPLOAD" echo -t 3600 "$E_PORT" > "$TMP/echo.out" 2>&1 &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
wait_udp "$E_PORT" "$(initials $SNI 1)" echo || { echo "quic-passthrough.sh: the echo server does not start" >&2; exit 1; }
# The latency reference direct@0: an echo server on CPU 0.
E0_PORT=$(free_udp_port)
taskset -c 0 "$UDPLOAD" echo -t 3600 "$E0_PORT" > "$TMP/echo0.out" 2>&1 &
PIDS+=("$!")
wait_udp "$E0_PORT" "$(initials $SNI 1)" echo0 || { echo "quic-passthrough.sh: the echo server on CPU 0 does not start" >&2; exit 1; }

# nginx: the MIB MiB file, HTTP/1.1 to the HTTP/3 origin.
N_PORT=$(free_port)
mkdir -p "$TMP/nginx/www" "$TMP/dl"
head -c $((MIB * 1048576)) /dev/urandom > "$TMP/nginx/www/big"
cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/nginx")
    keepalive_timeout 600s;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$N_PORT;
        root $TMP/nginx/www;
    }
}
EOF
taskset -c 1 nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    > "$TMP/nginx.out" 2>&1 &
PIDS+=("$!")
wait_port "$N_PORT" "$!" nginx || { echo "quic-passthrough.sh: nginx does not start" >&2; exit 1; }

# The HTTP/3 origin: weir terminating QUIC + TLS for a.example.test.
H_PORT=$(free_udp_port)
cat > "$TMP/origin.yml" <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  websecure:
    address: "127.0.0.1:$H_PORT"
    http3: {}
    transport: {respondingTimeouts: {idleTimeout: 600s}}
tls:
  certificates:
    - {certFile: $TMP/cert.pem, keyFile: $TMP/key.pem}
  options:
    default: {minVersion: VersionTLS13}
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: files, tls: {}}
  services:
    files: {loadBalancer: {servers: [{url: "http://127.0.0.1:$N_PORT"}]}}
EOF
taskset -c 1 "$WEIR" --configFile "$TMP/origin.yml" > "$TMP/origin.out" 2>&1 &
PIDS+=("$!")
wait_port "$H_PORT" "$!" origin || { echo "quic-passthrough.sh: the HTTP/3 origin does not start" >&2; exit 1; }

# ---------------------------------------------------------------- relays (CPU 0)
declare -A QPORT HPORT PID
QPORT[direct]=$E_PORT
HPORT[direct]=$H_PORT

QPORT[weir]=$(free_udp_port)
HPORT[weir]=$(free_udp_port)
NOWHERE=$(free_udp_port)
cat > "$TMP/weir.yml" <<EOF
core: {workers: 1}
log: {level: ERROR}
entryPoints:
  quic: {address: "127.0.0.1:${QPORT[weir]}/udp"}
  h3: {address: "127.0.0.1:${HPORT[weir]}/udp"}
udp:
  routers:
    a: {entryPoints: [quic], rule: "HostSNI(\`$SNI\`)", service: echo}
    b: {entryPoints: [quic], rule: "HostSNI(\`b.example.test\`)", service: nowhere}
    rest: {entryPoints: [quic], service: echo}
    h3: {entryPoints: [h3], rule: "HostSNI(\`$SNI\`)", service: origin}
  services:
    echo: {loadBalancer: {servers: [{address: "127.0.0.1:$E_PORT"}]}}
    nowhere: {loadBalancer: {servers: [{address: "127.0.0.1:$NOWHERE"}]}}
    origin: {loadBalancer: {servers: [{address: "127.0.0.1:$H_PORT"}]}}
EOF
timeout 10 "$WEIR" --check --configFile "$TMP/weir.yml" > "$TMP/weir.check" 2>&1 || {
    echo "quic-passthrough.sh: weir --check refuses the configuration: $(head -3 "$TMP/weir.check")" >&2
    exit 1
}
taskset -c 0 "$WEIR" --configFile "$TMP/weir.yml" > "$TMP/weir.out" 2>&1 &
PID[weir]=$!
PIDS+=("$!")

QPORT[socat]=$(free_udp_port)
HPORT[socat]=$(free_udp_port)
for pair in "${QPORT[socat]} $E_PORT" "${HPORT[socat]} $H_PORT"; do
    set -- $pair
    taskset -c 0 socat -T 30 "UDP4-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr" "UDP4:127.0.0.1:$2" \
        >> "$TMP/socat.out" 2>&1 &
    PIDS+=("$!")
    SOCATS+=("$!")
done
PID[socat]=${SOCATS[0]}

# ---------------------------------------------------------------- sanity
for t in weir socat; do
    wait_udp "${QPORT[$t]}" "$(initials $SNI 1)" "$t" || {
        tail -5 "$TMP/$t.out" 2>/dev/null | sed 's/^/#    /'
        echo "quic-passthrough.sh: $t does not relay to the echo server" >&2
        exit 1
    }
done
# weir routes by SNI: a.example.test and an unknown name (the catch-all) come
# back, b.example.test goes to its own (silent) server; a datagram that is
# not an Initial goes to the catch-all at once.
a=$("$UDPLOAD" ping -n 0 -i "$(initials $SNI 1)" "${QPORT[weir]}" 2>&1)
b=$("$UDPLOAD" ping -n 0 -i "$(initials b.example.test 1)" "${QPORT[weir]}" 2>&1)
c=$("$UDPLOAD" ping -n 0 -i "$(initials c.example.test 1)" "${QPORT[weir]}" 2>&1)
d=$("$UDPLOAD" ping -n 20 -t 10 "${QPORT[weir]}" 2>&1)
echo "# weir by SNI: a.example.test Initial: $a; b.example.test (to a silent port): $b;" \
    "c.example.test (catch-all): $c; 20 non-Initial datagrams (catch-all): $(grep -o 'lost=[0-9]*' <<< "$d")"
if [ "$a" != admitted ] || [ "$b" != "no reply" ] || [ "$c" != admitted ] ||
    ! grep -q "n=20 lost=0" <<< "$d"; then
    echo "quic-passthrough.sh: weir does not route by SNI as configured" >&2
    exit 1
fi
for t in "${TARGETS[@]}"; do
    out=$(timeout 30 taskset -c 1 "$UDPLOAD" load -t 1 -f "$FLOWS" -w "$WINDOW" -s "$SIZE" \
        -i "$(initials $SNI "$FLOWS")" "${QPORT[$t]}" 2>&1)
    if ! grep -q " bad=0 " <<< "$out" || ! grep -q "load:" <<< "$out"; then
        echo "quic-passthrough.sh: $t: the echoes do not come back right: $out" >&2
        exit 1
    fi
    echo "# $t: $FLOWS flows echo, 1 s: ${out#load: }"
done

# gtlsclient resolves its host argument (the SNI) with a private /etc/hosts.
echo "127.0.0.1 $SNI" > "$TMP/hosts"
download() { # $1 port: sets SECS (wall clock) and OK (1 when the file arrived byte-exact)
    local t0 t1
    rm -f "$TMP/dl/big"
    t0=$(now)
    timeout 300 unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$TMP/hosts" \
        taskset -c 1 gtlsclient -q --exit-on-all-streams-close --download="$TMP/dl" --timeout=30s \
        "$SNI" "$1" "https://$SNI:$1/big" > "$TMP/gtls.out" 2>&1 < /dev/null
    t1=$(now)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    OK=0
    cmp -s "$TMP/dl/big" "$TMP/nginx/www/big" && OK=1
    rm -f "$TMP/dl/big"
}

# ---------------------------------------------------------------- runs
kv() { grep -o " $1=[0-9.]*" <<< "$out" | cut -d= -f2; } # a key=value of udpload's line in $out
alive() { # $1 target
    case $1 in direct*) return 0 ;; esac
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    echo "   ($1 died; last lines of its output:)"
    tail -5 "$TMP/$1.out" 2>/dev/null | sed 's/^/   /'
    return 1
}

: > "$TMP/res.load"
: > "$TMP/res.ping"
: > "$TMP/res.h3"
FMT_LOAD='%-7s %5s %9s %7s %5s %14s %9s %8s %7s %7s\n'
FMT_PING='%-8s %5s %7s %10s %10s %6s\n'
FMT_H3='%-7s %5s %8s %8s\n'

echo "== datagrams: $FLOWS flows x $WINDOW outstanding, $SIZE bytes, ${DURATION}s per run, $R rounds" \
    "(relay on CPU 0; client and echo server on CPU 1)"
printf "$FMT_LOAD" target round "echo/s" lost bad "relay us/echo" "kernel %" "relay %" "cpu0 %" "cpu1 %"
for round in $(seq 1 "$R"); do
    for t in "${TARGETS[@]}"; do
        alive "$t" || continue
        init=$(initials $SNI "$FLOWS")
        c0="0 0"; [ "$t" = direct ] || c0=$(user_sys "${PID[$t]}")
        d0="$(udp_drops "${QPORT[$t]}") $(udp_drops "$E_PORT")"
        s0=$(cpu_stat)
        w0=$(now)
        out=$(timeout $((DURATION + 60)) taskset -c 1 "$UDPLOAD" load -t "$DURATION" -f "$FLOWS" \
            -w "$WINDOW" -s "$SIZE" -i "$init" "${QPORT[$t]}" 2>&1)
        w1=$(now)
        s1=$(cpu_stat)
        c1="0 0"; [ "$t" = direct ] || c1=$(user_sys "${PID[$t]}")
        rate=$(kv rate)
        if [ -z "$rate" ]; then
            printf '%-7s %5s   failed: %s\n' "$t" "$round" "$(tr '\n' ' ' <<< "$out" | head -c 150)"
            alive "$t"
            continue
        fi
        echoed=$(kv echoed)
        if [ "$t" = direct ]; then
            cpu=-; kern=-; pct=-
        else
            read -r u0 k0 <<< "$c0"
            read -r u1 k1 <<< "$c1"
            ticks=$((u1 + k1 - u0 - k0))
            cpu=$(awk -v k=$ticks -v hz="$HZ" -v n="$echoed" \
                'BEGIN {printf "%.2f", (n > 0 ? k / hz * 1e6 / n : 0)}')
            kern=$(awk -v k=$((k1 - k0)) -v t=$ticks 'BEGIN {printf "%.0f", (t > 0 ? 100 * k / t : 0)}')
            pct=$(proxy_pct $ticks "$w0" "$w1")
        fi
        read -r b0 b1 <<< "$(busy_pct "$s0" "$s1")"
        printf "$FMT_LOAD" "$t" "$round" "$rate" "$(kv lost)" "$(kv bad)" "$cpu" "$kern" "$pct" "$b0" "$b1"
        read -r dr0 de0 <<< "$d0"
        dr=$(($(udp_drops "${QPORT[$t]}") - dr0))
        de=$(($(udp_drops "$E_PORT") - de0))
        [ "$t" = direct ] && dr=0
        [ $((dr + de)) -eq 0 ] || echo "   ($t: receive buffers full: $dr datagrams dropped at the" \
            "relay's sockets on its port, $de at the echo server)"
        echo "$t $round $rate $cpu" >> "$TMP/res.load"
        alive "$t" || continue
    done
done

echo "== latency: $PINGS round trips of one $SIZE-byte datagram at a time, $R rounds" \
    "(client on CPU 1; direct@0: echo server on CPU 0; weir@1, socat@1: the relay moved to CPU 1)"
printf "$FMT_PING" target round "p50 us" "p99 us" "max us" lost
QPORT[direct@0]=$E0_PORT
for round in $(seq 1 "$R"); do
    for t in direct direct@0 weir socat weir@1 socat@1; do
        relay=${t%@1}
        alive "$relay" || continue
        [ "$relay" = "$t" ] || move_tree "${PID[$relay]}" 1
        out=$(timeout 120 taskset -c 1 "$UDPLOAD" ping -n "$PINGS" -t 100 -s "$SIZE" \
            -i "$(initials $SNI 1)" "${QPORT[$relay]}" 2>&1)
        [ "$relay" = "$t" ] || move_tree "${PID[$relay]}" 0
        p50=$(kv p50_us)
        if [ -z "$p50" ]; then
            printf '%-8s %5s   failed: %s\n' "$t" "$round" "$(tr '\n' ' ' <<< "$out" | head -c 150)"
            alive "$relay"
            continue
        fi
        printf "$FMT_PING" "$t" "$round" "$p50" "$(kv p99_us)" "$(kv max_us)" "$(kv lost)"
        echo "$t $round $p50 $(kv p99_us)" >> "$TMP/res.ping"
    done
done

echo "== HTTP/3 download: gtlsclient GET of $MIB MiB (SNI $SNI) from weir's HTTP/3 origin, $R rounds"
printf "$FMT_H3" target round seconds "MiB/s"
for round in $(seq 1 "$R"); do
    for t in "${TARGETS[@]}"; do
        alive "$t" || continue
        download "${HPORT[$t]}"
        if [ "$OK" != 1 ]; then
            printf '%-7s %5s   failed after %ss: %s\n' "$t" "$round" "$SECS" \
                "$(tail -3 "$TMP/gtls.out" | tr '\n' ' ' | head -c 150)"
            alive "$t"
            continue
        fi
        mbs=$(awk -v m="$MIB" -v s="$SECS" 'BEGIN {printf "%.0f", m / s}')
        printf "$FMT_H3" "$t" "$round" "$SECS" "$mbs"
        echo "$t $round $SECS $mbs" >> "$TMP/res.h3"
    done
done

# ---------------------------------------------------------------- summary
median() { # $1 file, $2 target, $3 column, $4 printf format
    awk -v n="$2" -v c="$3" '$1 == n && $c != "-" {print $c}' "$1" | sort -g |
        awk -v f="$4" '{a[NR] = $1} END { if (NR == 0) { print "-"; exit }
             m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf f, m }'
}
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }'; }
echo "== summary: medians over $R rounds"
printf '%-8s %9s %14s %8s %8s %10s %8s %7s\n' target "echo/s" "relay us/echo" "p50 us" "p99 us" \
    "added us" "h3 s" "MiB/s"
declare -A RATE CPU P50 P99
dp50=$(median "$TMP/res.ping" direct 3 %.1f)
for t in direct direct@0 weir socat weir@1 socat@1; do
    RATE[$t]=$(median "$TMP/res.load" "$t" 3 %.0f)
    CPU[$t]=$(median "$TMP/res.load" "$t" 4 %.2f)
    P50[$t]=$(median "$TMP/res.ping" "$t" 3 %.1f)
    P99[$t]=$(median "$TMP/res.ping" "$t" 4 %.1f)
    added=-
    [ "$t" = direct ] || added=$(diff_us "${P50[$t]}" "$dp50")
    printf '%-8s %9s %14s %8s %8s %10s %8s %7s\n' "$t" "${RATE[$t]}" "${CPU[$t]}" "${P50[$t]}" \
        "${P99[$t]}" "$added" "$(median "$TMP/res.h3" "$t" 3 %.2f)" "$(median "$TMP/res.h3" "$t" 4 %.0f)"
done
echo "weir echo/s / socat echo/s            = $(ratio "${RATE[weir]/-/0}" "${RATE[socat]/-/0}")  (goal >= 5)"
echo "weir echo/s / direct echo/s           = $(ratio "${RATE[weir]/-/0}" "${RATE[direct]/-/0}")  (the ceiling: CPU 1)"
echo "socat relay CPU/echo / weir's         = $(ratio "${CPU[socat]/-/0}" "${CPU[weir]/-/0}")"
echo "weir added median latency             = $(diff_us "${P50[weir]}" "$dp50") us  (goal < 50)"
echo "socat added median latency            = $(diff_us "${P50[socat]}" "$dp50") us"
echo "one CPU crossing round trip (direct@0) = $(diff_us "${P50[direct@0]}" "$dp50") us more than direct;" \
    "a relay on its own CPU makes two"
echo "relay on CPU 1, added median latency   = weir $(diff_us "${P50[weir@1]}" "$dp50") us," \
    "socat $(diff_us "${P50[socat@1]}" "$dp50") us"
