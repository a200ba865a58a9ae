"""HTTP/2 to clients, as they see it: h2 by ALPN over TLS and h2c with prior
knowledge on the same entry point, routing by :authority, large bodies both
ways compared byte for byte, response trailers, the SETTINGS weir announces
(maxConcurrentStreams), many streams at once each with its own response,
and a graceful shutdown (GOAWAY, the in-flight response completes).

Real peers: curl, nghttp, h2load, and a python-h2 client (H2Client below).
Certificates come from the session-scoped `pki` fixture (tlspki.py).
"""

import hashlib
import re
import signal
import socket
import ssl
import subprocess
import textwrap
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from conftest import pick_free_port
from helpers import SLOW
from origin import Reply, pattern_chunks, pattern_sha256
from tlspki import require_tool

TOOL_TIMEOUT = 60 * SLOW
IO_TIMEOUT = 10 * SLOW

NAMES = ("a.example.test", "b.example.test", "nowhere.example.test")


# ---------------------------------------------------------------------------
# configuration: the same routers for TLS connections and for plain ones


def h2_config(port, pki, app_url, other_url, ep_extra="", more_eps=""):
    """Entry point `web`: routers for a.example.test (service app),
    b.example.test (service other) and PathPrefix(/who) (whoami@internal),
    each twice: a TLS router and a plain one (weir serves TLS routers on TLS
    connections only, plain ones on plain connections only)."""
    ep_extra = "".join("    " + line + "\n" for line in textwrap.dedent(ep_extra).splitlines()
                       if line.strip())
    routers = ""
    for suffix, tls in (("tls", ", tls: {}"), ("plain", "")):
        routers += textwrap.dedent(f"""\
                app-{suffix}: {{rule: "Host(`a.example.test`)", service: app{tls}}}
                other-{suffix}: {{rule: "Host(`b.example.test`)", service: other{tls}}}
                who-{suffix}: {{rule: "PathPrefix(`/who`)", service: whoami@internal{tls}}}
            """)
    routers = "".join("    " + line + "\n" for line in routers.splitlines())
    return (f'entryPoints:\n  web:\n    address: "127.0.0.1:{port}"\n{ep_extra}{more_eps}'
            "tls:\n  certificates:\n"
            f"    - {{certFile: {pki.a.crt}, keyFile: {pki.a.key}}}\n"
            f"    - {{certFile: {pki.b.crt}, keyFile: {pki.b.key}}}\n"
            "http:\n  routers:\n" + routers +
            "  services:\n"
            f'    app: {{loadBalancer: {{servers: [{{url: "{app_url}"}}]}}}}\n'
            f'    other: {{loadBalancer: {{servers: [{{url: "{other_url}"}}]}}}}\n')


def start(weir, origin, pki, **kw):
    port = pick_free_port()
    app, other = origin("app"), origin("other")
    w = weir(h2_config(port, pki, app.url, other.url, **kw))
    return w, port, app, other


# ---------------------------------------------------------------------------
# tools


def run(*args, timeout=TOOL_TIMEOUT, **kw):
    require_tool(args[0])
    return subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          **kw)


def curl(url, *args, timeout=TOOL_TIMEOUT):
    """curl -sS url; every name in NAMES resolves to 127.0.0.1. Returns
    (exit code, body, write-out tail "code version verify", stderr)."""
    port = int(re.match(r"\w+://[^/]+:(\d+)", url).group(1))
    resolve = []
    for n in NAMES:
        resolve += ["--resolve", f"{n}:{port}:127.0.0.1"]
    out = run("curl", "-sS", "--max-time", str(int(timeout)), *resolve, "-o", "-",
              "-w", "\n%{http_code} %{http_version} %{ssl_verify_result}", *args, url,
              timeout=timeout + 5)
    body, _, tail = out.stdout.rpartition(b"\n")
    return out.returncode, body, tail.decode(), out.stderr.decode("latin-1")


def nghttp(*args, timeout=TOOL_TIMEOUT):
    out = run("nghttp", *args, timeout=timeout)
    return out.returncode, out.stdout, out.stderr.decode("latin-1")


def h2load(*args, timeout=TOOL_TIMEOUT):
    out = run("h2load", *args, timeout=timeout)
    return out.stdout.decode("latin-1") + out.stderr.decode("latin-1")


