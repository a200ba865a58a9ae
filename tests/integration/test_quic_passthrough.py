"""QUIC / HTTP/3 passthrough by SNI (udp.routers with rules): a host weir
reads the SNI of each new QUIC connection from its Initial packets, without
the sites' keys, and forwards its datagrams to the right VM weir, which
terminates HTTP/3 and learns the client's address from a PROXY v2 header
on every datagram.

The client runs in its own network namespace, joined to the host by a veth
pair, so its address differs from the relay's; where namespaces cannot be
made it stays on 127.0.0.1. The VMs listen on 127.0.0.2 and 127.0.0.3.
Real clients: gtlsclient (ngtcp2 0.12), curl; generated packets (the tests'
own Initial sealer, quicinit.py) for QUIC v2, the PROXY header checks and
the flood."""

import hashlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import textwrap
import threading
import time

import pytest

import quicinit
from conftest import WEIR_BIN, pick_free_port
from helpers import SLOW, poll
from origin import Reply, pattern_sha256
from test_http3 import H3Result
from tlsutil import Certs

TIMEOUT = 60 * SLOW
VM_IPS = {"a": "127.0.0.2", "b": "127.0.0.3"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("qpcerts"))


@pytest.fixture(scope="module")
def net():
    """{"ns", "client", "host"}: a namespace for the client with its own
    address; None when namespaces cannot be made here."""
    ns = f"weirq{os.getpid() % 100000}"
    sub = 100 + os.getpid() % 100
    host, client = f"10.201.{sub}.1", f"10.201.{sub}.2"
    va, vb = f"wq{sub}a", f"wq{sub}b"
    steps = [["ip", "netns", "add", ns],
             ["ip", "link", "add", va, "type", "veth", "peer", "name", vb],
             ["ip", "link", "set", vb, "netns", ns],
             ["ip", "addr", "add", f"{host}/24", "dev", va],
             ["ip", "link", "set", va, "up"],
             ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{client}/24", "dev", vb],
             ["ip", "netns", "exec", ns, "ip", "link", "set", vb, "up"],
             ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]]
    ok = True
    for s in steps:
        try:
            if subprocess.run(s, capture_output=True, timeout=10).returncode != 0:
                ok = False
                break
        except (OSError, subprocess.TimeoutExpired):
            ok = False
            break
    yield {"ns": ns, "client": client, "host": host} if ok else None
    subprocess.run(["ip", "link", "del", va], capture_output=True, timeout=10)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def client_ip(net):
    return net["client"] if net else "127.0.0.1"


def host_ip(net):
    return net["host"] if net else "127.0.0.1"


def in_client_ns(net, cmd):
    return ["ip", "netns", "exec", net["ns"], *cmd] if net else cmd


def gtls(tmp_path, net, port, name, paths, *args, host=None, timeout=TIMEOUT, quic_dump=False):
    """gtlsclient in the client's namespace, asking https://NAME:PORT/PATH
    with NAME resolved to the host weir through a private /etc/hosts."""
    hosts = tmp_path / f"hosts-{time.monotonic_ns()}"
    hosts.write_text(f"{host or host_ip(net)} a.example.test b.example.test\n")
    dl = tmp_path / f"dl-{time.monotonic_ns()}"
    dl.mkdir()
    cmd = in_client_ns(net, [
        "unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
        "gtlsclient", "--exit-on-all-streams-close", f"--download={dl}", "--timeout=30s",
        *([] if quic_dump else ["--no-quic-dump"]), "--no-http-dump", *args, name, str(port),
        *[f"https://{name}:{port}{p}" for p in paths]])
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return H3Result(p, (p.stdout + p.stderr).decode(errors="replace"), str(dl))


def wait_tcp(ip, port, proc):
    deadline = time.monotonic() + 20 * SLOW
    while time.monotonic() < deadline:
        assert proc.poll() is None, "weir exited at startup"
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {ip}:{port}")


