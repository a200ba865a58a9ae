"""Error statuses a client sees: 400 (malformed and smuggling attempts),
404, 408, 414, 431, 502, 503, 504, and idle connection timeouts."""

import socket
import threading
import time

import pytest

from conftest import pick_free_port
from helpers import SLOW, Conn, request, send_raw, simple_config
from origin import Reply


def assert_short_plain(resp):
    assert 0 < len(resp.body) < 512, resp
    assert b"<html" not in resp.body.lower()


@pytest.fixture
def proxied(weir, origin, free_port):
    """weir with a catch-all route to one Python origin."""
    o = origin("o")
    weir(simple_config(free_port, [o.url], entrypoint_extra="""
        http:
          maxHeaderBytes: 16384
        """))
    return free_port, o


# -- upstream failures ---------------------------------------------------------

def test_502_when_the_origin_refuses_connections(weir, free_port):
    dead = pick_free_port()  # nothing listens there
    weir(simple_config(free_port, [f"http://127.0.0.1:{dead}"]))
    r = request(free_port, "GET", "/")
    assert r.status == 502
    assert_short_plain(r)


def test_502_when_the_origin_resets_before_responding(weir, origin, free_port):
    o = origin("o", default=Reply(reset=True))
    weir(simple_config(free_port, [o.url]))
    r = request(free_port, "GET", "/reset")
    assert r.status == 502
    assert_short_plain(r)


def test_502_when_the_origin_closes_without_responding(weir, origin, free_port):
    o = origin("o", default=Reply(raw=b""))
    weir(simple_config(free_port, [o.url]))
    r = request(free_port, "POST", "/eof", body=b"x")
    assert r.status == 502


def test_502_when_the_origin_answers_garbage(weir, origin, free_port):
    o = origin("o", default=Reply(raw=b"this is not HTTP\r\n\r\n"))
    weir(simple_config(free_port, [o.url]))
    r = request(free_port, "GET", "/garbage")
    assert r.status == 502


def test_client_connection_survives_a_502(weir, free_port):
    dead = pick_free_port()
    weir(simple_config(free_port, [f"http://127.0.0.1:{dead}"], rule="PathPrefix(`/dead`)"))
    with Conn(free_port) as c:
        assert c.request("GET", "/dead").status == 502
        assert c.request("GET", "/nothing-here").status == 404


def test_503_when_the_service_has_no_servers(weir, free_port):
    weir(simple_config(free_port, []))
    r = request(free_port, "GET", "/")
    assert r.status == 503
    assert_short_plain(r)


def test_504_when_the_origin_is_slower_than_response_header_timeout(weir, origin, free_port):
    o = origin("o", default=Reply(200, "too late\n", delay=4))
    weir(simple_config(free_port, [o.url], static="""
        serversTransport:
          forwardingTimeouts:
            responseHeaderTimeout: 1s
        """))
    t0 = time.monotonic()
    r = request(free_port, "GET", "/slow", timeout=10 * SLOW)
    elapsed = time.monotonic() - t0
    assert r.status == 504
    assert_short_plain(r)
    assert 0.9 <= elapsed < 3.5 * SLOW, f"504 after {elapsed:.2f} s, timeout was 1 s"


def test_no_504_when_the_origin_answers_in_time(weir, origin, free_port):
    o = origin("o", default=Reply(200, "in time\n", delay=0.3))
    weir(simple_config(free_port, [o.url], static="""
        serversTransport:
          forwardingTimeouts:
            responseHeaderTimeout: 2s
        """))
    r = request(free_port, "GET", "/")
    assert (r.status, r.body) == (200, b"in time\n")


# -- client timeouts ------------------------------------------------------------

READ_TIMEOUT_1S = """
    transport:
      respondingTimeouts:
        readTimeout: 1s
        idleTimeout: 30s
    """


