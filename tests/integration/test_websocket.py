"""WebSocket: the Upgrade handshake goes through weir, then bytes flow both ways."""

import base64
import hashlib
import os

from helpers import SLOW, Conn, simple_config
from origin import WS_GUID, Reply, ws_frame, ws_read_frame


def handshake(port, path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    c = Conn(port, timeout=10 * SLOW)
    c.send(f"GET {path} HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           f"Sec-WebSocket-Key: {key}\r\n\r\n")
    version, status, _, headers = c.read_head()
    h = {k.lower(): v for k, v in headers}
    return c, key, status, h


def expected_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def start(weir, origin, free_port, **reply):
    o = origin("ws", default=Reply(websocket=True, **reply))
    weir(simple_config(free_port, [o.url]))
    return o


def test_upgrade_is_relayed_and_frames_echo_both_ways(weir, origin, free_port):
    o = start(weir, origin, free_port)
    c, key, status, headers = handshake(free_port)
    with c:
        assert status == 101
        assert headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in headers.get("connection", "").lower()
        assert headers.get("sec-websocket-accept") == expected_accept(key)

        c.send(ws_frame(1, b"hello through weir"))
        assert ws_read_frame(c.read_exact) == (1, b"hello through weir")

        big = os.urandom(300 * 1024)
        c.send(ws_frame(2, big))
        assert ws_read_frame(c.read_exact) == (2, big)

        for i in range(20):
            c.send(ws_frame(1, b"msg %d" % i))
        for i in range(20):
            assert ws_read_frame(c.read_exact) == (1, b"msg %d" % i)

        c.send(ws_frame(8, b"\x03\xe8bye"))
        assert ws_read_frame(c.read_exact) == (8, b"\x03\xe8bye")
        assert c.is_closed_by_peer(5 * SLOW)
    req = o.requests[0]
    assert req.header("Upgrade").lower() == "websocket"
    assert req.header("Sec-WebSocket-Key") == key
    assert (1, b"hello through weir") in o.ws_messages


def test_bytes_sent_right_after_the_101_reach_the_client(weir, origin, free_port):
    # The origin's first frame arrives in the same write as the 101 head.
    start(weir, origin, free_port, ws_greeting="welcome")
    c, key, status, _ = handshake(free_port)
    with c:
        assert status == 101
        assert ws_read_frame(c.read_exact) == (1, b"welcome")
        c.send(ws_frame(1, b"ping"))
        assert ws_read_frame(c.read_exact) == (1, b"ping")


def test_origin_refusing_the_upgrade_is_an_ordinary_response(weir, origin, free_port):
    o = origin("plain", default=Reply(200, "no websockets here\n"))
    weir(simple_config(free_port, [o.url]))
    c, key, status, headers = handshake(free_port)
    with c:
        assert status == 200
        body = c.read_exact(int(headers["content-length"]))
        assert body == b"no websockets here\n"