def pattern_file(path, size):
    with open(path, "wb") as f:
        for chunk in pattern_chunks(size):
            f.write(chunk)
    return str(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# a python-h2 client


class H2Client:
    """One HTTP/2 connection to 127.0.0.1:port: h2c with prior knowledge,
    or TLS with ALPN h2 (ca: the test CA to verify with, sni: server name).
    Every read is bounded by a deadline."""

    def __init__(self, port, ca=None, sni=None, timeout=IO_TIMEOUT):
        self.timeout = timeout
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ca is not None:
            ctx = ssl.create_default_context(cafile=ca.crt)
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname=sni)
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 << 20)
        self.flush()
        self.server_settings = {}
        self.settings_seen = False
        self.streams = {}
        self.goaway = None
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, authority, method="GET", scheme="http", headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":path", path),
                (":authority", authority), *headers]
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.streams[sid] = {"headers": None, "data": bytearray(), "trailers": None,
                             "ended": False, "reset": None}
        self.flush()
        return sid

    def _handle(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
            for code, change in ev.changed_settings.items():
                self.server_settings[code] = change.new_value
        elif isinstance(ev, h2.events.ResponseReceived):
            self.streams[ev.stream_id]["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id]["data"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.streams[ev.stream_id]["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id]["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            if ev.stream_id in self.streams:
                self.streams[ev.stream_id]["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def pump(self, until, timeout=None):
        """Reads and handles frames until until() is true; returns whether it is."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return until()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return until()
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                return until()
            for ev in self.conn.receive_data(data):
                self._handle(ev)
            self.flush()
        return True

    def wait_settings(self):
        assert self.pump(lambda: self.settings_seen), "no SETTINGS from weir"
        return self.server_settings

    def response(self, sid, timeout=None):
        """(status, headers, body, trailers) of stream sid."""
        st = self.streams[sid]
        ok = self.pump(lambda: st["ended"] or st["reset"] is not None, timeout)
        assert ok, f"stream {sid} did not end within the timeout"
        assert st["reset"] is None, f"stream {sid} was reset ({st['reset']})"
        return int(st["headers"][":status"]), st["headers"], bytes(st["data"]), st["trailers"]


# ---------------------------------------------------------------------------
# ALPN h2, h2c, routing


def test_alpn_h2_over_tls(weir, origin, pki):
    w, port, app, other = start(weir, origin, pki)
    rc, body, tail, err = curl(f"https://a.example.test:{port}/x?y=1", "--http2",
                               "--cacert", pki.ca.crt)
    assert (rc, tail) == (0, "200 2 0"), err
    req = app.last_request()
    assert req.target == "/x?y=1"
    assert req.header("X-Forwarded-Proto") == "https"
    assert req.header("Host") == f"a.example.test:{port}"
    # HTTP/1.1 on the same TLS port still works (ALPN http/1.1)
    rc, body, tail, err = curl(f"https://a.example.test:{port}/x", "--http1.1",
                               "--cacert", pki.ca.crt)
    assert (rc, tail) == (0, "200 1.1 0"), err
    # nghttp (no SNI for an IP address: the default certificate, not verified)
    rc, out, err = nghttp("-nv", "-H", ":authority: a.example.test", f"https://127.0.0.1:{port}/n")
    text = out.decode("latin-1")
    assert rc == 0, text + err
    assert "The negotiated protocol: h2" in text, text
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", text), text
    assert app.last_request().target == "/n"


def test_h2c_with_prior_knowledge(weir, origin, pki):
    w, port, app, other = start(weir, origin, pki)
    rc, body, tail, err = curl(f"http://127.0.0.1:{port}/who/am/i", "--http2-prior-knowledge")
    assert (rc, tail.split()[:2]) == (0, ["200", "2"]), err
    assert b"GET /who/am/i HTTP/2.0" in body, body
    # nghttp speaks h2c with prior knowledge to http:// URLs
    rc, out, err = nghttp("-v", "-H", ":authority: a.example.test", f"http://127.0.0.1:{port}/h2c")
    text = out.decode("latin-1")
    assert rc == 0, text + err
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", text), text
    assert app.last_request().target == "/h2c"
    assert app.last_request().header("X-Forwarded-Proto") == "http"
    # HTTP/1.1 on the same port
    rc, body, tail, err = curl(f"http://127.0.0.1:{port}/who")
    assert tail.split()[:2] == ["200", "1.1"], err
    assert b"GET /who HTTP/1.1" in body


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_routing_by_authority(weir, origin, pki, tls):
    w, port, app, other = start(weir, origin, pki)
    if tls:
        args = ("--http2", "--cacert", pki.ca.crt)
        url = f"https://a.example.test:{port}"
    else:
        args = ("--http2-prior-knowledge",)
        url = f"http://127.0.0.1:{port}"
    for authority, target in (("a.example.test", app), ("b.example.test", other)):
        rc, body, tail, err = curl(f"{url}/route", *args, "-H", f"Host: {authority}")
        assert tail.split()[:2] == ["200", "2"], (authority, err)
        req = target.last_request()
        assert req is not None and req.target == "/route", authority
        assert req.header("Host") == authority
        assert body.startswith(f"origin={target.name} ".encode()), body
    assert len(app.requests) == 1 and len(other.requests) == 1
    rc, body, tail, err = curl(f"{url}/route", *args, "-H", "Host: nowhere.example.test")
    assert tail.split()[:2] == ["404", "2"], err
    # python-h2: :authority alone (no Host header) routes the same way
    ca, sni = (pki.ca, "a.example.test") if tls else (None, None)
    with H2Client(port, ca=ca, sni=sni) as c:
        s1 = c.request("/by-authority", "b.example.test", scheme="https" if tls else "http")
        s2 = c.request("/by-authority", "a.example.test", scheme="https" if tls else "http")
        assert c.response(s1)[0] == 200 and c.response(s2)[0] == 200
    assert other.last_request().target == "/by-authority"
    assert app.last_request().target == "/by-authority"


# ---------------------------------------------------------------------------
# bodies


def test_large_upload_echoed_over_h2_with_tls(weir, origin, pki, tmp_path):
    w, port, app, other = start(weir, origin, pki)
    app.route("/echo", Reply(echo=True))
    size = 8 * 1024 * 1024
    up = pattern_file(tmp_path / "up.bin", size)
    down = tmp_path / "down.bin"
    out = run("curl", "-sS", "--http2", "--max-time", str(int(TOOL_TIMEOUT)),
              "--resolve", f"a.example.test:{port}:127.0.0.1", "--cacert", pki.ca.crt,
              "--data-binary", f"@{up}", "-H", "Content-Type: application/octet-stream",
              "-o", str(down), "-w", "%{http_code} %{http_version} %{size_upload} %{size_download}",
              f"https://a.example.test:{port}/echo")
    assert out.stdout.decode() == f"200 2 {size} {size}", out.stderr
    req = app.last_request()
    assert req.method == "POST" and req.body_len == size
    assert req.body_sha256 == pattern_sha256(size)
    assert sha256_file(down) == pattern_sha256(size)


def test_large_upload_echoed_over_h2c_with_nghttp(weir, origin, pki, tmp_path):
    w, port, app, other = start(weir, origin, pki)
    app.route("/echo", Reply(echo=True))
    size = 8 * 1024 * 1024
    up = pattern_file(tmp_path / "up.bin", size)
    rc, out, err = nghttp("-d", up, "-H", ":authority: a.example.test",
                          f"http://127.0.0.1:{port}/echo")
    assert rc == 0, err
    assert len(out) == size
    assert hashlib.sha256(out).hexdigest() == pattern_sha256(size)
    req = app.last_request()
    assert req.body_len == size and req.body_sha256 == pattern_sha256(size)


def test_large_downloads_over_h2(weir, origin, pki, tmp_path):
    w, port, app, other = start(weir, origin, pki)
    big, chunked = 32 * 1024 * 1024, 12 * 1024 * 1024 + 7
    app.route("/big", Reply(200, stream=big))
    app.route("/chunked", Reply(200, stream=chunked, chunked=True))
    for path, size in (("/big", big), ("/chunked", chunked)):
        down = tmp_path / f"{path[1:]}.bin"
        out = run("curl", "-sS", "--http2", "--max-time", str(int(TOOL_TIMEOUT)),
                  "--resolve", f"a.example.test:{port}:127.0.0.1", "--cacert", pki.ca.crt,
                  "-o", str(down), "-w", "%{http_code} %{http_version}",
                  f"https://a.example.test:{port}{path}")
        assert out.stdout == b"200 2", out.stderr
        assert down.stat().st_size == size
        assert sha256_file(down) == pattern_sha256(size), path
        # the same over h2c with nghttp
        rc, body, err = nghttp("-H", ":authority: a.example.test", f"http://127.0.0.1:{port}{path}")
        assert rc == 0, err
        assert len(body) == size and hashlib.sha256(body).hexdigest() == pattern_sha256(size)


def test_response_trailers_pass_through(weir, origin, pki):
    w, port, app, other = start(weir, origin, pki)
    app.route("/grpc", Reply(200, body="hello, trailers", chunked=True,
                             headers=[("Content-Type", "application/grpc"),
                                      ("Trailer", "grpc-status, grpc-message")],
                             trailers=[("grpc-status", "0"), ("grpc-message", "all good")]))
    # nghttp over TLS and over h2c: a trailing HEADERS frame ends the stream
    for url in (f"https://127.0.0.1:{port}/grpc", f"http://127.0.0.1:{port}/grpc"):
        rc, out, err = nghttp("-v", "-H", ":authority: a.example.test", url)
        text = out.decode("latin-1")
        assert rc == 0, text + err
        # nghttp logs the fields of a HEADERS frame, then the frame
        first, _, rest = text.partition("; First response header")
        assert rest, text
        assert re.search(r"recv \(stream_id=\d+\) :status: 200", first), text
        assert "grpc-status" not in first and "hello, trailers" in rest, text
        assert re.search(r"recv DATA frame <[^>]*>\n"
                         r"(?:.*\n)*?\[[ \d.]+\] recv \(stream_id=\d+\) grpc-status: 0\n"
                         r"\[[ \d.]+\] recv \(stream_id=\d+\) grpc-message: all good\n"
                         r"\[[ \d.]+\] recv HEADERS frame <[^>]*>\n\s*; END_STREAM \| END_HEADERS",
                         rest), text
    # python-h2 sees them as trailers, and no transfer-encoding header
    with H2Client(port) as c:
        sid = c.request("/grpc", "a.example.test", headers=[("te", "trailers")])
        status, hdrs, body, trailers = c.response(sid)
    assert status == 200 and body == b"hello, trailers"
    assert trailers == {"grpc-status": "0", "grpc-message": "all good"}
    assert "transfer-encoding" not in hdrs and "connection" not in hdrs
    assert app.last_request().header("TE") == "trailers"


def test_upload_with_request_trailers(weir, origin, pki, tmp_path):
    w, port, app, other = start(weir, origin, pki)
    app.route("/up", Reply(echo=True))
    size = 300 * 1024
    up = pattern_file(tmp_path / "up.bin", size)
    rc, out, err = nghttp("-d", up, "--trailer", "x-checksum: 1234", "-H",
                          ":authority: a.example.test", f"http://127.0.0.1:{port}/up")
    assert rc == 0, err
    assert hashlib.sha256(out).hexdigest() == pattern_sha256(size)
    req = app.last_request()
    assert req.body_len == size and req.body_sha256 == pattern_sha256(size)


# ---------------------------------------------------------------------------
# SETTINGS, many streams


def test_max_concurrent_streams_is_announced(weir, origin, pki):
    port, port2 = pick_free_port(), pick_free_port()
    app, other = origin("app"), origin("other")
    more = f'  default-ep:\n    address: "127.0.0.1:{port2}"\n'
    weir(h2_config(port, pki, app.url, other.url, ep_extra="http2: {maxConcurrentStreams: 2}",
                   more_eps=more))
    MCS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
    with H2Client(port) as c:
        assert c.wait_settings()[MCS] == 2
    with H2Client(port, ca=pki.ca, sni="a.example.test") as c:
        assert c.wait_settings()[MCS] == 2
    # the other entry point keeps Traefik's default
    with H2Client(port2) as c:
        assert c.wait_settings()[MCS] == 250
    # nghttp shows it too
    rc, out, err = nghttp("-nv", "-H", ":authority: a.example.test", f"http://127.0.0.1:{port}/")
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):2]" in out.decode(), out
    # two streams at a time are served: a client keeping within the limit
    # from its first request on gets everything done
    app.route("/slowish", Reply(200, body="ok", delay=0.02))
    text = h2load("-n", "60", "-c", "1", "-m", "2", "-H", ":authority: a.example.test",
                  f"http://127.0.0.1:{port}/slowish")
    assert "60 succeeded" in text and "60 2xx" in text, text
    assert sum(r.path == "/slowish" for r in app.requests) == 60


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_h2load_1000_requests(weir, origin, pki, tls):
    w, port, app, other = start(weir, origin, pki)
    if tls:
        # --connect-to keeps the name in the URL for SNI and :authority
        args = (f"--connect-to=127.0.0.1:{port}", f"https://a.example.test:{port}/load")
    else:
        args = ("-H", ":authority: a.example.test", f"http://127.0.0.1:{port}/load")
    text = h2load("-n", "1000", "-c", "4", "-m", "10", *args)
    assert re.search(r"Application protocol: h2c?\b", text), text
    assert "requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed" in text, text
    assert "status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx" in text, text
    assert len(app.requests) == 1000
    # whoami@internal under the same load
    path = f"https://a.example.test:{port}/who" if tls else f"http://127.0.0.1:{port}/who"
    text = h2load("-n", "1000", "-c", "4", "-m", "10",
                  *(args[:1] if tls else ()), path)
    assert "1000 succeeded" in text and "1000 2xx" in text, text


def test_concurrent_streams_each_get_their_own_response(weir, origin, pki):
    w, port, app, other = start(weir, origin, pki)
    n = 100

    def handler(req):
        # later streams answer sooner, so responses come back out of order
        i = int(req.path.rsplit("/", 1)[-1])
        return Reply(200, body=f"answer for {req.path} ({req.header('Host')})",
                     delay=(n - i) * 0.003)
    app.handler = handler
    with H2Client(port) as c:
        sids = {c.request(f"/stream/{i}", "a.example.test"): i for i in range(n)}
        for sid, i in sids.items():
            status, _, body, _ = c.response(sid, timeout=30 * SLOW)
            assert status == 200
            assert body == f"answer for /stream/{i} (a.example.test)".encode(), (sid, body)
    assert sorted(r.path for r in app.requests) == sorted(f"/stream/{i}" for i in range(n))
    # whoami@internal over TLS: each stream's own path and authority
    with H2Client(port, ca=pki.ca, sni="a.example.test") as c:
        sids = {}
        for i in range(60):
            # names no Host rule claims: the PathPrefix(`/who`) routers
            authority = f"w{i % 3}.example.test"
            sids[c.request(f"/who/{i}", authority, scheme="https")] = (i, authority)
        for sid, (i, authority) in sids.items():
            status, _, body, _ = c.response(sid, timeout=30 * SLOW)
            assert status == 200
            assert f"GET /who/{i} HTTP/2.0".encode() in body, body
            assert f"Host: {authority}".encode() in body, body


# ---------------------------------------------------------------------------
# graceful shutdown


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_graceful_shutdown_sends_goaway_and_finishes_in_flight(weir, origin, pki, tls):
    w, port, app, other = start(weir, origin, pki)
    app.route("/slow", Reply(200, body="slow response done", delay=2.0))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/slow"
    require_tool("nghttp")
    proc = subprocess.Popen(["nghttp", "-v", "-H", ":authority: a.example.test", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert app.wait_for_requests(1, timeout=IO_TIMEOUT), "the request did not reach the origin"
        w.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TOOL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = out.decode("latin-1")
    assert proc.returncode == 0, text + err.decode("latin-1")
    status = re.search(r"recv \(stream_id=(\d+)\) :status: (\d+)", text)
    assert status and status.group(2) == "200", text
    sid = int(status.group(1))
    goaways = re.findall(r"recv GOAWAY frame <[^>]*>\n\s*\(last_stream_id=(\d+), "
                         r"error_code=(\w+)", text)
    assert goaways, text
    # a graceful GOAWAY (NO_ERROR) that keeps the in-flight stream
    assert all(code == "NO_ERROR" for _, code in goaways), text
    assert int(goaways[-1][0]) >= sid, text
    assert "slow response done" in text, text
    assert text.index("recv GOAWAY frame") < text.index("slow response done"), text
    assert re.search(r"recv DATA frame <[^>]*stream_id=%d>\n\s*; END_STREAM" % sid, text), text
    assert w.wait_exit(15 * SLOW) == 0, w.logs_tail()