def test_408_when_the_request_head_does_not_arrive_in_read_timeout(weir, origin, free_port):
    o = origin("o")
    weir(simple_config(free_port, [o.url], entrypoint_extra=READ_TIMEOUT_1S))
    with Conn(free_port, timeout=10 * SLOW) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: slow.test\r\n")  # the head never ends
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert 0.9 <= elapsed < 3 * SLOW, f"408 after {elapsed:.2f} s, readTimeout was 1 s"
        assert c.is_closed_by_peer(3 * SLOW)
    assert o.requests == []


def test_slowloris_trickling_a_head_still_gets_408(weir, origin, free_port):
    o = origin("o")
    weir(simple_config(free_port, [o.url], entrypoint_extra=READ_TIMEOUT_1S))
    head = b"GET / HTTP/1.1\r\nHost: slow.test\r\n" + b"X-Pad: " + b"a" * 200
    with Conn(free_port) as c:
        c.sock.settimeout(0.1)
        t0 = time.monotonic()
        got = b""
        for byte in head:  # one byte every 0.1 s: never a complete head
            try:
                c.sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                data = c.sock.recv(4096)
                got += data
                if not data or b"\r\n\r\n" in got:
                    break
            except socket.timeout:
                pass
            if time.monotonic() - t0 > 6 * SLOW:
                break
        elapsed = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408"), f"after {elapsed:.1f} s got {got[:100]!r}"
    assert elapsed < 3 * SLOW
    assert o.requests == []


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(weir, origin, free_port):
    o = origin("o")
    weir(simple_config(free_port, [o.url], entrypoint_extra="""
        transport:
          respondingTimeouts:
            idleTimeout: 1s
        """))
    with Conn(free_port) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.is_closed_by_peer(5 * SLOW), "idle connection still open"
        elapsed = time.monotonic() - t0
    assert 0.8 <= elapsed < 3 * SLOW, f"closed after {elapsed:.2f} s, idleTimeout was 1 s"


# -- malformed requests and smuggling attempts ------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

MALFORMED = {
    "cl-and-te": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED)))
    + SMUGGLED,
    "te-and-cl": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED))) + SMUGGLED,
    "space-before-colon": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
                           b"Content-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED)))
    + SMUGGLED,
    "conflicting-content-lengths": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                    b"Content-Length: %d\r\n\r\n" % len(SMUGGLED)) + SMUGGLED,
    "content-length-list": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, %d\r\n\r\n"
                            % len(SMUGGLED)) + SMUGGLED,
    "negative-content-length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
    + SMUGGLED,
    "te-chunked-not-last": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity"
    b"\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-xchunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
    + SMUGGLED,
    "te-on-http-1.0": b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED,
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n"
    + SMUGGLED,
    "missing-host": b"GET / HTTP/1.1\r\nUser-Agent: test\r\n\r\n" + SMUGGLED,
    "duplicate-host": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n" + SMUGGLED,
    "nul-in-header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n" + SMUGGLED,
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED,
}

# Heads that are valid but bodies that are not: weir may already have
# forwarded the head when it finds the error, but the client gets a 400 and
# nothing after the bad body may reach the origin.
BAD_CHUNKED_BODIES = {
    "bad-chunk-size": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
    "chunk-longer-than-size": b"3\r\nhello\r\n0\r\n\r\n",
    "chunk-size-with-spaces": b"5 5\r\nhello\r\n0\r\n\r\n",
}


def wait_and_collect(o):
    time.sleep(0.5 * SLOW)
    return o.paths()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_gets_400_and_nothing_reaches_the_origin(proxied, name):
    port, o = proxied
    resp, closed = send_raw(port, MALFORMED[name])
    assert resp is not None, "weir closed the connection without answering"
    assert resp.status == 400, resp
    assert_short_plain(resp)
    assert closed, "weir kept the connection open after a framing error"
    assert wait_and_collect(o) == []


