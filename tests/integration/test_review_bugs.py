"""Review findings: tests that demonstrate bugs (fail now) or guard tricky
behaviour (pass). See /tmp/review/*.patch for the proposed fixes."""

import socket
import struct
import time

from helpers import SLOW, Conn, build_request, request, simple_config
from origin import Reply


# -- 01: a pipelined request that arrives while a response is in flight -------

def test_review_pipelined_request_arriving_during_response_is_served(weir, origin, free_port):
    """The second request arrives (as its own TCP segment) while the first is
    waiting for the origin. The pump never reads the client socket for a
    body-less request, so the read edge is consumed with rd_ready=1 and no
    bytes in c->in; weir_req_finish only re-enters the head reader when
    c->in is non-empty, so the second request waits for an event that never
    comes (until idleTimeout closes the connection)."""
    o = origin("o")
    o.route("/slow", Reply(200, "slow\n", delay=0.5 * SLOW))
    weir(simple_config(free_port, [o.url], entrypoint_extra="""
        transport:
          respondingTimeouts:
            idleTimeout: 30s
        """))
    with Conn(free_port, timeout=3 * SLOW) as c:
        c.send(build_request("GET", "/slow", host="a"))
        time.sleep(0.2 * SLOW)  # request 1 is at the origin now
        c.send(build_request("GET", "/second", host="a"))
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"slow\n"
        r2 = c.read_response()  # hangs (socket.timeout) before the fix
        assert r2.status == 200 and b"/second" in r2.body


def test_review_pipelined_request_arriving_during_internal_error_is_served(weir, origin, free_port):
    """Same edge for a body-less request whose response waits for a slow
    origin and then finishes; here the next request arrives together with a
    FIN (client half-close after pipelining): weir must answer it, then close."""
    o = origin("o")
    o.route("/slow", Reply(200, "slow\n", delay=0.5 * SLOW))
    weir(simple_config(free_port, [o.url]))
    with Conn(free_port, timeout=3 * SLOW) as c:
        c.send(build_request("GET", "/slow", host="a"))
        time.sleep(0.2 * SLOW)
        c.send(build_request("GET", "/second", host="a"))
        c.sock.shutdown(socket.SHUT_WR)
        r1 = c.read_response()
        assert r1.status == 200
        r2 = c.read_response()
        assert r2.status == 200 and b"/second" in r2.body


# -- 02: writeTimeout with readTimeout: 0 --------------------------------------

def test_review_write_timeout_without_read_timeout_does_not_crash(weir, origin, free_port):
    """readTimeout: 0 means the client timer is never armed at accept, so
    c->timer.cb stays NULL (calloc). begin_response arms the write timeout
    with c->timer.cb as callback: when it fires, the loop calls NULL."""
    o = origin("o")
    o.route("/stream", Reply(200, stream=64 << 20))
    w = weir(simple_config(free_port, [o.url], entrypoint_extra="""
        transport:
          respondingTimeouts:
            readTimeout: 0s
            writeTimeout: 300ms
        """))
    with Conn(free_port, timeout=5 * SLOW) as c:
        c.send(build_request("GET", "/stream", host="a"))
        c.read_head()
        # Read slowly: the response cannot finish within writeTimeout.
        deadline = time.monotonic() + 2 * SLOW
        try:
            while time.monotonic() < deadline:
                c.sock.recv(1024)
                time.sleep(0.05)
        except (ConnectionResetError, socket.timeout):
            pass
    time.sleep(0.3 * SLOW)
    assert w.running(), "weir died: " + w.logs_tail(1500)
    # and it still serves
    assert request(free_port, "GET", "/x", host="a").status == 200


# -- guards (pass) -------------------------------------------------------------

def test_review_pipelined_burst_with_bodies_and_head(weir, origin, free_port):
    """All in one write: CL body, chunked body, HEAD, GET. Every answer in order."""
    o = origin("o")
    weir(simple_config(free_port, [o.url]))
    reqs = (build_request("POST", "/a", {"Content-Length": "3"}, b"abc", host="a")
            + b"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nxyz\r\n0\r\n\r\n"
            + build_request("HEAD", "/c", host="a")
            + build_request("GET", "/d", host="a"))
    with Conn(free_port) as c:
        c.send(reqs)
        rs = [c.read_response(m) for m in ("POST", "POST", "HEAD", "GET")]
    assert [r.status for r in rs] == [200] * 4
    assert b"/a" in rs[0].body and b"/b" in rs[1].body and b"/d" in rs[3].body
    got = o.wait_for_requests(4)
    assert got[0].body == b"abc" and got[1].body == b"xyz"


def test_review_retry_on_stale_pooled_connection_resends_head(weir, origin, free_port):
    """The origin closes kept-alive connections silently; a GET on the stale
    pooled connection is retried once on a new connection."""
    o = origin("o")
    o.route("/s", Reply(200, "s\n", silent_close=True))
    weir(simple_config(free_port, [o.url]))
    for i in range(5):
        r = request(free_port, "GET", "/s", host="a")
        assert r.status == 200 and r.body == b"s\n"
        time.sleep(0.05 * SLOW)


# -- guard: a client that closes while a body-less request waits for the
#    origin is not kept in CLOSE_WAIT (the reset from writing to it ends it) --

def _close_wait_count(port):
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fl = line.split()
            if fl[1].endswith(f":{port:04X}") and fl[3] == "08":  # 08 = CLOSE_WAIT
                n += 1
    return n


def test_review_client_gone_during_proxied_request_is_closed(weir, origin, free_port):
    o = origin("o")
    o.route("/slow", Reply(200, "slow\n", delay=0.3 * SLOW))
    weir(simple_config(free_port, [o.url], entrypoint_extra="""
        transport:
          respondingTimeouts:
            idleTimeout: 60s
        """))
    c = Conn(free_port)
    c.send(build_request("GET", "/slow", host="a"))
    time.sleep(0.1 * SLOW)
    c.close()  # FIN while weir waits for the origin
    time.sleep(1.0 * SLOW)  # the origin answered long ago
    assert _close_wait_count(free_port) == 0, "weir kept the dead client's socket open"


# -- 03: X-Forwarded-For sent as several fields by a trusted peer --------------

def test_review_trusted_xff_in_several_fields_keeps_every_hop(weir, origin, free_port):
    """Go's ReverseProxy (Traefik) joins every X-Forwarded-For field:
    "a, b, client". weir keeps only the last field and drops hops."""
    o = origin("o")
    weir(simple_config(free_port, [o.url], entrypoint_extra="""
        forwardedHeaders:
          insecure: true
        """))
    r = request(free_port, "GET", "/", headers=[("X-Forwarded-For", "203.0.113.1"),
                                                ("X-Forwarded-For", "198.51.100.2")])
    assert r.status == 200
    assert o.last_request().header_values("X-Forwarded-For") == [
        "203.0.113.1, 198.51.100.2, 127.0.0.1"]