def start_vm(weir, tmp_path, certs, name, port, advertised, origin_url, extra="", h3=""):
    """A VM weir on 127.0.0.x: HTTP/3 and HTTPS, PROXY accepted from the host
    (127.0.0.1) only, whoami and an origin behind it, a JSON access log."""
    ip = VM_IPS[name]
    cert = getattr(certs, name)
    log = tmp_path / f"vm-{name}.log"
    w = weir(textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "{ip}:{port}"
            http3: {{advertisedPort: {advertised}{h3}}}
            proxyProtocol: {{trustedIPs: ["127.0.0.1/32"]}}
        """) + textwrap.indent(textwrap.dedent(extra), "    ") + textwrap.dedent(f"""\
        accessLog: {{filePath: {log}, format: json}}
        tls:
          certificates:
            - {{certFile: {cert[0]}, keyFile: {cert[1]}}}
        http:
          routers:
            who: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
            o: {{rule: "PathPrefix(`/o/`)", service: o, tls: {{}}}}
          services:
            o: {{loadBalancer: {{servers: [{{url: "{origin_url}"}}]}}}}
        """), wait=False, name=f"vm-{name}.yml")
    wait_tcp(ip, port, w.proc)
    return w, log


def host_config(ip, port, vm_ports, udp_extra="", ep_extra="", catch_all=None):
    routers = "".join(
        f'    {n}: {{entryPoints: [quic], rule: "HostSNI(`{n}.example.test`)", service: u{n}}}\n'
        for n in vm_ports)
    if catch_all:
        routers += f"    rest: {{entryPoints: [quic], service: {catch_all}}}\n"
    services = "".join(
        f'    u{n}: {{loadBalancer: {{servers: [{{address: "{VM_IPS[n]}:{p}"}}], '
        f'serversTransport: pp}}}}\n' for n, p in vm_ports.items())
    tcp_routers = "".join(
        f'    {n}: {{entryPoints: [websecure], rule: "HostSNI(`{n}.example.test`)", '
        f'service: t{n}, tls: {{passthrough: true}}}}\n' for n in vm_ports)
    tcp_services = "".join(
        f'    t{n}: {{loadBalancer: {{servers: [{{address: "{VM_IPS[n]}:{p}"}}], '
        f'serversTransport: pp}}}}\n' for n, p in vm_ports.items())
    return textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "{ip}:{port}"
          quic:
            address: "{ip}:{port}/udp"
        """) + ep_extra + "tcp:\n  routers:\n" + tcp_routers + "  services:\n" + tcp_services + \
        "  serversTransports:\n    pp: {proxyProtocol: {version: 2}}\n" + \
        "udp:\n  routers:\n" + routers + "  services:\n" + services + udp_extra + \
        "  serversTransports:\n    pp: {proxyProtocol: {version: 2}}\n"


def last_entry(log, path):
    assert poll(lambda: log.exists() and path in log.read_text(), 10 * SLOW), \
        log.read_text() if log.exists() else "no access log"
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in entries if e.get("RequestPath") == path][-1]


@pytest.fixture
def topology(weir, tmp_path, certs, origin, net):
    """Two VM weirs and the host weir in front of them."""
    o = origin()
    o.route("/o/big", Reply(stream=4 * 1024 * 1024))
    o.route("/o/echo", Reply(echo=True))
    o.route("/o/hdr", Reply(body=b"ok"))
    hp = pick_free_port()
    pa, pb = pick_free_port(), pick_free_port()
    vma, loga = start_vm(weir, tmp_path, certs, "a", pa, hp, o.url)
    vmb, logb = start_vm(weir, tmp_path, certs, "b", pb, hp, o.url)
    h = weir(host_config(host_ip(net), hp, {"a": pa, "b": pb}), wait=False, name="host.yml")
    wait_tcp(host_ip(net), hp, h.proc)
    return {"port": hp, "logs": {"a": loga, "b": logb}, "host": h, "origin": o}


