"""Proxying HTTP/1.1: forwarded headers, Host, connection reuse, keep-alive,
pipelining, request bodies, Expect: 100-continue, HEAD, 204/304."""

import hashlib
import socket
import time

from helpers import SLOW, Conn, build_request, curl, poll, request, simple_config
from origin import Reply


def start(weir, origin, free_port, **kw):
    o = origin("o")
    w = weir(simple_config(free_port, [o.url], **kw))
    return w, o


# -- forwarded headers ---------------------------------------------------------

def test_forwarded_headers_describe_the_client(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        r = c.request("GET", "/fwd", host=f"app.test:{free_port}")
    assert r.status == 200
    req = o.last_request()
    assert req.header("X-Forwarded-For") == "127.0.0.1"
    assert req.header("X-Forwarded-Proto") == "http"
    assert req.header("X-Forwarded-Host") == f"app.test:{free_port}"
    assert req.header("X-Forwarded-Port") == str(free_port)
    assert req.header("X-Forwarded-Server") == socket.gethostname()
    assert req.header("X-Real-Ip") == "127.0.0.1"


def test_untrusted_client_x_forwarded_for_is_replaced(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    r = request(free_port, "GET", "/", headers={"X-Forwarded-For": "203.0.113.7",
                                                "X-Real-Ip": "203.0.113.7"},
                source="127.0.0.2")
    assert r.status == 200
    req = o.last_request()
    assert req.header_values("X-Forwarded-For") == ["127.0.0.2"]
    assert req.header("X-Real-Ip") == "127.0.0.2"


def test_trusted_client_x_forwarded_for_is_appended_to(weir, origin, free_port):
    w, o = start(weir, origin, free_port, entrypoint_extra="""
        forwardedHeaders:
          trustedIPs: ["127.0.0.2/32"]
        """)
    r = request(free_port, "GET", "/", headers={"X-Forwarded-For": "203.0.113.7"},
                source="127.0.0.2")
    assert r.status == 200
    assert o.last_request().header("X-Forwarded-For") == "203.0.113.7, 127.0.0.2"

    # Another loopback address is not in trustedIPs: its claim is dropped.
    r = request(free_port, "GET", "/", headers={"X-Forwarded-For": "203.0.113.7"},
                source="127.0.0.3")
    assert r.status == 200
    assert o.last_request().header("X-Forwarded-For") == "127.0.0.3"


def test_insecure_forwarded_headers_trust_everyone(weir, origin, free_port):
    w, o = start(weir, origin, free_port, entrypoint_extra="""
        forwardedHeaders:
          insecure: true
        """)
    r = request(free_port, "GET", "/", headers={"X-Forwarded-For": "198.51.100.1"})
    assert r.status == 200
    assert o.last_request().header("X-Forwarded-For") == "198.51.100.1, 127.0.0.1"


def test_pass_host_header_true_by_default(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    assert request(free_port, host="client-facing.test").status == 200
    assert o.last_request().header_values("Host") == ["client-facing.test"]


def test_pass_host_header_false_sends_the_server_host(weir, origin, free_port):
    w, o = start(weir, origin, free_port, service_extra="passHostHeader: false")
    assert request(free_port, host="client-facing.test").status == 200
    assert o.last_request().header_values("Host") == [f"127.0.0.1:{o.port}"]
    assert o.last_request().header("X-Forwarded-Host") == "client-facing.test"


def test_path_and_query_reach_the_origin_unchanged(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    target = "/a/b%20c/d.txt?x=1&y=%2F&empty=&z=a+b"
    assert request(free_port, "GET", target).status == 200
    assert o.last_request().target == target


def test_hop_by_hop_headers_are_not_forwarded(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    r = request(free_port, "GET", "/", headers=[
        ("Connection", "keep-alive, X-Private"), ("X-Private", "secret"),
        ("Keep-Alive", "timeout=5"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("X-Public", "visible")])
    assert r.status == 200
    req = o.last_request()
    assert req.header("X-Public") == "visible"
    assert req.header("X-Private") is None
    assert req.header("Keep-Alive") is None
    assert req.header("Proxy-Authorization") is None


def test_origin_response_status_headers_and_body_reach_the_client(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/created", Reply(201, "made it\n", headers=[("X-Origin", "yes"),
                                                       ("Set-Cookie", "a=1"),
                                                       ("Set-Cookie", "b=2")]))
    r = request(free_port, "POST", "/created", body=b"{}")
    assert r.status == 201
    assert r.body == b"made it\n"
    assert r.header("X-Origin") == "yes"
    assert r.header_values("Set-Cookie") == ["a=1", "b=2"]


def test_chunked_origin_response_is_relayed_intact(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    body = b"".join(b"line %d of a chunked response\n" % i for i in range(200))
    o.route("/chunked", Reply(200, body, chunked=True))
    status, got, _ = curl(w.url("/chunked"))
    assert status == 200
    assert got == body


# -- connections ---------------------------------------------------------------

def test_sequential_requests_reuse_one_origin_connection(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        for i in range(20):
            assert c.request("GET", f"/seq/{i}").status == 200
    assert len(o.requests) == 20
    assert o.accepted == 1, f"origin accepted {o.accepted} connections for 20 requests"


def test_separate_client_connections_share_the_origin_pool(weir, origin, free_port):
    w, o = start(weir, origin, free_port, static="""
        core:
          workers: 1
        """)
    for i in range(10):
        status, _, _ = curl(w.url(f"/conn/{i}"))
        assert status == 200
    assert len(o.requests) == 10
    assert o.accepted == 1, f"origin accepted {o.accepted} connections for 10 requests"


def test_client_keep_alive(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        for i in range(5):
            r = c.request("GET", f"/ka/{i}")
            assert r.status == 200
            assert r.body.startswith(f"origin=o method=GET target=/ka/{i}".encode())
        assert not c.is_closed_by_peer(0.5)


def test_connection_close_is_honoured(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        r = c.request("GET", "/", headers={"Connection": "close"})
        assert r.status == 200
        assert c.is_closed_by_peer(5 * SLOW)


def test_http_1_0_client_gets_its_answer_then_close(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: legacy.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body.startswith(b"origin=o method=GET target=/old")
        assert c.is_closed_by_peer(5 * SLOW)


def test_pipelined_requests_are_answered_in_order(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/slow-first", Reply(200, "first\n", delay=0.3))
    o.route("/second", Reply(200, "second\n"))
    with Conn(free_port) as c:
        host = f"127.0.0.1:{free_port}"
        c.send(build_request("GET", "/slow-first", host=host)
               + build_request("GET", "/second", host=host)
               + build_request("GET", "/third", host=host))
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
    assert (r1.status, r1.body) == (200, b"first\n")
    assert (r2.status, r2.body) == (200, b"second\n")
    assert r3.status == 200 and r3.body.startswith(b"origin=o method=GET target=/third")


# -- request bodies ------------------------------------------------------------

def test_content_length_body_is_forwarded(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    body = bytes(range(256)) * 1000
    r = request(free_port, "PUT", "/upload", body=body)
    assert r.status == 200
    assert o.last_request().body == body


def test_chunked_request_body_is_forwarded(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    pieces = [b"hello ", b"chunked ", b"x" * 70000, b" world"]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with Conn(free_port) as c:
        c.send(build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")],
                             host="chunky.test") + wire)
        r = c.read_response()
        assert r.status == 200
        # The connection is still usable: the body's end was found exactly.
        assert c.request("GET", "/after").status == 200
    got = [req for req in o.requests if req.path == "/chunked"]
    assert len(got) == 1
    assert got[0].body == b"".join(pieces)


def test_chunked_body_sent_slowly_is_forwarded(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    with Conn(free_port) as c:
        c.send(build_request("POST", "/trickle", [("Transfer-Encoding", "chunked")],
                             host="t.test"))
        for i in range(5):
            c.send(b"4\r\nab%02d\r\n" % i)
        c.send(b"0\r\n\r\n")
        assert c.read_response().status == 200
    assert o.last_request().body == b"ab00ab01ab02ab03ab04"


def test_expect_100_continue(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    body = b"payload after continue" * 100
    with Conn(free_port) as c:
        c.send(build_request("POST", "/expect", [("Expect", "100-continue"),
                                                 ("Content-Length", str(len(body)))],
                             host="e.test"))
        version, status, _, _ = c.read_head()
        assert status == 100, "no 100 Continue before the body was sent"
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert o.last_request().body == body


def test_curl_large_post_with_expect(weir, origin, free_port, tmp_path):
    w, o = start(weir, origin, free_port)
    data = hashlib.sha256(b"seed").digest() * 40000  # 1.28 MB: curl sends Expect
    f = tmp_path / "post.bin"
    f.write_bytes(data)
    status, _, _ = curl(w.url("/big"), "--data-binary", f"@{f}", "-H",
                        "Content-Type: application/octet-stream")
    assert status == 200
    assert o.last_request().body == data


# -- bodiless responses --------------------------------------------------------

def test_head_response_has_no_body(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/doc", Reply(200, "x" * 1234))
    with Conn(free_port) as c:
        r = c.request("HEAD", "/doc")
        assert r.status == 200
        assert r.header("Content-Length") == "1234"
        # Had weir sent body bytes, they would be read as the next response.
        r2 = c.request("GET", "/doc")
        assert r2.status == 200 and r2.body == b"x" * 1234
    assert [req.method for req in o.requests] == ["HEAD", "GET"]


def test_204_and_304_have_no_body(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/nocontent", Reply(204, headers=[("X-Kind", "204")]))
    o.route("/cached", Reply(304, headers=[("ETag", '"v1"'), ("Content-Length", "999")],
                             no_body=True))
    with Conn(free_port) as c:
        r = c.request("DELETE", "/nocontent")
        assert r.status == 204 and r.header("X-Kind") == "204"
        r = c.request("GET", "/cached", headers={"If-None-Match": '"v1"'})
        assert r.status == 304 and r.header("ETag") == '"v1"'
        r = c.request("GET", "/after")
        assert r.status == 200
        assert r.body.startswith(b"origin=o method=GET target=/after")


def test_origin_closing_an_idle_connection_causes_no_error(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.default = Reply(200, "ok\n", silent_close=True)
    with Conn(free_port) as c:
        for i in range(5):
            r = c.request("GET", f"/again/{i}")
            assert (r.status, r.body) == (200, b"ok\n"), f"request {i}: {r}"
            time.sleep(0.2)
    assert len(o.requests) == 5


def test_origin_answering_before_reading_the_body(weir, origin, free_port):
    # Like nginx's `return` or an early 401: the response comes before the
    # origin reads the request body. The client gets it, and its keep-alive
    # connection remains usable for the next request.
    w, o = start(weir, origin, free_port)
    o.route("/early", Reply(401, "no thanks\n", early=True))
    body = hashlib.sha256(b"early").digest() * 32768  # 1 MiB
    for conn in range(10):
        with Conn(free_port) as c:
            for i in range(3):
                r = c.request("POST", "/early", body=body)
                assert (r.status, r.body) == (401, b"no thanks\n"), f"conn {conn} req {i}: {r}"
            r = c.request("GET", "/after")
            assert r.status == 200


def test_idle_pooled_connections_close_after_idle_conn_timeout(weir, origin, free_port):
    w, o = start(weir, origin, free_port, static="""
        serversTransport:
          forwardingTimeouts:
            idleConnTimeout: 1s
        """)
    assert request(free_port, "GET", "/").status == 200
    assert o.open_connections() == 1
    assert poll(lambda: o.open_connections() == 0, 4 * SLOW), \
        "weir kept its idle origin connection past idleConnTimeout"
    # The next request simply opens a new connection.
    assert request(free_port, "GET", "/").status == 200
    assert o.accepted == 2


CHUNKED_WITH_TRAILERS = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
                         b"\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Checksum: abc123\r\n\r\n")


def test_trailers_of_a_chunked_response_reach_an_http_1_1_client(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/trailers", Reply(raw=CHUNKED_WITH_TRAILERS))
    with Conn(free_port) as c:
        c.send(build_request("GET", "/trailers", host="t.test"))
        version, status, reason, headers = c.read_head()
        names = {n.lower(): v for n, v in headers}
        assert status == 200
        assert names.get("transfer-encoding", "").lower() == "chunked"
        raw = c.read_until(b"\r\n\r\n")
        assert b"hello" in raw and b", world" in raw
        assert raw.endswith(b"0\r\nX-Checksum: abc123\r\n\r\n")


def test_chunked_response_is_decoded_for_an_http_1_0_client(weir, origin, free_port):
    w, o = start(weir, origin, free_port)
    o.route("/trailers", Reply(raw=CHUNKED_WITH_TRAILERS))
    with Conn(free_port) as c:
        c.send(b"GET /trailers HTTP/1.0\r\nHost: legacy.test\r\n\r\n")
        version, status, reason, headers = c.read_head()
        names = {n.lower() for n, v in headers}
        assert status == 200
        assert "transfer-encoding" not in names
        assert "content-length" not in names
        assert c.read_to_eof() == b"hello, world"
