#!/bin/bash
# HTTP/1.1 proxy benchmark: weir against haproxy and nginx, all on loopback.
#
#   bash bench/h1.sh [ROUNDS]          (run from the repository root after `make`)
#
# Environment: R (rounds, default 3; the first argument wins), DURATION (wrk
# run length, default 8s), CONNS (wrk connections, default 64), IDLE_CONNS
# (idle keep-alive connections for part 2, default 10000), WEIR_BIN.
#
# Part 1, throughput: Debian's nginx is the origin, answering a 64-byte body.
# weir, haproxy and nginx proxy to it in turn, each with ONE worker pinned to
# CPU 0 (weir core.workers: 1, haproxy nbthread 1, nginx worker_processes 1);
# wrk and the origin are pinned to CPU 1. Rounds are interleaved: each round
# runs every proxy once, plus wrk straight at the origin. Each run prints
# req/s, p99 latency and the proxy's CPU time per request (utime+stime of
# every process of the proxy over the run, divided by the requests wrk
# counted); each round ends with the ratios weir/haproxy and weir/nginx.
#
# Part 2, memory per idle connection: IDLE_CONNS keep-alive connections are
# opened to each proxy in turn; each makes one request and then stays idle.
# The growth of the proxy's RSS (all its processes) divided by the number of
# connections is printed.
#
# Every process this script starts is killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

R=${1:-${R:-3}}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
WEIR=${WEIR_BIN:-$PWD/build/weir}
PY=/usr/bin/python3

