"""weir in front of a real web server: Debian's nginx."""

import hashlib
import os

from helpers import SLOW, Conn, curl, poll, request, simple_config


def test_get_through_weir_returns_nginx_body(weir, nginx_origin, free_port):
    n = nginx_origin(body="hello from nginx\\n")
    w = weir(simple_config(free_port, [n.url]))
    status, body, headers = curl(w.url("/"))
    assert status == 200
    assert body == b"hello from nginx\n"
    assert "nginx" in headers.lower()  # nginx's Server header is relayed


def test_host_header_reaches_nginx(weir, nginx_origin, free_port):
    n = nginx_origin()
    weir(simple_config(free_port, [n.url]))
    r = request(free_port, "GET", "/host", host="shop.example")
    assert (r.status, r.body) == (200, b"host=shop.example")


def test_pass_host_header_false_with_nginx(weir, nginx_origin, free_port):
    n = nginx_origin()
    weir(simple_config(free_port, [n.url], service_extra="passHostHeader: false"))
    r = request(free_port, "GET", "/host", host="shop.example")
    assert (r.status, r.body) == (200, f"host=127.0.0.1:{n.port}".encode())


def nginx_connections(n, count):
    """The nginx connection numbers of the last `count` requests in its access log."""
    # nginx logs a request after answering it: wait for the last lines.
    poll(lambda: len(n.access_lines()) >= count, 3 * SLOW)
    lines = n.access_lines()[-count:]
    assert len(lines) == count, lines
    return {line.split()[0] for line in lines}, max(int(line.split()[1]) for line in lines)


def test_many_requests_share_one_nginx_connection(weir, nginx_origin, free_port):
    n = nginx_origin(body="pooled")
    weir(simple_config(free_port, [n.url]))
    with Conn(free_port) as c:
        for i in range(200):
            r = c.request("GET", "/")
            assert (r.status, r.body) == (200, b"pooled"), f"request {i}: {r}"
    conns, max_requests = nginx_connections(n, 200)
    assert len(conns) == 1, f"weir used {len(conns)} connections to nginx for 200 requests"
    assert max_requests == 200


def test_curl_invocations_share_the_pool_with_one_worker(weir, nginx_origin, free_port):
    n = nginx_origin(body="pooled")
    w = weir(simple_config(free_port, [n.url], static="""
        core:
          workers: 1
        """))
    for _ in range(10):
        status, body, _ = curl(w.url("/"))
        assert (status, body) == (200, b"pooled")
    conns, _ = nginx_connections(n, 10)
    assert len(conns) == 1, f"weir used {len(conns)} connections to nginx for 10 requests"


def test_large_static_file_from_nginx_is_intact(weir, nginx_origin, free_port):
    data = os.urandom(5 * 1024 * 1024 + 123)
    n = nginx_origin(files={"big.bin": data})
    w = weir(simple_config(free_port, [n.url]))
    status, body, _ = curl(w.url("/big.bin"))
    assert status == 200
    assert len(body) == len(data)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    with Conn(free_port) as c:
        r = c.request("HEAD", "/big.bin")
        assert r.status == 200 and r.header("Content-Length") == str(len(data))
        assert c.request("GET", "/").status == 200


def test_nginx_errors_pass_through(weir, nginx_origin, free_port):
    n = nginx_origin()
    weir(simple_config(free_port, [n.url]))
    with Conn(free_port) as c:
        r = c.request("GET", "/no/such/file")
        assert r.status == 404
        assert b"nginx" in r.body  # nginx's own error page, not weir's
        assert c.request("GET", "/").status == 200


def test_post_body_to_nginx_then_reuse_the_connection(weir, nginx_origin, free_port):
    n = nginx_origin(body="accepted")
    weir(simple_config(free_port, [n.url]))
    with Conn(free_port) as c:
        for i in range(3):
            r = c.request("POST", "/", body=os.urandom(256 * 1024))
            assert (r.status, r.body) == (200, b"accepted"), f"POST {i}: {r}"
    poll(lambda: len(n.access_lines()) >= 3, 3 * SLOW)
    log = n.access_lines()[-3:]
    assert all('"POST / HTTP/1.1" 200' in line for line in log), log