@pytest.mark.parametrize("name", sorted(BAD_CHUNKED_BODIES))
def test_bad_chunked_body_gets_400_and_is_not_smuggled(proxied, name):
    port, o = proxied
    data = (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + BAD_CHUNKED_BODIES[name] + SMUGGLED)
    resp, closed = send_raw(port, data)
    assert resp is not None, "weir closed the connection without answering"
    assert resp.status == 400, resp
    assert closed
    assert "/smuggled" not in wait_and_collect(o)


def test_414_for_a_request_line_over_8_kib(proxied):
    port, o = proxied
    resp, _ = send_raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp is not None and resp.status == 414, resp
    assert o.requests == []


def test_request_line_just_under_8_kib_is_fine(proxied):
    port, o = proxied
    path = "/" + "b" * 8000
    r = request(port, "GET", path)
    assert r.status == 200
    assert o.last_request().target == path


def test_431_for_too_many_header_fields(proxied):
    port, o = proxied
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    resp, _ = send_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert resp is not None and resp.status == 431, resp
    assert o.requests == []


def test_431_for_a_head_over_max_header_bytes(proxied):
    port, o = proxied  # http.maxHeaderBytes: 16384
    resp, _ = send_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 20000 + b"\r\n\r\n")
    assert resp is not None and resp.status == 431, resp
    assert o.requests == []


def test_head_under_max_header_bytes_is_fine(proxied):
    port, o = proxied
    r = request(port, "GET", "/", headers={"X-Big": "y" * 8000})
    assert r.status == 200
    assert o.last_request().header("X-Big") == "y" * 8000


def test_431_with_the_default_limit_for_a_huge_head(weir, origin, free_port):
    o = origin("o")
    weir(simple_config(free_port, [o.url]))  # default maxHeaderBytes: 1 MiB
    big = b"X-Huge: " + b"h" * (2 * 1024 * 1024) + b"\r\n"

    def send_all(c):
        try:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        except OSError:
            pass  # weir may answer and close before reading everything

    with Conn(free_port) as c:
        sender = threading.Thread(target=send_all, args=(c,), daemon=True)
        sender.start()
        r = c.read_response()
        sender.join(10 * SLOW)
    assert r.status == 431
    assert o.requests == []


# -- clients that go away -------------------------------------------------------

def test_clients_that_disconnect_early_do_no_harm(weir, origin, free_port):
    # Port probes, abandoned heads, and clients that leave before the answer.
    # weir must keep serving (and, under ASan, free everything: checked at exit).
    o = origin("o")
    o.route("/slow", Reply(200, "late\n", delay=0.3))
    weir(simple_config(free_port, [o.url]))
    for i in range(50):
        socket.create_connection(("127.0.0.1", free_port), timeout=5).close()
    for i in range(20):
        with Conn(free_port) as c:
            c.send(b"GET /partial HTTP/1.1\r\nHost: x\r\n")
    for i in range(10):
        with Conn(free_port) as c:
            c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    for i in range(10):
        with Conn(free_port) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    time.sleep(0.5 * SLOW)
    r = request(free_port, "GET", "/still-alive")
    assert r.status == 200
    assert r.body.startswith(b"origin=o method=GET target=/still-alive")


def test_dial_timeout_bounds_connecting_to_an_unresponsive_origin(weir, free_port):
    # A listener whose accept queue is full: further SYNs are dropped, so a
    # connect hangs, like an origin behind a black hole.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(blackhole.getsockname())
        fillers.append(s)
    try:
        port = blackhole.getsockname()[1]
        weir(simple_config(free_port, [f"http://127.0.0.1:{port}"], static="""
            serversTransport:
              forwardingTimeouts:
                dialTimeout: 1s
            """))
        t0 = time.monotonic()
        r = request(free_port, "GET", "/", timeout=15 * SLOW)
        elapsed = time.monotonic() - t0
        assert r.status in (502, 504), r
        assert 0.8 <= elapsed < 4 * SLOW, f"answered after {elapsed:.1f} s, dialTimeout 1 s"
    finally:
        for s in fillers:
            s.close()
        blackhole.close()
