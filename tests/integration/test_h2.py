"""HTTP/2 to clients: ALPN h2 over TLS, h2c with prior knowledge, streams
in the common request model (routing, bodies both ways, trailers), the
SETTINGS weir announces, many streams, graceful shutdown, and abuse: rapid
reset, CONTINUATION and SETTINGS/PING floods, HPACK bombs, zero-window
readers. Real peers: curl, nghttp, h2load, python-h2/hyperframe."""

import hashlib
import signal
import subprocess
import textwrap
import threading
import time

import pytest
from hyperframe.frame import ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, SettingsFrame

from conftest import pick_free_port
from h2util import (CANCEL, ENHANCE_YOUR_CALM, H2, NO_ERROR, PROTOCOL_ERROR, raw_frame)
from helpers import curl, get
from origin import Reply, pattern_chunks, pattern_sha256
from tlsutil import Certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("h2certs"))


def h2_config(port, origin_url, tls_cert=None, ep_extra="", static=""):
    cfg = textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{port}"
        """) + textwrap.indent(textwrap.dedent(ep_extra), "    ") + static
    if tls_cert:
        cfg += f"tls:\n  certificates:\n    - {{certFile: {tls_cert[0]}, keyFile: {tls_cert[1]}}}\n"
    tls = ", tls: {}" if tls_cert else ""
    cfg += textwrap.dedent(f"""\
        http:
          routers:
            who: {{rule: "PathPrefix(`/who`)", service: whoami@internal{tls}}}
            app: {{rule: "Host(`app.test`)", service: app{tls}}}
            other: {{rule: "Host(`other.test`)", service: noop@internal{tls}}}
          services:
            app:
              loadBalancer:
                servers: [{{url: "{origin_url}"}}]
        """)
    return cfg


def run(*args, timeout=60):
    return subprocess.run(args, capture_output=True, timeout=timeout)


def test_alpn_h2_over_tls(weir, origin, certs):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url, certs.a))
    out = run("curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
              "--resolve", f"a.example.test:{port}:127.0.0.1", "--cacert", certs.ca[0],
              "-H", "Host: app.test", f"https://a.example.test:{port}/x")
    assert out.stdout == b"2 200", out.stderr
    req = o.last_request()
    assert req.target == "/x" and req.header("X-Forwarded-Proto") == "https"


def test_h2c_prior_knowledge_and_routing_by_authority(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    out = run("curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}",
              "-H", "Host: app.test", f"http://127.0.0.1:{port}/hello?q=1")
    assert out.stdout.endswith(b"\n2 200"), out
    assert o.last_request().target == "/hello?q=1"
    assert o.last_request().header("Host") == "app.test"
    out = run("curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
              "-H", "Host: other.test", f"http://127.0.0.1:{port}/")
    assert out.stdout == b"200"
    out = run("curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
              "-H", "Host: nowhere.test", f"http://127.0.0.1:{port}/")
    assert out.stdout == b"404"
    out = run("curl", "-sS", "--http2-prior-knowledge", f"http://127.0.0.1:{port}/who")
    assert b"GET /who HTTP/2.0" in out.stdout


def test_large_download_over_h2_byte_for_byte(weir, origin, certs):
    port = pick_free_port()
    o = origin()
    size = 24 * 1024 * 1024
    o.route("/big", Reply(200, stream=size))
    o.route("/bigc", Reply(200, stream=size // 3, chunked=True))
    weir(h2_config(port, o.url, certs.a))
    for path, n in (("/big", size), ("/bigc", size // 3)):
        out = subprocess.run(["curl", "-sS", "--http2", "--resolve", f"a.example.test:{port}:127.0.0.1",
                              "--cacert", certs.ca[0], "-H", "Host: app.test",
                              f"https://a.example.test:{port}{path}"],
                             capture_output=True, timeout=120)
        assert len(out.stdout) == n
        assert hashlib.sha256(out.stdout).hexdigest() == pattern_sha256(n)


def test_large_upload_over_h2_byte_for_byte(weir, origin, certs, tmp_path):
    port = pick_free_port()
    o = origin()
    size = 16 * 1024 * 1024
    body = tmp_path / "up.bin"
    with open(body, "wb") as f:
        for c in pattern_chunks(size):
            f.write(c)
    weir(h2_config(port, o.url, certs.a))
    out = run("curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code}",
              "--resolve", f"a.example.test:{port}:127.0.0.1", "--cacert", certs.ca[0],
              "-H", "Host: app.test", "--data-binary", f"@{body}", f"https://a.example.test:{port}/up",
              timeout=120)
    assert out.stdout == b"200", out.stderr
    req = o.last_request()
    assert req.body_len == size
    assert req.body_sha256 == pattern_sha256(size)


def test_upload_without_content_length_goes_chunked(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    payload = b"".join(bytes(c) for c in pattern_chunks(200 * 1024))
    with H2(port) as c:
        # weir's SETTINGS (stream window 256 KiB) and its connection window
        # update come first; stay within those windows
        assert c.wait_for(lambda f: f.__class__.__name__ == "WindowUpdateFrame" and f.stream_id == 0)
        c.headers(1, c.request_headers("/stream", "POST", "app.test"), end_stream=False)
        sent = 0
        while sent < len(payload):
            n = min(16384, len(payload) - sent)
            c.data(1, payload[sent:sent + n], end_stream=False)
            sent += n
        c.data(1, b"", end_stream=True)
        resp = c.response(1, timeout=20)
    assert resp and resp[0] == 200
    req = o.last_request()
    assert req.chunked
    assert req.body_len == len(payload)
    assert req.body_sha256 == hashlib.sha256(payload).hexdigest()


def test_trailers_pass_through(weir, origin):
    port = pick_free_port()
    o = origin()
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n"
           b"Trailer: grpc-status\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n")
    o.route("/grpc", Reply(raw=raw))
    weir(h2_config(port, o.url))
    out = run("nghttp", "-v", "-H", ":authority: app.test", f"http://127.0.0.1:{port}/grpc")
    text = out.stdout.decode()
    assert "grpc-status: 0" in text and "grpc-message: fine" in text, text
    with H2(port) as c:
        c.get(1, "/grpc", authority="app.test")
        status, headers, body, trailers = c.response(1)
    assert status == 200 and body == b"hello"
    assert trailers == {"grpc-status": "0", "grpc-message": "fine"}
    assert "transfer-encoding" not in headers


def test_settings_announce_max_concurrent_streams(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url, ep_extra="http2: {maxConcurrentStreams: 2}\n"))
    with H2(port) as c:
        f = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
        assert f.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 2
        # a third concurrent stream is refused
        o.route("/slow", Reply(200, body="s", delay=1.0))
        for sid in (1, 3, 5):
            c.get(sid, "/slow", authority="app.test")
        # RFC 9113 §5.1.2: REFUSED_STREAM or PROTOCOL_ERROR; nghttp2 ends the
        # connection for it, keeping the streams it accepted
        r = c.wait_for(lambda f: (f.__class__.__name__ == "RstStreamFrame" and f.stream_id == 5)
                       or isinstance(f, GoAwayFrame))
        assert r is not None and r.error_code in (7, PROTOCOL_ERROR)
        if isinstance(r, GoAwayFrame):
            assert r.last_stream_id == 3
        else:
            assert c.response(1)[0] == 200
    with H2(port) as c:
        f = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    port2 = pick_free_port()
    weir(h2_config(port2, o.url), name="default.yml")
    with H2(port2) as c:
        f = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
        assert f.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 250


def test_h2load_many_streams(weir, origin, certs):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url, certs.a))
    out = run("h2load", "-n", "2000", "-c", "4", "-m", "10", "-H", ":authority: app.test",
              f"https://127.0.0.1:{port}/", timeout=120)
    text = out.stdout.decode()
    assert "2000 succeeded" in text and "2000 2xx" in text, text


def test_concurrent_streams_get_their_own_responses(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    with H2(port) as c:
        sids = list(range(1, 200, 2))
        for sid in sids:
            c.get(sid, f"/p{sid}", authority="app.test")
        got = {}
        deadline = time.monotonic() + 20
        bodies = {sid: b"" for sid in sids}
        while len(got) < len(sids) and time.monotonic() < deadline:
            f = c.read_frame(1)
            if f is None:
                continue
            if isinstance(f, HeadersFrame) and f.stream_id in bodies:
                pass
            if isinstance(f, DataFrame):
                bodies[f.stream_id] += f.data
                if f.flow_controlled_length:
                    c.window_update(0, f.flow_controlled_length)
                if "END_STREAM" in f.flags:
                    got[f.stream_id] = bodies[f.stream_id]
    assert len(got) == len(sids)
    for sid in sids:
        assert f"/p{sid}".encode() in got[sid]


def test_graceful_shutdown_two_goaways_and_in_flight_completes(weir, origin):
    port = pick_free_port()
    o = origin()
    o.route("/slow", Reply(200, body="done", delay=2.0))
    w = weir(h2_config(port, o.url))
    with H2(port, timeout=15) as c:
        c.get(1, "/slow", authority="app.test")
        o.wait_for_requests(1)
        w.send_signal(signal.SIGTERM)
        first = c.goaway(5)
        assert first is not None and first.last_stream_id == 2**31 - 1
        second = c.goaway(5)
        assert second is not None and second.last_stream_id == 1
        status, _, body, _ = c.response(1, timeout=10)
        assert status == 200 and body == b"done"
    assert w.wait_exit(15) == 0


def served(port):
    out = run("curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
              "-H", "Host: other.test", f"http://127.0.0.1:{port}/", timeout=20)
    return out.stdout == b"200"


def test_rapid_reset_ends_in_goaway_and_cancels_backend_work(weir, origin):
    port = pick_free_port()
    o = origin()
    o.route("/slow", Reply(200, body="x", delay=5.0))
    weir(h2_config(port, o.url))
    with H2(port) as c:
        sid = 1
        for _ in range(1000):
            c.get(sid, "/slow", authority="app.test")
            c.rst_stream(sid, CANCEL)
            sid += 2
            if c.closed:
                break
        g = c.goaway(5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM
        assert c.is_closed(5)
    assert served(port)
    # the requests that reached the origin were abandoned, not left open
    time.sleep(0.5)
    assert o.open_connections() <= 2


def test_continuation_flood_closes_connection(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    with H2(port) as c:
        h = HeadersFrame(1)
        h.data = c.block(c.request_headers("/", authority="app.test"))
        c.send(h)  # no END_HEADERS
        for i in range(5000):
            f = ContinuationFrame(1)
            f.data = c.enc.encode([(f"x-flood-{i % 50}", "y" * 10)])
            c.send(f)
            if c.closed:
                break
        g = c.goaway(5)
        assert g is not None and g.error_code in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR, 9)
        assert c.is_closed(5)
    assert served(port)


def test_hpack_bomb_is_refused(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url, ep_extra="http: {maxHeaderBytes: 65536}\n"))
    with H2(port) as c:
        # one big entry in the dynamic table, then many references to it
        big = ("x-bomb", "z" * 4000)
        c.headers(1, c.request_headers("/", authority="app.test") + [big])
        first = c.response(1)
        assert first is not None and first[0] == 200
        c.headers(3, c.request_headers("/", authority="app.test") + [big] * 200)
        f = c.wait_for(lambda f: f.stream_id == 3 and (isinstance(f, HeadersFrame) or
                                                       f.__class__.__name__ == "RstStreamFrame")
                       or isinstance(f, GoAwayFrame))
        assert f is not None
        if isinstance(f, HeadersFrame):
            assert dict(f.decoded)[":status"] in ("431", b"431")
    assert not o.requests or all(r.header("x-bomb") is None or len(r.headers) < 150 for r in o.requests)
    assert served(port)


@pytest.mark.parametrize("flood", ["settings", "ping"])
def test_settings_and_ping_floods(weir, origin, flood):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    with H2(port) as c:
        for _ in range(2000):
            if flood == "settings":
                c.send(SettingsFrame(0))
            else:
                c.ping()
            if c.closed:
                break
        g = c.goaway(5)
        assert g is not None and g.error_code == ENHANCE_YOUR_CALM
    assert served(port)


def test_zero_window_reader_ends_after_write_timeout(weir, origin):
    port = pick_free_port()
    o = origin()
    o.route("/big", Reply(200, stream=4 * 1024 * 1024))
    weir(h2_config(port, o.url, ep_extra="transport: {respondingTimeouts: {writeTimeout: 1s}}\n"))
    with H2(port, timeout=10, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}) as c:
        start = time.monotonic()
        c.get(1, "/big", authority="app.test")
        r = c.rst(1, timeout=8)
        assert r is not None
        assert 0.8 < time.monotonic() - start < 8
    assert served(port)


def test_content_length_disagreeing_with_data_is_reset(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    with H2(port) as c:
        c.headers(1, c.request_headers("/cl", "POST", "app.test") + [("content-length", "10")],
                  end_stream=False)
        c.data(1, b"12345678901234", end_stream=True)
        r = c.rst(1)
        assert r is not None and r.error_code == PROTOCOL_ERROR
        c.headers(3, c.request_headers("/cl2", "POST", "app.test") + [("content-length", "10")],
                  end_stream=False)
        c.data(3, b"123", end_stream=True)
        r = c.rst(3)
        assert r is not None and r.error_code == PROTOCOL_ERROR
    time.sleep(0.3)
    assert all(r.body_len in (0, 10) and r.path not in ("/cl",) or r.body_len == 10
               for r in o.requests if r.path in ("/cl", "/cl2")) or not any(
        r.path == "/cl2" and r.body_len == 10 for r in o.requests)
    assert not any(r.path == "/cl" and r.body_len != 10 for r in o.requests)


def test_malformed_fields_are_reset(weir, origin):
    port = pick_free_port()
    o = origin()
    weir(h2_config(port, o.url))
    cases = [[("X-Upper", "1")], [("connection", "keep-alive")], [("transfer-encoding", "chunked")],
             [("te", "gzip")], [("upgrade", "h2c")]]
    with H2(port) as c:
        sid = 1
        for extra in cases:
            hdrs = c.request_headers("/bad", authority="app.test") + extra
            f = HeadersFrame(sid)
            f.data = c.block(hdrs)
            f.flags.add("END_STREAM")
            f.flags.add("END_HEADERS")
            c.send(f)
            r = c.rst(sid)
            assert r is not None and r.error_code == PROTOCOL_ERROR, extra
            sid += 2
    assert not any(r.path == "/bad" for r in o.requests)


def test_access_log_says_http2(weir, origin):
    port = pick_free_port()
    o = origin()
    w = weir(h2_config(port, o.url, static="accessLog: {}\n"))
    run("curl", "-sS", "--http2-prior-knowledge", "-H", "Host: app.test", f"http://127.0.0.1:{port}/logged")
    deadline = time.monotonic() + 5
    while "/logged" not in w.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [l for l in w.stdout().splitlines() if "/logged" in l][0]
    assert '"GET /logged HTTP/2.0" 200' in line