def test_quic_and_tls_routed_by_sni_with_the_client_address(topology, tmp_path, net):
    port = topology["port"]
    for name in ("a", "b"):
        r = gtls(tmp_path, net, port, f"{name}.example.test", [f"/who-{name}"])
        assert r.statuses() == [200], r
        body = r.body(f"who-{name}").decode()
        assert f"RemoteAddr: {client_ip(net)}:" in body, body  # the VM's own whoami
        assert f"IP: {VM_IPS[name]}" in body, body
        entry = last_entry(topology["logs"][name], f"/who-{name}")
        assert entry["ClientHost"] == client_ip(net), entry
        assert entry["RequestProtocol"] == "HTTP/3.0", entry
        other = topology["logs"]["b" if name == "a" else "a"]
        assert f"/who-{name}" not in (other.read_text() if other.exists() else "")
    # the origin behind the VM sees the client in X-Forwarded-For and X-Real-Ip
    r = gtls(tmp_path, net, port, "a.example.test", ["/o/hdr"])
    assert r.statuses() == [200], r
    req = topology["origin"].last_request()
    assert req.header("X-Forwarded-For") == client_ip(net)
    assert req.header("X-Real-Ip") == client_ip(net)
    # a body byte-exact through the passthrough
    r = gtls(tmp_path, net, port, "a.example.test", ["/o/big"], "-q")
    assert r.rc == 0, r
    got = r.body("big")
    assert len(got) == 4 * 1024 * 1024
    assert hashlib.sha256(got).hexdigest() == pattern_sha256(4 * 1024 * 1024)
    # over TCP the same names pass through to the same VMs, which advertise
    # HTTP/3 on the host's port
    p = subprocess.run(in_client_ns(net, [
        "curl", "-sk", "-D", "-", "--max-time", "20", "--resolve",
        f"b.example.test:{port}:{host_ip(net)}", f"https://b.example.test:{port}/tcp-b"]),
        capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, p.stderr
    assert re.search(rf'(?im)^alt-svc: h3=":{port}"; ma=2592000', out), out
    assert f"RemoteAddr: {client_ip(net)}:" in out, out
    assert last_entry(topology["logs"]["b"], "/tcp-b")["ClientHost"] == client_ip(net)


def test_nat_rebinding_during_upload_keeps_the_flow(topology, tmp_path, net):
    up = tmp_path / "upload.bin"
    data = os.urandom(4 * 1024 * 1024)
    up.write_bytes(data)
    r = gtls(tmp_path, net, topology["port"], "a.example.test", ["/o/echo"],
             "--change-local-addr=50ms", "--nat-rebinding", "-m", "POST", f"--data={up}")
    assert r.statuses() == [200], r
    m = re.search(r"Local address is now \[[0-9.]+\]:(\d+)", r.log)
    assert m, r
    assert r.body("echo") == data
    # the VM was told the client's new port in the PROXY headers
    entry = last_entry(topology["logs"]["a"], "/o/echo")
    assert entry["ClientPort"] == m.group(1), entry


class Shim:
    """A UDP relay between a client and the host weir that reorders or loses
    the client's first datagram (the packets themselves are untouched)."""

    def __init__(self, target, mode):
        self.target, self.mode = target, mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(target)
        self.client = None
        self.count = 0
        self.first = None
        self.stopped = False
        threading.Thread(target=self.down, daemon=True).start()
        threading.Thread(target=self.up_loop, daemon=True).start()

    def down(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                d, addr = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.client = addr
            self.count += 1
            if self.count == 1:
                self.first = d  # lost, or sent after the second
                continue
            self.up.send(d)
            if self.count == 2 and self.mode == "reorder":
                self.up.send(self.first)

    def up_loop(self):
        self.up.settimeout(0.2)
        while not self.stopped:
            try:
                d = self.up.recv(65536)
            except OSError:
                continue
            if self.client:
                self.sock.sendto(d, self.client)

    def stop(self):
        self.stopped = True


@pytest.mark.parametrize("mode", ["reorder", "lose"])
def test_hello_over_two_initials_reordered_or_lost(weir, tmp_path, certs, origin, mode):
    """An FFDHE-8192 key share makes gtlsclient's ClientHello span two
    Initial packets. The second arrives first, or the first is lost and
    resent: weir holds what came, routes once the hello is whole, and sends
    the Initial with CRYPTO offset 0 first; the VM completes the handshake."""
    o = origin()
    hp, pa, pb = pick_free_port(), pick_free_port(), pick_free_port()
    vma, loga = start_vm(weir, tmp_path, certs, "a", pa, hp, o.url)
    vmb, logb = start_vm(weir, tmp_path, certs, "b", pb, hp, o.url)
    h = weir(host_config("127.0.0.1", hp, {"a": pa, "b": pb}), wait=False, name="host.yml")
    wait_tcp("127.0.0.1", hp, h.proc)
    shim = Shim(("127.0.0.1", hp), mode)
    try:
        r = gtls(tmp_path, None, shim.port, "b.example.test", ["/split"],
                 "--groups=-GROUP-ALL:+GROUP-FFDHE8192:+GROUP-X25519", host="127.0.0.1",
                 quic_dump=True)
    finally:
        shim.stop()
    assert r.statuses() == [200], r
    # the hello really took two Initial packets
    assert re.search(r"frm tx 1 Initial CRYPTO\(0x06\) offset=[1-9]\d* len=", r.log), r
    if mode == "lose":  # the first was resent in a later packet
        assert re.search(r"frm tx [2-9] Initial CRYPTO\(0x06\) offset=0 len=", r.log), r
    assert last_entry(logb, "/split")["RequestPath"] == "/split"
    assert not loga.exists() or "/split" not in loga.read_text()


def test_resumed_connection_with_0rtt_through_the_passthrough(weir, tmp_path, certs, origin):
    """A resumed connection sends its Initial and 0-RTT packets together:
    weir holds both until the hello is read, the VM takes the early data."""
    o = origin()
    hp, pa = pick_free_port(), pick_free_port()
    start_vm(weir, tmp_path, certs, "a", pa, hp, o.url, h3=", zeroRTT: true")
    h = weir(host_config("127.0.0.1", hp, {"a": pa}), wait=False, name="host.yml")
    wait_tcp("127.0.0.1", hp, h.proc)
    sess, tp = tmp_path / "sess", tmp_path / "tp"
    first = gtls(tmp_path, None, hp, "a.example.test", ["/first"], f"--session-file={sess}",
                 f"--tp-file={tp}", host="127.0.0.1")
    assert first.statuses() == [200], first
    second = gtls(tmp_path, None, hp, "a.example.test", ["/second"], f"--session-file={sess}",
                  f"--tp-file={tp}", host="127.0.0.1", quic_dump=True)
    assert second.statuses() == [200], second
    assert re.search(r"pkt tx pkn=\d+ .*type=0RTT", second.log), second
    assert "early-data: 1" in second.body("second").decode().lower(), second.body("second")


def hello_for(name):
    """A real ClientHello (curl's, from the unit-test captures) naming
    `name` (the same length as a.example.test)."""
    src = open(os.path.join(os.path.dirname(__file__), "..", "unit",
                            "clienthello_captures.h")).read()
    start = src.index("cap_curl_h2[517] = {")
    body = src[src.index("{", start) + 1:src.index("};", start)]
    hello = bytes(int(x, 16) for x in body.replace("\n", " ").split(",") if x.strip())[5:]
    assert len(name) == len("a.example.test")
    return hello.replace(b"a.example.test", name.encode())


class Backend:
    """A UDP server standing for a VM: records what it receives; answers
    each datagram with a long-header packet whose SCID is `scid` (as a QUIC
    server's Initial would carry its chosen connection ID)."""

    def __init__(self, ip, scid=b"\x5c" * 8):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.scid = scid
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                d, addr = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.got.append(d)
            reply = bytes([0xc0]) + struct.pack(">I", 1) + b"\x04abcd" + \
                bytes([len(self.scid)]) + self.scid + b"\x00\x05hello"
            self.sock.sendto(reply, addr)

    def stop(self):
        self.stopped = True
        self.sock.close()


def parse_pp2(d):
    """(source ip, source port, dest ip, dest port, rest) of a PROXY v2 DGRAM
    header over IPv4."""
    assert d[:12] == b"\r\n\r\n\x00\r\nQUIT\n", d[:16]
    assert d[12] == 0x21 and d[13] == 0x12, d[12:14]  # v2 PROXY, UDP over IPv4
    n = struct.unpack(">H", d[14:16])[0]
    src, dst = socket.inet_ntoa(d[16:20]), socket.inet_ntoa(d[20:24])
    sport, dport = struct.unpack(">HH", d[24:28])
    return src, sport, dst, dport, d[16 + n:]


def start_host(weir, udp_port, backends, extra_eps="", udp_extra="", catch_all=None,
               transport="pp"):
    routers = "".join(
        f'    {n}: {{rule: "HostSNI(`{n}.example.test`)", service: s{n}}}\n' for n in backends)
    if catch_all:
        routers += f"    rest: {{service: s{catch_all}}}\n"
    services = "".join(
        f'    s{n}: {{loadBalancer: {{servers: [{{address: "127.0.0.4:{b.port}"}}]'
        + (f", serversTransport: {transport}" if transport else "") + "}}\n"
        for n, b in backends.items())
    return weir(textwrap.dedent(f"""\
        log: {{level: INFO}}
        entryPoints:
          quic:
            address: "127.0.0.1:{udp_port}/udp"
        """) + extra_eps + "udp:\n  routers:\n" + routers + "  services:\n" + services +
        udp_extra + "  serversTransports:\n    pp: {proxyProtocol: {version: 2}}\n", wait=False)


def wait_udp_ready(w):
    assert poll(lambda: "started" in w.logs_tail(), 10 * SLOW), w.logs_tail()


def test_proxy_v2_on_every_datagram_and_v2_routing(weir):
    """Generated Initials (QUIC v1 and v2) route by SNI; every datagram the
    backend gets starts with a PROXY v2 header (UDP over IPv4) naming the
    client's own address and port, followed by the datagram untouched;
    replies go back to the client; an Initial datagram under 1,200 bytes is
    dropped."""
    ba, bb = Backend("127.0.0.4"), Backend("127.0.0.4")
    try:
        port = pick_free_port()
        w = start_host(weir, port, {"a": ba, "b": bb})
        wait_udp_ready(w)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.5", 0))
        c.settimeout(5 * SLOW)
        dcid, scid = os.urandom(8), os.urandom(8)
        small = quicinit.initial(dcid, scid, hello_for("b.example.test"), size=1100)
        c.sendto(small, ("127.0.0.1", port))
        first = quicinit.initial(dcid, scid, hello_for("b.example.test"))
        c.sendto(first, ("127.0.0.1", port))
        reply, src = c.recvfrom(65536)
        assert src == ("127.0.0.1", port) and reply.endswith(b"hello")
        short = b"\x40" + b"\x5c" * 8 + os.urandom(40)
        for _ in range(3):
            c.sendto(short, ("127.0.0.1", port))
        assert poll(lambda: len(bb.got) == 4, 5 * SLOW), bb.got
        assert ba.got == []
        for i, d in enumerate(bb.got):
            sip, sport, dip, dport, rest = parse_pp2(d)
            assert (sip, sport) == c.getsockname()
            assert (dip, dport) == ("127.0.0.1", port)
            assert rest == (first if i == 0 else short)
        # QUIC v2 (RFC 9369) to the other backend
        c2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c2.bind(("127.0.0.5", 0))
        c2.sendto(quicinit.initial(os.urandom(8), os.urandom(8), hello_for("a.example.test"),
                                   version=2), ("127.0.0.1", port))
        assert poll(lambda: len(ba.got) == 1, 5 * SLOW)
        assert parse_pp2(ba.got[0])[:2] == c2.getsockname()
    finally:
        ba.stop()
        bb.stop()


def test_client_moves_and_idle_flows_expire(weir):
    """A client whose address changes keeps its flow (the server's
    connection ID, learnt from its long-header reply, leads to it); a flow
    idle for udp.timeout is gone, and a non-Initial datagram then has no
    flow to go to."""
    b = Backend("127.0.0.4")
    try:
        port = pick_free_port()
        w = start_host(weir, port, {"a": b}, extra_eps="    udp: {timeout: 1s}\n")
        wait_udp_ready(w)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.5", 0))
        c.settimeout(5 * SLOW)
        c.sendto(quicinit.initial(os.urandom(8), os.urandom(8), hello_for("a.example.test")),
                 ("127.0.0.1", port))
        c.recvfrom(65536)  # the backend's reply: its SCID is now known
        moved = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        moved.bind(("127.0.0.6", 0))
        moved.settimeout(5 * SLOW)
        short = b"\x40" + b"\x5c" * 8 + b"after the move"
        moved.sendto(short, ("127.0.0.1", port))
        assert poll(lambda: len(b.got) == 2, 5 * SLOW), b.got
        assert parse_pp2(b.got[1])[:2] == moved.getsockname()
        moved.recvfrom(65536)  # replies follow the client to its new address
        time.sleep(2.5)  # udp.timeout is 1s
        moved.sendto(b"\x40" + b"\x5c" * 8 + b"too late", ("127.0.0.1", port))
        time.sleep(0.5)
        assert len(b.got) == 2, b.got
    finally:
        b.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_flood_of_fake_initials_stays_bounded(weir, tmp_path, certs, origin):
    """5,000 Initials with random connection IDs from 500 source addresses
    (pending flows that never complete a hello) grow the host's memory by
    less than 64 MiB, and a real client still routes afterwards."""
    o = origin()
    hp, pa = pick_free_port(), pick_free_port()
    vma, loga = start_vm(weir, tmp_path, certs, "a", pa, hp, o.url)
    h = weir(host_config("127.0.0.1", hp, {"a": pa}), wait=False, name="host.yml")
    wait_tcp("127.0.0.1", hp, h.proc)
    before = rss_kib(h.proc.pid)
    socks = []
    for i in range(500):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.{10 + i // 250}.{1 + i % 250}", 0))
        socks.append(s)
    partial = quicinit.partial_client_hello()
    for k in range(5000):
        s = socks[k % 500]
        s.sendto(quicinit.initial(os.urandom(8), os.urandom(8), partial, offset=0),
                 ("127.0.0.1", hp))
        if k % 500 == 499:
            time.sleep(0.05)
    for s in socks:
        s.close()
    time.sleep(1)
    grown = rss_kib(h.proc.pid) - before
    assert grown < 64 * 1024, f"RSS grew by {grown} KiB"
    r = gtls(tmp_path, None, hp, "a.example.test", ["/after-flood"], host="127.0.0.1")
    assert r.statuses() == [200], r
    assert h.running()


def test_http3_entry_point_takes_proxy_headers_from_trusted_relays_only(weir, tmp_path, certs):
    """On the VM side: from a trusted address every datagram must carry a
    PROXY v2 header (a client speaking directly gets nothing back); from an
    untrusted one a header gets the datagram dropped, while plain QUIC is
    served."""
    port = pick_free_port()
    a = certs.a
    w = weir(textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "127.0.0.1:{port}"
            http3: {{}}
            proxyProtocol: {{trustedIPs: ["127.0.0.1/32"]}}
        tls:
          certificates:
            - {{certFile: {a[0]}, keyFile: {a[1]}}}
        http:
          routers:
            who: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
        """))
    r = gtls(tmp_path, None, port, "a.example.test", ["/direct"], "--timeout=3s",
             host="127.0.0.1", timeout=30)
    assert r.statuses() == [], r  # no header from a trusted address: dropped
    assert w.running()
    port = pick_free_port()
    weir(textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "127.0.0.1:{port}"
            http3: {{}}
            proxyProtocol: {{trustedIPs: ["10.9.9.9/32"]}}
        tls:
          certificates:
            - {{certFile: {a[0]}, keyFile: {a[1]}}}
        http:
          routers:
            who: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
        """))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(1)
    hdr = b"\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + socket.inet_aton("1.2.3.4") + \
        socket.inet_aton("127.0.0.1") + struct.pack(">HH", 1234, port)
    c.sendto(hdr + quicinit.initial(os.urandom(8), os.urandom(8), hello_for("a.example.test")),
             ("127.0.0.1", port))
    with pytest.raises(socket.timeout):
        c.recvfrom(65536)
    r = gtls(tmp_path, None, port, "a.example.test", ["/plain"], host="127.0.0.1")
    assert r.statuses() == [200], r


def test_udp_routing_configuration_errors(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(textwrap.dedent("""\
        entryPoints:
          q:
            address: ":9443/udp"
        udp:
          routers:
            a: {rule: "HostSNI(`a`) && Path(`/`)", service: s}
            r1: {service: s}
            r2: {service: s}
          services:
            s: {loadBalancer: {servers: [{address: "127.0.0.1:1"}], serversTransport: pp}}
          serversTransports:
            pp: {proxyProtocol: {version: 1}}
        """))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    assert re.search(r"bad\.yml:6:\d+: .*Path", out), out
    assert re.search(r'bad\.yml:8:\d+: udp\.routers\.r2: entry point "q" already has the UDP '
                     r'router "r1" without a rule', out), out
    assert re.search(r"bad\.yml:12:\d+: .*version 2 only", out), out