for tool in nginx haproxy wrk taskset "$PY"; do
    command -v "$tool" >/dev/null || { echo "h1.sh: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "$WEIR" ] || { echo "h1.sh: $WEIR not found: run make first" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
    echo "h1.sh: needs 2 CPUs (proxy on CPU 0, wrk and origin on CPU 1)" >&2
    exit 1
fi

# Room for the idle connections (client side and proxy side).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 1000)) ]; then
    IDLE_CONNS=$(($(ulimit -n) - 1000))
    echo "h1.sh: open-file limit $(ulimit -n): using $IDLE_CONNS idle connections"
fi
NOFILE=$(ulimit -n)
MAXCONN=$((IDLE_CONNS + 200))

. bench/lib.sh
bench_setup h1

# ---------------------------------------------------------------- origin
start_origin $((NOFILE - 100)) || exit 1

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
    transport:
      respondingTimeouts:
        idleTimeout: 600s
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: origin
  services:
    origin:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$O_PORT"
EOF
taskset -c 0 "$WEIR" --configFile "$TMP/weir.yml" > "$TMP/weir.out" 2>&1 &
WEIR_PID=$!
PIDS+=("$WEIR_PID")

H_PORT=$(free_port)
cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $MAXCONN
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
    bind 127.0.0.1:$H_PORT
    default_backend be
backend be
    server origin 127.0.0.1:$O_PORT
EOF
taskset -c 0 haproxy -db -f "$TMP/haproxy.cfg" > "$TMP/haproxy.out" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")

N_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections $((NOFILE - 100)); }
http {
    access_log off;
$(nginx_temp_paths "$TMP/nginx")
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    upstream origin {
        server 127.0.0.1:$O_PORT;
        keepalive 128;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$N_PORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
taskset -c 0 nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    > "$TMP/nginx.out" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

wait_port "$W_PORT" "$WEIR_PID" weir || exit 1
wait_port "$H_PORT" "$HAPROXY_PID" haproxy || exit 1
wait_port "$N_PORT" "$NGINX_PID" nginx || exit 1

declare -A PORT=([weir]=$W_PORT [haproxy]=$H_PORT [nginx]=$N_PORT [direct]=$O_PORT)
declare -A PID=([weir]=$WEIR_PID [haproxy]=$HAPROXY_PID [nginx]=$NGINX_PID [direct]=$ORIGIN_PID)

# Sanity check: every path answers the origin's body.
for name in weir haproxy nginx direct; do
    got=$(curl -s --max-time 5 "http://127.0.0.1:${PORT[$name]}/" || true)
    if [ "$got" != "$BODY" ]; then
        echo "h1.sh: $name does not proxy correctly (got: ${got:0:80})" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------- part 1
echo "== throughput: wrk -c$CONNS -d$DURATION -t1 --latency, $R rounds, proxy on CPU 0"
printf '%-8s %5s %12s %10s %14s\n' proxy round "req/s" p99 "cpu/req (us)"

run_one() { # $1 = name, $2 = round; sets RPS_<name>, CPU_<name>
    local name=$1 round=$2
    wrk_measure "$name" "${PID[$name]}" "http://127.0.0.1:${PORT[$name]}/"
    [ "$name" = direct ] && CPU="-"
    printf '%-8s %5s %12s %10s %14s\n' "$name" "$round" "$RPS" "$P99" "$CPU"
    eval "RPS_$name=$RPS; CPU_$name=$CPU"
}

for round in $(seq 1 "$R"); do
    for name in weir haproxy nginx direct; do
        run_one "$name" "$round"
    done
    echo "   round $round: weir/haproxy req/s $(ratio "$RPS_weir" "$RPS_haproxy")" \
        " cpu/req $(ratio "$CPU_weir" "$CPU_haproxy");" \
        " weir/nginx req/s $(ratio "$RPS_weir" "$RPS_nginx")" \
        " cpu/req $(ratio "$CPU_weir" "$CPU_nginx")"
done

# ---------------------------------------------------------------- part 2
cat > "$TMP/idle.py" <<'EOF'
"""Opens N keep-alive connections, one request each, then holds them idle and
prints the RSS growth of the given process trees per connection."""
import os, selectors, socket, sys, time

port, n = int(sys.argv[1]), int(sys.argv[2])
pids = [int(p) for p in sys.argv[3:]]
REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

def tree(pid):
    out, i = [pid], 0
    while i < len(out):
        p = out[i]; i += 1
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                out += [int(x) for x in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            pass
    return out

def rss_kib():
    total = 0
    for root in pids:
        for p in tree(root):
            try:
                for line in open(f"/proc/{p}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
    return total

before = rss_kib()
sel = selectors.DefaultSelector()
conns, done, deadline = [], 0, time.monotonic() + 120
pending = {}
opened = 0
while done < n:
    if time.monotonic() > deadline:
        sys.exit(f"timed out: {done}/{n} connections answered")
    while opened < n and len(pending) < 500:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        pending[s] = b""
        sel.register(s, selectors.EVENT_WRITE)
        opened += 1
        conns.append(s)
    for key, ev in sel.select(1.0):
        s = key.fileobj
        if ev & selectors.EVENT_WRITE:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                sys.exit(f"connect failed: {os.strerror(err)}")
            s.send(REQ)
            sel.modify(s, selectors.EVENT_READ)
            continue
        data = s.recv(65536)
        if not data:
            sys.exit("proxy closed a connection")
        buf = pending[s] + data
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if cl and len(body) >= int(cl[0].split(b":")[1]):
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit(f"bad response: {head[:80]!r}")
                sel.unregister(s)
                del pending[s]
                done += 1
                continue
        pending[s] = buf
time.sleep(1.0)
after = rss_kib()
alive = sum(1 for s in conns if s.fileno() >= 0)
print(f"{(after - before) * 1024 / n:.0f} bytes/connection "
      f"(RSS {before // 1024} -> {after // 1024} MiB, {alive} connections open)")
for s in conns:
    s.close()
EOF

echo "== memory per idle keep-alive connection ($IDLE_CONNS connections, one request each)"
for name in weir haproxy nginx; do
    printf '%-8s ' "$name"
    # The proxy's own PID tree only: origin memory is not counted.
    timeout 180 "$PY" "$TMP/idle.py" "${PORT[$name]}" "$IDLE_CONNS" "${PID[$name]}" || \
        echo "(failed)"
    sleep 1
done
