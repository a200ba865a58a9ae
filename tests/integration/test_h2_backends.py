"""HTTP/2 to backends: h2c:// servers (the tests' h2c origin and Debian's
nghttpd), https:// servers that choose h2 by ALPN (nginx), multiplexing
under SETTINGS_MAX_CONCURRENT_STREAMS, GOAWAY and REFUSED_STREAM replays,
gRPC-style streaming with trailers, WebSocket upgrades over HTTP/1.1, and
the readIdleTimeout/pingTimeout health check against a black hole (a relay
that stops forwarding, and nftables dropping packets in a network
namespace)."""

import concurrent.futures
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from conftest import WEIR_BIN, pick_free_port, wait_for_port
from h2backend import H2Origin, Relay
from helpers import SANITIZED, SLOW, Conn, curl, get, request
from origin import pattern_sha256, ws_frame, ws_read_frame


@pytest.fixture
def h2origin():
    made = []

    def make(**kw):
        o = H2Origin(**kw)
        made.append(o)
        return o

    yield make
    for o in made:
        o.stop()


@pytest.fixture
def relay():
    made = []

    def make(port):
        r = Relay(port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def nghttpd(tmp_path):
    """nghttpd (Debian's nghttp2-server) serving h2c with prior knowledge
    from a directory with index.html and a 1 MiB file."""
    if not shutil.which("nghttpd"):
        pytest.fail("nghttpd is missing: scripts/deps.sh installs nghttp2-server")
    procs = []
    docroot = tmp_path / "htdocs"
    docroot.mkdir()
    (docroot / "index.html").write_text("nghttpd index\n")
    (docroot / "big.bin").write_bytes(os.urandom(1 << 20))

    def start():
        port = pick_free_port()
        p = subprocess.Popen(["nghttpd", "--no-tls", "-d", str(docroot), str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        problem = wait_for_port(port, 10, p, "nghttpd")
        assert not problem, problem
        return port, docroot

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def config(port, urls, transport="", static="", workers=1):
    servers = "".join(f'          - url: "{u}"\n' for u in urls)
    use = "        serversTransport: t\n" if transport else ""
    tr = ("  serversTransports:\n    t:\n" + textwrap.indent(textwrap.dedent(transport), "      ")
          if transport else "")
    return (f"core: {{workers: {workers}}}\n" + static +
            f'entryPoints:\n  web: {{address: "127.0.0.1:{port}"}}\n'
            "http:\n  routers:\n    r: {rule: \"PathPrefix(`/`)\", service: s}\n"
            "  services:\n    s:\n      loadBalancer:\n" + use + "        servers:\n" + servers +
            tr)


def start_weir(weir, urls, **kw):
    port = pick_free_port()
    return weir(config(port, urls, **kw)), port


# ---------------------------------------------------------------------------
# requests and responses


def test_h1_client_to_h2c_origin(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    r = get(port, "/size/1000", host="app.test")
    assert r.status == 200, r
    assert r.header("x-origin-protocol") == "h2"
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(1000)
    # :authority carries the Host; the forwarded fields arrive
    seen = o.requests[-1]
    assert seen[":authority"] == "app.test"
    assert seen[":scheme"] == "http"
    assert seen[":method"] == "GET"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert "host" not in seen and "connection" not in seen


@pytest.mark.parametrize("size", [0, 1, 70000, 3 * 1024 * 1024 + 7])
def test_bodies_both_ways(weir, h2origin, size):
    """A body is streamed up and the echo streamed back, from HTTP/1.1
    (content-length and chunked) and from HTTP/2."""
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    body = os.urandom(size)
    r = request(port, "POST", "/echo", body=body)
    assert r.status == 200 and r.body == body, (r.status, len(r.body))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 9000]), body[i:i + 9000])
                       for i in range(0, size, 9000)) + b"0\r\n\r\n"
    r = request(port, "POST", "/echo", headers={"Transfer-Encoding": "chunked"}, body=chunked)
    assert r.status == 200 and r.body == body
    path = w.dir + f"/body-{size}.bin"
    with open(path, "wb") as f:
        f.write(body)
    code, got, _ = curl(f"http://127.0.0.1:{port}/echo", "--http2-prior-knowledge",
                        "--data-binary", f"@{path}")
    assert code == 200 and got == body


