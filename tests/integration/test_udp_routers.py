"""UDP routers (udp.routers, udp.services, entryPoints.<name>.udp.timeout):
an echo service behind weir, many concurrent flows each answered on its
own, flows that expire after the timeout, and the configuration checks."""

import socket
import subprocess
import textwrap
import threading
import time

import pytest

from conftest import WEIR_BIN, pick_free_port, wait_for_port
from helpers import SLOW


class UDPEcho:
    """Answers every datagram with "<tag>:<datagram>" and remembers the
    source address of each (weir's flow sockets)."""

    def __init__(self, tag):
        self.tag = tag.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources = []
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(65536)
            except OSError:
                return
            self.sources.append(src)
            self.sock.sendto(self.tag + b":" + data, src)

    def stop(self):
        self.stopped = True
        self.sock.close()


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(uport, tport, services, timeout="3s"):
    return textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{tport}"
          dns:
            address: "127.0.0.1:{uport}/udp"
            udp: {{timeout: {timeout}}}
        udp:
          routers:
            r: {{entryPoints: [dns], service: s}}
          services:
        """) + textwrap.indent(textwrap.dedent(services), "    ")


@pytest.fixture
def echo():
    started = []

    def start(tag):
        e = UDPEcho(tag)
        started.append(e)
        return e
    yield start
    for e in started:
        e.stop()


def ask(port, payload, sock=None, timeout=5):
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout * SLOW)
    s.sendto(payload, ("127.0.0.1", port))
    data, _ = s.recvfrom(65536)
    if sock is None:
        s.close()
    return data


def test_echo_through_a_udp_router_with_100_flows(weir, echo):
    e = echo("one")
    uport, tport = free_udp_port(), pick_free_port()
    weir(config(uport, tport, f"""\
        s: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{e.port}"}}]}}}}
        """), wait=False)
    assert wait_for_port(tport, 10 * SLOW) is None
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(100)]
    for i, s in enumerate(socks):
        s.settimeout(5 * SLOW)
        s.sendto(b"hello %d" % i, ("127.0.0.1", uport))
    # every client gets its own answer, on its own socket
    for i, s in enumerate(socks):
        data, _ = s.recvfrom(65536)
        assert data == b"one:hello %d" % i
    # a second datagram of a flow uses the same flow (same source at the server)
    before = len(set(e.sources))
    for i, s in enumerate(socks):
        s.sendto(b"again %d" % i, ("127.0.0.1", uport))
    for i, s in enumerate(socks):
        data, _ = s.recvfrom(65536)
        assert data == b"one:again %d" % i
    assert len(set(e.sources)) == before == 100
    for s in socks:
        s.close()


def test_flows_expire_after_the_timeout(weir, echo):
    e = echo("x")
    uport, tport = free_udp_port(), pick_free_port()
    weir(config(uport, tport, f"""\
        s: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{e.port}"}}]}}}}
        """, timeout="300ms"), wait=False)
    assert wait_for_port(tport, 10 * SLOW) is None
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert ask(uport, b"a", s) == b"x:a"
    assert ask(uport, b"b", s) == b"x:b"
    assert e.sources[0] == e.sources[1]  # one flow
    time.sleep(1.0)
    assert ask(uport, b"c", s) == b"x:c"
    assert e.sources[2] != e.sources[0]  # the old flow expired: a new one
    s.close()


def test_weighted_udp_services(weir, echo):
    a, b = echo("a"), echo("b")
    uport, tport = free_udp_port(), pick_free_port()
    weir(config(uport, tport, f"""\
        w: {{weighted: {{services: [{{name: sa, weight: 1}}, {{name: sb, weight: 1}}]}}}}
        sa: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{a.port}"}}]}}}}
        sb: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{b.port}"}}]}}}}
        """).replace("service: s}", "service: w}"), wait=False)
    assert wait_for_port(tport, 10 * SLOW) is None
    tags = set()
    for i in range(8):
        tags.add(ask(uport, b"q%d" % i).split(b":")[0])
    assert tags == {b"a", b"b"}


def test_udp_configuration_errors(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(textwrap.dedent("""\
        entryPoints:
          web:
            address: ":8080"
          dns:
            address: ":5353/udp"
        udp:
          routers:
            r1: {entryPoints: [dns], service: s}
            r2: {entryPoints: [dns], service: s}
            r3: {entryPoints: [web], service: nope}
          services:
            s: {loadBalancer: {servers: [{address: "127.0.0.1:53"}]}}
        """))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    assert "already has the UDP router" in out, out
    assert "not a UDP entry point" in out, out
    assert 'UDP service "nope" does not exist' in out, out