def test_head_and_no_content_length(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    r = request(port, "HEAD", "/size/5000")
    assert r.status == 200 and r.body == b"" and r.header("content-length") == "5000"
    # no content-length from the backend: chunked to an HTTP/1.1 client,
    # close-delimited to HTTP/1.0
    with Conn(port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"
        assert r.header("transfer-encoding") == "chunked"
    with Conn(port) as c:
        c.send(b"POST /echo HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        data = c.read_to_eof()
        assert data.endswith(b"\r\n\r\nhello") and b"chunked" not in data.lower()


def test_nghttpd_static_files(weir, nghttpd):
    port_b, docroot = nghttpd()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{port_b}"])
    r = get(port, "/index.html")
    assert r.status == 200 and r.body == b"nghttpd index\n"
    assert "nghttpd" in (r.header("server") or "")
    big = (docroot / "big.bin").read_bytes()
    code, body, _ = curl(f"http://127.0.0.1:{port}/big.bin")
    assert code == 200 and body == big
    code, body, _ = curl(f"http://127.0.0.1:{port}/big.bin", "--http2-prior-knowledge")
    assert code == 200 and body == big
    assert get(port, "/missing").status == 404


# ---------------------------------------------------------------------------
# multiplexing


def established_to(port):
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def still_open_to(port):
    """Connections to port that weir has not closed yet (established, or
    closed by the other side but still open on weir's side)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "state", "close-wait",
                          f"( dport = :{port} )"], capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def test_64_http1_clients_share_one_backend_connection(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])

    def client(i):
        with Conn(port) as c:
            for j in range(10):
                r = c.request("GET", f"/size/{100 + i}")
                assert r.status == 200 and len(r.body) == 100 + i
        return True

    with concurrent.futures.ThreadPoolExecutor(64) as ex:
        assert all(ex.map(client, range(64)))
    assert o.streams == 640
    assert o.connections == 1, f"{o.connections} backend connections for 64 clients"
    assert established_to(o.port) == 1


def test_max_concurrent_streams_opens_more_connections(weir, h2origin):
    o = h2origin(max_streams=4, delay=0.5 * SLOW)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    assert get(port, "/size/10").status == 200  # the backend's SETTINGS are known
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda i: get(port, "/slow"), range(16)))
    assert [r.status for r in results] == [200] * 16
    assert all(r.body == b"slow ok\n" for r in results)
    assert o.max_open <= 4, f"the backend saw {o.max_open} streams open on one connection"
    assert 4 <= o.connections <= 6, o.connections


# ---------------------------------------------------------------------------
# GOAWAY and refused streams


def load(port, clients, per_client, path="/size/64"):
    def client(i):
        bad = []
        with Conn(port) as c:
            for j in range(per_client):
                r = c.request("GET", path)
                if r.status != 200 or len(r.body) != 64:
                    bad.append((r.status, r.body[:100]))
        return bad

    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        return [b for bad in ex.map(client, range(clients)) for b in bad]


def test_goaway_during_load_loses_nothing(weir, h2origin):
    o = h2origin(goaway_after=40)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    failed = load(port, 16, 25)
    assert failed == [], failed[:5]
    assert o.goaways >= 5, o.goaways
    assert o.connections >= 6


def test_refused_streams_are_replayed(weir, h2origin):
    o = h2origin(refuse_every=5)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    failed = load(port, 8, 25)
    assert failed == [], failed[:5]
    assert o.refused >= 40
    # a POST the backend refused is replayed too: it was not processed
    for i in range(10):
        r = request(port, "POST", "/echo", body=b"payload-%d" % i)
        assert r.status == 200 and r.body == b"payload-%d" % i


def test_goaway_with_h2_clients(weir, h2origin):
    o = h2origin(goaway_after=30, refuse_every=7)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    out = subprocess.run(["h2load", "-n", "1500", "-c", "4", "-m", "16",
                          f"http://127.0.0.1:{port}/size/64"],
                         capture_output=True, text=True, timeout=120)
    assert "1500 succeeded, 0 failed" in out.stdout, out.stdout
    assert "1500 2xx" in out.stdout, out.stdout


# ---------------------------------------------------------------------------
# gRPC-style streaming, trailers, upgrades


def h2_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding=None))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def next_events(s, c, want):
    """Reads until an event of type want arrives; returns the events seen."""
    seen = []
    while True:
        data = s.recv(65536)
        assert data, f"connection closed; events so far: {seen}"
        for ev in c.receive_data(data):
            seen.append(ev)
            if isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        s.sendall(c.data_to_send())
        if any(isinstance(ev, want) for ev in seen):
            return seen


def test_grpc_bidirectional_streaming_with_trailers(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    s, c = h2_client(port)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "grpc.test"),
                         (":path", "/pkg.Svc/Chat"), ("content-type", "application/grpc"),
                         ("te", "trailers")])
    s.sendall(c.data_to_send())
    messages = [b"\x00\x00\x00\x00\x05hello", b"\x00\x00\x00\x00\x05world",
                b"\x00\x00\x00\x00\x03end"]
    got = b""
    events = []
    for i, m in enumerate(messages):
        # the next message goes only after the echo of this one came back
        c.send_data(sid, m, end_stream=i == len(messages) - 1)
        s.sendall(c.data_to_send())
        while not got.endswith(m):
            new = next_events(s, c, h2.events.DataReceived)
            events += new
            got += b"".join(ev.data for ev in new if isinstance(ev, h2.events.DataReceived))
    assert got == b"".join(messages)
    while not any(isinstance(ev, h2.events.StreamEnded) for ev in events):
        events += next_events(s, c, h2.events.StreamEnded)
    heads = [ev for ev in events if isinstance(ev, h2.events.ResponseReceived)]
    assert len(heads) == 1 and dict(heads[0].headers)[b":status"] == b"200"
    trailers = [ev for ev in events if isinstance(ev, h2.events.TrailersReceived)]
    assert trailers, events
    assert dict(trailers[0].headers) == {b"grpc-status": b"0", b"grpc-message": b"ok"}
    assert o.requests[-1]["te"] == "trailers"
    s.close()


def test_trailers_reach_an_http11_client_in_the_last_chunk(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    with Conn(port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        raw = c.read_until(b"\r\n0\r\n")
        raw += c.read_until(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in raw.lower()
    tail = raw[raw.index(b"\r\n0\r\n") + 5:]
    assert b"grpc-status: 0\r\n" in tail and b"grpc-message: ok\r\n" in tail, raw


def test_websocket_to_h2c_server_goes_over_http11(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    with Conn(port) as c:
        c.send(b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
        version, status, reason, headers = c.read_head()
        assert status == 101, (status, headers)
        c.send(ws_frame(1, b"over http/1.1"))
        op, payload = ws_read_frame(c.read_exact)
        assert payload == b"over http/1.1"
    assert o.h1_requests and o.h1_requests[-1][2]["upgrade"] == "websocket"
    # ordinary requests still go over HTTP/2
    assert get(port, "/size/3").header("x-origin-protocol") == "h2"


# ---------------------------------------------------------------------------
# https:// backends: h2 by ALPN


@pytest.fixture
def h2_tls_nginx(tmp_path, pki):
    """nginx with TLS and http2 (certificate a.example.test of the pki),
    answering its protocol and the SNI it saw; returns its port."""
    d = tmp_path / "nginx"
    d.mkdir()
    nport = pick_free_port()
    (d / "nginx.conf").write_text(textwrap.dedent(f"""\
        daemon off;
        master_process off;
        worker_processes 1;
        pid {d}/nginx.pid;
        error_log {d}/error.log warn;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
            uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
            server {{
                listen 127.0.0.1:{nport} ssl http2;
                ssl_certificate {pki.a.crt};
                ssl_certificate_key {pki.a.key};
                location / {{ return 200 "$server_protocol $ssl_server_name\\n"; }}
            }}
        }}
        """))
    p = subprocess.Popen(["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c",
                          str(d / "nginx.conf")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    problem = wait_for_port(nport, 10, p, "nginx")
    assert not problem, problem
    yield nport
    p.terminate()
    p.wait(timeout=10)


def tls_backends_config(port, nport, pki, server_name="a.example.test"):
    return textwrap.dedent(f"""\
        entryPoints:
          web: {{address: "127.0.0.1:{port}"}}
        http:
          routers:
            a: {{rule: "PathPrefix(`/`)", service: h2}}
            b: {{rule: "PathPrefix(`/one`)", service: h1}}
          services:
            h2:
              loadBalancer:
                serversTransport: verified
                servers: [{{url: "https://127.0.0.1:{nport}"}}]
            h1:
              loadBalancer:
                serversTransport: noh2
                servers: [{{url: "https://127.0.0.1:{nport}"}}]
          serversTransports:
            verified: {{serverName: {server_name}, rootCAs: ["{pki.ca.crt}"]}}
            noh2: {{serverName: {server_name}, rootCAs: ["{pki.ca.crt}"], disableHTTP2: true}}
        """)


def test_https_backend_chooses_h2_by_alpn(weir, pki, h2_tls_nginx):
    nport = h2_tls_nginx
    port = pick_free_port()
    weir(tls_backends_config(port, nport, pki))
    for _ in range(3):  # the first goes through ALPN, the next straight to the pool's h2
        r = get(port, "/x")
        assert r.status == 200 and r.body == b"HTTP/2.0 a.example.test\n", r
    r = get(port, "/one")
    assert r.status == 200 and r.body == b"HTTP/1.1 a.example.test\n", r
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        assert all(x.status == 200 for x in ex.map(lambda i: get(port, "/x"), range(64)))
    assert established_to(nport) <= 3


def test_reload_with_other_tls_settings_does_not_reuse_verified_connections(
        weir, pki, h2_tls_nginx):
    """A reload that changes a transport's serverName gets new connections,
    verified against the new name: here it does not match the backend's
    certificate, so 502, although a connection verified before is open."""
    nport = h2_tls_nginx
    port = pick_free_port()
    w = weir(tls_backends_config(port, nport, pki))
    assert get(port, "/x").status == 200
    with open(w.config_path, "w") as f:
        f.write(tls_backends_config(port, nport, pki, server_name="other.example.test"))
    os.kill(w.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10 * SLOW
    while get(port, "/x").status == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = get(port, "/x")
    assert r.status == 502, r
    assert get(port, "/one").status == 502


# ---------------------------------------------------------------------------
# PING health checks against a black hole

PING_TRANSPORT = """\
forwardingTimeouts: {readIdleTimeout: 1s, pingTimeout: 1s, responseHeaderTimeout: 20s}
"""
# readIdleTimeout + pingTimeout + 1 s, with room for the sanitizer build
BOUND = 3.0 + (3.0 if SANITIZED else 0.5)


def black_hole_case(weir, backend_port, relay, path):
    rl = relay(backend_port)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{rl.port}"], transport=PING_TRANSPORT)
    assert get(port, path).status == 200
    assert rl.accepted == 1
    rl.freeze()
    t0 = time.monotonic()
    r = get(port, path, timeout=30)
    took = time.monotonic() - t0
    assert r.status == 200, r
    assert took <= BOUND, f"answered after {took:.2f} s"
    assert rl.accepted == 2, "the dead connection was reused instead of replaced"
    assert "no PING ACK within 1s (1 so far)" in w.output(), w.logs_tail()
    # the fresh connection serves the next requests
    assert get(port, path).status == 200
    assert rl.accepted == 2
    return w


def test_black_hole_h2c_origin_is_replaced(weir, h2origin, relay):
    o = h2origin()
    black_hole_case(weir, o.port, relay, "/size/10")


def test_black_hole_nghttpd_is_replaced(weir, nghttpd, relay):
    port_b, _ = nghttpd()
    black_hole_case(weir, port_b, relay, "/index.html")


def test_black_hole_request_in_flight_is_replayed(weir, h2origin, relay):
    """The black hole starts while the connection is idle; a request sent
    on the dead connection before the PING fails is replayed (GET, nothing
    received) on the fresh one."""
    o = h2origin()
    rl = relay(o.port)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{rl.port}"],
                         transport="forwardingTimeouts: {readIdleTimeout: 2s, pingTimeout: 2s}\n")
    assert get(port, "/size/10").status == 200
    rl.freeze()
    t0 = time.monotonic()
    r = get(port, "/size/10", timeout=30)  # sent at once on the frozen connection
    took = time.monotonic() - t0
    assert r.status == 200
    assert took <= 5.0 + (3.0 if SANITIZED else 0.5), took
    assert rl.accepted == 2


def test_black_hole_post_in_flight_gets_502(weir, h2origin, relay):
    o = h2origin()
    rl = relay(o.port)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{rl.port}"], transport=PING_TRANSPORT)
    assert get(port, "/size/10").status == 200
    rl.freeze()
    r = request(port, "POST", "/echo", body=b"not idempotent", timeout=30)
    assert r.status == 502, r
    assert get(port, "/size/10").status == 200


def test_without_health_check_the_request_waits_for_response_header_timeout(
        weir, h2origin, relay):
    o = h2origin()
    rl = relay(o.port)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{rl.port}"],
                         transport="forwardingTimeouts: {responseHeaderTimeout: 2s}\n")
    assert get(port, "/size/10").status == 200
    rl.freeze()
    t0 = time.monotonic()
    r = get(port, "/size/10", timeout=30)
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert took >= 1.9, took
    assert rl.accepted == 1, "no fresh connection without the health check"
    assert "no PING ACK" not in w.output()


def test_static_transport_accepts_the_ping_timeouts(weir, h2origin, relay):
    o = h2origin()
    rl = relay(o.port)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{rl.port}"], static=textwrap.dedent("""\
        serversTransport:
          forwardingTimeouts: {readIdleTimeout: 1s, pingTimeout: 1s}
        """))
    assert get(port, "/size/10").status == 200
    rl.freeze()
    r = get(port, "/size/10", timeout=30)
    assert r.status == 200
    assert rl.accepted == 2
    assert "no PING ACK within 1s" in w.output()


NETNS_SCRIPT = r'''
import os, signal, subprocess, sys, time, socket
sys.path.insert(0, sys.argv[1])
weir_bin, workdir, docroot = sys.argv[2], sys.argv[3], sys.argv[4]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
def wait(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")
backend = subprocess.Popen(["nghttpd", "--no-tls", "-d", docroot, "18443"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
cfg = os.path.join(workdir, "weir-netns.yml")
with open(cfg, "w") as f:
    f.write("""core: {workers: 1}
entryPoints:
  web: {address: "127.0.0.1:18080"}
http:
  routers:
    r: {rule: "PathPrefix(`/`)", service: s}
  services:
    s:
      loadBalancer:
        serversTransport: t
        servers: [{url: "h2c://127.0.0.1:18443"}]
  serversTransports:
    t:
      forwardingTimeouts: {readIdleTimeout: 1s, pingTimeout: 1s, responseHeaderTimeout: 20s}
""")
log = open(os.path.join(workdir, "weir-netns.log"), "wb")
weir = subprocess.Popen([weir_bin, "--configFile", cfg], stdout=log, stderr=log)
try:
    wait(18443); wait(18080)
    def get():
        s = socket.create_connection(("127.0.0.1", 18080), 30)
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        return data.split(b" ", 2)[1].decode()
    print("first", get(), flush=True)
    # drop the established backend connection's packets (new ones pass: a
    # different source port)
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :18443 )"],
                         capture_output=True, text=True, check=True).stdout.split()
    sport = out[2].rsplit(":", 1)[1]
    subprocess.run(["nft", "add", "table", "inet", "bh"], check=True)
    subprocess.run(["nft", "add", "chain", "inet", "bh", "out",
                    "{ type filter hook output priority 0; }"], check=True)
    subprocess.run(["nft", "add", "rule", "inet", "bh", "out", "tcp", "sport", sport, "drop"], check=True)
    subprocess.run(["nft", "add", "rule", "inet", "bh", "out", "tcp", "dport", sport, "drop"], check=True)
    t0 = time.monotonic()
    status = get()
    print("second", status, round(time.monotonic() - t0, 2), flush=True)
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :18443 )"],
                         capture_output=True, text=True).stdout
    print("conns", len(out.splitlines()), flush=True)
finally:
    weir.terminate(); backend.terminate()
    weir.wait(20); backend.wait(10)
'''


def test_black_hole_by_nftables_in_a_network_namespace(tmp_path):
    """The same failure made by the kernel: in a network namespace of the
    test's own, nftables drops every packet of the established backend
    connection (both directions) while new connections pass."""
    for tool in ("ip", "nft", "nghttpd"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/deps.sh installs it")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root on this machine")
    ns = f"weirtest{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow network namespaces")
    try:
        docroot = tmp_path / "htdocs"
        docroot.mkdir()
        (docroot / "index.html").write_text("ok\n")
        script = tmp_path / "netns_case.py"
        script.write_text(NETNS_SCRIPT)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", str(script),
             os.path.dirname(__file__), WEIR_BIN, str(tmp_path), str(docroot)],
            capture_output=True, text=True, timeout=90)
        log = (tmp_path / "weir-netns.log").read_text(errors="replace")
        assert out.returncode == 0, out.stdout + out.stderr + log
        lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
        assert lines["first"] == "200"
        status, took = lines["second"].split()
        assert status == "200", out.stdout + log
        assert float(took) <= BOUND, out.stdout
        assert "no PING ACK within 1s" in log, log
        for marker in ("ERROR: AddressSanitizer", "runtime error:"):
            assert marker not in log, log
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_complete_response_survives_the_backend_closing(weir, h2origin):
    """The backend sends a whole response, then GOAWAY and closes, while the
    client has not taken it yet (an HTTP/2 client with a 1000-byte stream
    window that it keeps closed): weir keeps the rest and the client still
    gets every byte once it opens its window."""
    o = h2origin(goaway_after=1)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"], static="log: {level: DEBUG}\n")
    size = 200000
    s, c = h2_client(port)
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                         (":path", f"/size/{size}")], end_stream=True)
    s.sendall(c.data_to_send())
    deadline = time.monotonic() + 10 * SLOW
    while (o.goaways == 0 or still_open_to(o.port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert o.goaways == 1 and still_open_to(o.port) == 0, "the backend did not finish"
    body = b""
    ended = False
    while not ended:
        data = s.recv(65536)
        assert data, f"closed after {len(body)} body bytes"
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                body += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, sid)
                try:
                    c.increment_flow_control_window(ev.flow_controlled_length, sid)
                except h2.exceptions.StreamClosedError:
                    pass  # its last DATA came in this same read
            elif isinstance(ev, h2.events.StreamReset):
                pytest.fail(f"stream reset after {len(body)} body bytes")
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
        s.sendall(c.data_to_send())
    assert hashlib.sha256(body).hexdigest() == pattern_sha256(size)
    s.close()
    assert get(port, "/size/10").status == 200
    assert "response bytes kept for the client" in w.output(), w.logs_tail()


# ---------------------------------------------------------------------------
# backend faults


def test_backend_reset_mid_response_is_never_a_clean_end(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    with Conn(port) as c:
        c.send(b"GET /reset-mid HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(EOFError):
            c.read_response()  # HTTP/1.1: the connection closes short of the length
    s, hc = h2_client(port)
    sid = hc.get_next_available_stream_id()
    hc.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                          (":path", "/reset-mid")], end_stream=True)
    s.sendall(hc.data_to_send())
    events = next_events(s, hc, (h2.events.StreamReset, h2.events.StreamEnded))
    assert any(isinstance(ev, h2.events.StreamReset) for ev in events), events
    assert not any(isinstance(ev, h2.events.StreamEnded) for ev in events), events
    s.close()
    assert get(port, "/size/10").status == 200  # the backend connection lives on


def test_client_gone_cancels_the_backend_stream(weir, h2origin):
    o = h2origin(delay=1.0 * SLOW)
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"])
    c = Conn(port)
    c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 5 * SLOW
    while not o.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    c.close()
    deadline = time.monotonic() + 5 * SLOW
    while not o.resets_received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert o.resets_received == [8], o.resets_received  # CANCEL
    assert get(port, "/size/10").status == 200
    # an HTTP/2 client's RST_STREAM cancels the backend stream too
    n = len(o.requests)
    s, hc = h2_client(port)
    sid = hc.get_next_available_stream_id()
    hc.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                          (":path", "/slow")], end_stream=True)
    s.sendall(hc.data_to_send())
    deadline = time.monotonic() + 5 * SLOW
    while len(o.requests) == n and time.monotonic() < deadline:
        time.sleep(0.02)
    hc.reset_stream(sid)
    s.sendall(hc.data_to_send())
    deadline = time.monotonic() + 5 * SLOW
    while len(o.resets_received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert o.resets_received == [8, 8], o.resets_received
    s.close()


def test_garbage_from_an_h2c_backend_is_a_502(weir):
    """A backend that answers the HTTP/2 preface with HTTP/1.1 text."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    bport = srv.getsockname()[1]
    stop = False

    def serve():
        while not stop:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            except OSError:
                pass
            conn.close()

    import threading
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        w, port = start_weir(weir, [f"h2c://127.0.0.1:{bport}"])
        for _ in range(3):
            r = get(port, "/")
            assert r.status == 502, r
    finally:
        stop = True
        srv.shutdown(socket.SHUT_RDWR)
        srv.close()
        t.join(5)


def test_client_gone_closes_an_http11_backend_request_too(weir, tmp_path):
    """The same cancellation on an HTTP/1.1 backend: weir closes the
    backend connection when the client leaves before the response, and the
    access log says 499."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10 * SLOW)
    bport = srv.getsockname()[1]
    port = pick_free_port()
    w = weir(config(port, [f"http://127.0.0.1:{bport}"], static="accessLog: {}\n"))
    c = Conn(port)
    c.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    b, _ = srv.accept()
    b.settimeout(5 * SLOW)
    assert b.recv(65536).startswith(b"GET /wait HTTP/1.1")
    c.close()
    assert b.recv(65536) == b"", "the backend connection was not closed"
    b.close()
    srv.close()
    deadline = time.monotonic() + 5 * SLOW
    while '"GET /wait HTTP/1.1" 499' not in w.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"GET /wait HTTP/1.1" 499' in w.output(), w.logs_tail()


def test_idle_backend_connection_closes_after_idle_conn_timeout(weir, h2origin):
    o = h2origin()
    w, port = start_weir(weir, [f"h2c://127.0.0.1:{o.port}"],
                         transport="forwardingTimeouts: {idleConnTimeout: 1s}\n")
    assert get(port, "/size/10").status == 200
    assert established_to(o.port) == 1
    deadline = time.monotonic() + 5 * SLOW
    while established_to(o.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert established_to(o.port) == 0, "the idle connection stayed open"
    assert get(port, "/size/10").status == 200  # and a new one is dialed
    assert o.connections == 2
