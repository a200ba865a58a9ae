"""TCP routers (tcp.routers, tcp.services, tcp.serversTransports): TLS
passthrough by SNI to origins that keep their own keys, an entry point
shared with HTTPS routers, catch-alls, plain TCP (server-first protocols
included), half-close, unreachable servers, and PROXY protocol out to
nginx (`listen ... proxy_protocol`). Real clients: curl, openssl s_client,
gnutls-cli."""

import hashlib
import os
import re
import socket
import ssl
import subprocess
import textwrap
import threading
import time

import pytest

from conftest import pick_free_port, wait_for_port
from helpers import SLOW
from tlsutil import Certs

NAMES = ["a.example.test", "b.example.test", "c.example.test", "other.example.test"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = Certs(tmp_path_factory.mktemp("tcpcerts"))
    c.c = c.server("c", ["c.example.test"])
    return c


class TLSOrigin:
    """A TLS server with its own certificate (Python's ssl, OpenSSL): answers
    every HTTP request with its name; /big/N streams N bytes of a pattern;
    'echo' mode echoes bytes until the client shuts its side."""

    def __init__(self, name, cert, mode="http"):
        self.name = name
        self.mode = mode
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[0], cert[1])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, raw):
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ")[1].decode()
            if path.startswith("/big/"):
                n = int(path[5:])
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
                block = hashlib.sha256(b"weir").digest() * 2048  # 64 KiB
                sent = 0
                while sent < n:
                    k = min(len(block), n - sent)
                    c.sendall(block[:k])
                    sent += k
            else:
                body = f"origin {self.name}\n".encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % len(body) + body)
            c.close()
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def tls_origin():
    started = []

    def start(name, cert, mode="http"):
        o = TLSOrigin(name, cert, mode)
        started.append(o)
        return o
    yield start
    for o in started:
        o.stop()


def config(port, certs, tcp="", http="", extra_eps="", tls_extra=""):
    a, b = certs.a, certs.b
    return textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "127.0.0.1:{port}"
        """) + textwrap.indent(textwrap.dedent(extra_eps), "  ") + textwrap.dedent(f"""\
        tls:
          certificates:
            - {{certFile: {b[0]}, keyFile: {b[1]}}}
        """) + textwrap.indent(textwrap.dedent(tls_extra), "  ") + ("tcp:\n" + textwrap.indent(textwrap.dedent(tcp), "  ") if tcp else "") + \
        ("http:\n" + textwrap.indent(textwrap.dedent(http), "  ") if http else "")


def passthrough(*routes):
    """A tcp section: each (router, rule, origin port) passes TLS through to
    its own service."""
    routers = "".join(f'  {n}: {{rule: "{rule}", service: s{n}, tls: {{passthrough: true}}}}\n'
                      for n, rule, _ in routes)
    services = "".join(f'  s{n}: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{p}"}}]}}}}\n'
                       for n, _, p in routes)
    return "routers:\n" + routers + "services:\n" + services


def catch_all(port, server_port, lb="", ep="", tail=""):
    """An entry point t on port whose one TCP router (HostSNI(`*`)) relays
    to 127.0.0.1:server_port; lb adds loadBalancer keys, ep entry point
    keys, tail more of the tcp section (each as lines at their own depth)."""
    return textwrap.dedent(f"""\
        entryPoints:
          t:
            address: "127.0.0.1:{port}"
        """) + textwrap.indent(ep, "    ") + textwrap.dedent(f"""\
        tcp:
          routers:
            all: {{rule: "HostSNI(`*`)", service: s}}
          services:
            s:
              loadBalancer:
                servers: [{{address: "127.0.0.1:{server_port}"}}]
        """) + textwrap.indent(lb, "        ") + textwrap.indent(tail, "  ")


def read_all(s):
    """Everything the server sends until it closes."""
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            return got
        got += d


def curl_tls(port, name, path="/", *args, timeout=20):
    cmd = ["curl", "-sk", "-v", "--max-time", str(timeout)]
    for n in NAMES:
        cmd += ["--resolve", f"{n}:{port}:127.0.0.1"]
    p = subprocess.run(cmd + [*args, f"https://{name}:{port}{path}"], capture_output=True,
                       timeout=timeout + 10)
    return p


def subject(p):
    m = re.search(r"subject: (.*)", p.stderr.decode(errors="replace"))
    return m.group(1) if m else None


def test_passthrough_by_sni_to_two_origins(weir, certs, tls_origin):
    oa = tls_origin("a", certs.a)
    oc = tls_origin("c", certs.c)
    port = pick_free_port()
    weir(config(port, certs, tcp=passthrough(("ra", "HostSNI(`a.example.test`)", oa.port), ("rc", "HostSNI(`c.example.test`)", oc.port))))
    for name, origin_name in (("a.example.test", "a"), ("c.example.test", "c")):
        p = curl_tls(port, name)
        assert p.returncode == 0, p.stderr
        assert p.stdout == f"origin {origin_name}\n".encode()
        assert f"CN={name}" in (subject(p) or ""), p.stderr  # the origin's own certificate
    # openssl s_client and gnutls-cli see the same certificates
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                          "c.example.test", "-brief"], input=b"", capture_output=True, timeout=20)
    assert b"CN = c.example.test" in out.stdout + out.stderr or \
        b"CN=c.example.test" in out.stdout + out.stderr, out.stderr
    out = subprocess.run(["gnutls-cli", "--insecure", "--sni-hostname", "a.example.test",
                          "-p", str(port), "127.0.0.1"], input=b"", capture_output=True, timeout=20)
    assert b"CN=a.example.test" in out.stdout, out.stdout[-2000:]


def test_shared_entry_point_with_https_routers(weir, certs, tls_origin):
    oa = tls_origin("a", certs.a)
    port = pick_free_port()
    weir(config(port, certs, tcp=passthrough(("ra", "HostSNI(`a.example.test`)", oa.port)), http="""\
        routers:
          b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {}}
        """))
    p = curl_tls(port, "a.example.test")
    assert p.stdout == b"origin a\n", p.stderr
    p = curl_tls(port, "b.example.test", "/who")
    assert p.returncode == 0, p.stderr
    assert b"GET /who" in p.stdout  # weir's whoami: terminated by weir
    assert "CN=b.example.test" in (subject(p) or "")
    # a name nobody claims: weir's HTTPS routers answer (404)
    p = curl_tls(port, "other.example.test")
    assert p.stdout == b"404 page not found\n", p.stderr


def test_catch_all_after_https_routers(weir, certs, tls_origin):
    oa = tls_origin("a", certs.a)
    port = pick_free_port()
    weir(config(port, certs, tcp=passthrough(("all", "HostSNI(`*`)", oa.port)), http="""\
        routers:
          b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {}}
        """))
    # b is served by weir's HTTPS router, everything else passes through
    assert b"GET /x" in curl_tls(port, "b.example.test", "/x").stdout
    assert curl_tls(port, "other.example.test").stdout == b"origin a\n"
    assert curl_tls(port, "c.example.test").stdout == b"origin a\n"


def test_no_router_closes_the_connection(weir, certs, tls_origin):
    oa = tls_origin("a", certs.a)
    port = pick_free_port()
    w = weir(config(port, certs, tcp=passthrough(("ra", "HostSNI(`a.example.test`)", oa.port))))
    p = curl_tls(port, "c.example.test")
    assert p.returncode != 0 and p.stdout == b""
    assert curl_tls(port, "a.example.test").stdout == b"origin a\n"
    assert w.running()


def test_one_gib_byte_exact_through_passthrough(weir, certs, tls_origin, tmp_path):
    oa = tls_origin("a", certs.a)
    port = pick_free_port()
    weir(config(port, certs, tcp=passthrough(("ra", "HostSNI(`a.example.test`)", oa.port))))
    size = 1 << 30
    out = tmp_path / "big"
    p = curl_tls(port, "a.example.test", f"/big/{size}", "-o", str(out), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    block = hashlib.sha256(b"weir").digest() * 2048
    want = hashlib.sha256()
    left = size
    while left:
        k = min(len(block), left)
        want.update(block[:k])
        left -= k
    got = hashlib.sha256()
    with open(out, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            got.update(chunk)
    assert os.path.getsize(out) == size
    assert got.hexdigest() == want.hexdigest()
    out.unlink()


class PlainServer:
    """A plain TCP server: 'banner' speaks first then echoes; 'echo' echoes
    until the client shuts its side, then closes."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.peers = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            if self.mode == "banner":
                c.sendall(b"220 weir test banner\r\n")
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
            c.sendall(b"BYE\n")
            c.close()
        except OSError:
            pass

    def stop(self):
        self.sock.close()


def test_plain_tcp_server_first_and_half_close(weir, certs):
    srv = PlainServer("banner")
    try:
        port = pick_free_port()
        weir(catch_all(port, srv.port))
        c = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        # the server speaks first: the banner arrives before the client sends anything
        assert c.recv(100) == b"220 weir test banner\r\n"
        c.sendall(b"hello\n")
        c.shutdown(socket.SHUT_WR)  # half-close reaches the server, which answers and closes
        got = read_all(c)
        assert got == b"hello\nBYE\n"
        c.close()
    finally:
        srv.stop()


def test_unreachable_server_closes_the_client(weir, certs):
    port, dead = pick_free_port(), pick_free_port()
    weir(catch_all(port, dead), wait=False)
    assert wait_for_port(port, 10 * SLOW) is None
    c = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    t0 = time.monotonic()
    assert c.recv(10) == b""
    assert time.monotonic() - t0 < 5 * SLOW
    c.close()


NGINX_PP = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
    uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        location / {{ return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\\n"; }}
    }}
}}
"""


@pytest.mark.parametrize("version", [1, 2])
def test_proxy_protocol_out_to_nginx(weir, tmp_path, version):
    nport = pick_free_port()
    d = tmp_path / f"nginx{version}"
    d.mkdir()
    (d / "nginx.conf").write_text(NGINX_PP.format(dir=d, port=nport))
    ng = subprocess.Popen(["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c",
                           str(d / "nginx.conf")], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(nport, 10, ng, "nginx") is None
        port = pick_free_port()
        weir(catch_all(port, nport, lb="serversTransport: pp\n",
                       tail=f"serversTransports:\n  pp: {{proxyProtocol: {{version: {version}}}}}\n"))
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(10 * SLOW)
        s.connect(("127.0.0.1", port))
        sport = s.getsockname()[1]
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        got = read_all(s)
        s.close()
        assert got.endswith(f"client=127.0.0.2:{sport}\n".encode()), got
    finally:
        ng.terminate()
        ng.wait(10)


def test_tcp_configuration_errors(tmp_path):
    from conftest import WEIR_BIN
    path = tmp_path / "bad.yml"
    path.write_text(textwrap.dedent("""\
        entryPoints:
          t:
            address: ":9000"
        tcp:
          routers:
            r: {rule: "Host(`a`)", service: s}
            q: {rule: "HostSNI(`a`)", service: nope, tls: {passthrough: true}}
          services:
            s: {loadBalancer: {servers: [{address: "127.0.0.1"}]}}
            u: {loadBalancer: {servers: [{address: "127.0.0.1:1", tls: maybe}]}}
            v: {loadBalancer: {servers: [{address: "127.0.0.1:1"}], terminationDelay: "-x"}}
          serversTransports:
            t: {tls: {peerCertURI: "spiffe://x"}}
        """))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    assert re.search(r"bad\.yml:6:\d+: .*Host", out), out
    assert re.search(r"bad\.yml:7:\d+: .*TCP service \"nope\" does not exist", out), out
    assert re.search(r"bad\.yml:9:\d+: .*a port is needed", out), out
    assert re.search(r"bad\.yml:10:\d+: .*tls", out), out
    assert re.search(r"bad\.yml:11:\d+: .*invalid duration \"-x\"", out), out
    assert re.search(r"bad\.yml:13:\d+: .*peerCertURI: not supported yet", out), out


def test_host_and_vm_topology_end_to_end(weir, certs, origin, tmp_path):
    """The issue's set-up: a host weir passes TLS through by SNI with PROXY
    v2 to two VM weirs; each VM weir accepts PROXY from the host only,
    terminates TLS with its own certificate and routes HTTP to its origin,
    which sees the real client address in X-Forwarded-For."""
    oa, ob = origin("a"), origin("b")
    pa, pb, host = pick_free_port(), pick_free_port(), pick_free_port()
    vm = """\
        entryPoints:
          websecure:
            address: "127.0.0.1:{port}"
            proxyProtocol: {{trustedIPs: ["127.0.0.1/32"]}}
        tls:
          certificates: [{{certFile: {crt}, keyFile: {key}}}]
        http:
          routers:
            r: {{rule: "Host(`{name}`)", service: o, tls: {{}}}}
          services:
            o: {{loadBalancer: {{servers: [{{url: "{url}"}}]}}}}
        """
    weir(textwrap.dedent(vm.format(port=pa, crt=certs.a[0], key=certs.a[1],
                                   name="a.example.test", url=oa.url)))
    weir(textwrap.dedent(vm.format(port=pb, crt=certs.b[0], key=certs.b[1],
                                   name="b.example.test", url=ob.url)))
    weir(textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "127.0.0.1:{host}"
        tcp:
          routers:
            a: {{rule: "HostSNI(`a.example.test`)", service: a, tls: {{passthrough: true}}}}
            b: {{rule: "HostSNI(`b.example.test`)", service: b, tls: {{passthrough: true}}}}
          services:
            a: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{pa}"}}], serversTransport: pp}}}}
            b: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{pb}"}}], serversTransport: pp}}}}
          serversTransports:
            pp: {{proxyProtocol: {{version: 2}}}}
        """))
    for name, o in (("a.example.test", oa), ("b.example.test", ob)):
        p = curl_tls(host, name, "/hello", "--interface", "127.0.0.5")
        assert p.returncode == 0, p.stderr[-2000:]
        assert f"CN={name}" in (subject(p) or ""), p.stderr  # the VM's own certificate
        req = o.last_request()
        assert req.path == "/hello"
        assert req.header("X-Forwarded-For") == "127.0.0.5", req.headers
        assert req.header("X-Forwarded-Proto") == "https"
    # the VM refuses a PROXY header from anyone but the host
    s = socket.socket()
    s.bind(("127.0.0.5", 0))
    s.settimeout(5 * SLOW)
    s.connect(("127.0.0.1", pa))
    s.sendall(b"PROXY TCP4 1.2.3.4 127.0.0.1 1 443\r\n")
    assert s.recv(10) == b""
    s.close()


def test_sni_read_from_a_hello_split_over_records_and_segments(weir, certs, tls_origin):
    """A 2 KB ClientHello (long ALPN list, as post-quantum key shares make
    hellos over 1,500 bytes) re-framed into several TLS records and sent in
    100-byte TCP segments: weir reads its SNI from all of them and passes
    every byte on, so the origin completes the handshake."""
    import struct
    oa = tls_origin("a", certs.a)
    port = pick_free_port()
    weir(config(port, certs, tcp=passthrough(("ra", "HostSNI(`a.example.test`)", oa.port))))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([("p%d" % i) * 80 for i in range(8)] + ["http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="a.example.test")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    first = out.read()
    assert first[0] == 0x16 and len(first) > 1500
    msg = first[5:]
    records = b"".join(b"\x16\x03\x01" + struct.pack(">H", len(msg[i:i + 300])) + msg[i:i + 300]
                       for i in range(0, len(msg), 300))
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(records), 100):
        s.sendall(records[i:i + 100])
        time.sleep(0.005)
    done = False
    while not done:
        data = s.recv(65536)
        assert data, "the connection closed during the handshake"
        inc.write(data)
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            pass
        pending = out.read()
        if pending:
            s.sendall(pending)
    tls.write(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
    s.sendall(out.read())
    body = b""
    while b"origin a" not in body:
        data = s.recv(65536)
        if not data:
            break
        inc.write(data)
        try:
            body += tls.read(65536)
        except ssl.SSLWantReadError:
            pass
    s.close()
    assert b"origin a" in body


def test_ip_allow_list_and_in_flight_conn(weir):
    srv = PlainServer("echo")
    try:
        port = pick_free_port()
        weir(textwrap.dedent(f"""\
            entryPoints:
              t:
                address: "127.0.0.1:{port}"
            tcp:
              routers:
                all: {{rule: "HostSNI(`*`)", service: s, middlewares: [only-lo2, two]}}
              services:
                s: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{srv.port}"}}]}}}}
              middlewares:
                only-lo2: {{ipAllowList: {{sourceRange: ["127.0.0.2/32", "::1"]}}}}
                two: {{inFlightConn: {{amount: 2}}}}
            """))

        def open_from(src):
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(5 * SLOW)
            s.connect(("127.0.0.1", port))
            return s

        def works(s):
            try:
                s.sendall(b"ping\n")
                return s.recv(10) == b"ping\n"
            except OSError:
                return False
        # not in the allow list: closed without a byte from the server
        s = open_from("127.0.0.3")
        assert not works(s)
        s.close()
        # two connections from one address go through, the third is refused
        c1, c2 = open_from("127.0.0.2"), open_from("127.0.0.2")
        assert works(c1) and works(c2)
        c3 = open_from("127.0.0.2")
        assert not works(c3)
        c3.close()
        # when one closes, a new one fits again
        c1.close()
        time.sleep(0.2)
        c4 = open_from("127.0.0.2")
        assert works(c4)
        for c in (c2, c4):
            c.close()
    finally:
        srv.stop()


def test_proxy_protocol_out_to_haproxy_and_chained(weir, tmp_path):
    """haproxy (accept-proxy) as the server logs the client address weir
    sends; a client address that itself came in a PROXY header from a
    trusted sender is the one passed on (chained)."""
    import shutil
    assert shutil.which("haproxy"), "haproxy is not installed (scripts/deps.sh installs it)"
    hport, port = pick_free_port(), pick_free_port()
    log = tmp_path / "haproxy.log"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(textwrap.dedent(f"""\
        global
            maxconn 100
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
        frontend fe
            bind 127.0.0.1:{hport} accept-proxy
            http-request return status 200 content-type text/plain lf-string "src=%[src]\\n"
        """))
    h = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=open(log, "wb"),
                         stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(hport, 10, h, "haproxy") is None
        weir(catch_all(port, hport, lb="proxyProtocol: {version: 1}\n",
                       ep='proxyProtocol: {trustedIPs: ["127.0.0.1"]}\n'))
        # a direct client from 127.0.0.1 (no header of its own)
        p = subprocess.run(["curl", "-s", "--max-time", "10", f"http://127.0.0.1:{port}/"],
                           capture_output=True, timeout=20)
        assert p.stdout == b"src=127.0.0.1\n", p.stdout
        # chained: a trusted sender says the client is 203.0.113.9
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        s.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\nGET / HTTP/1.0\r\n\r\n")
        got = read_all(s)
        s.close()
        assert got.endswith(b"src=203.0.113.9\n"), got
    finally:
        h.terminate()
        h.wait(10)


def tls_client(port, name, cafile, alpn=None, max_version=None):
    """A TLS connection to weir for SNI name, verifying against cafile."""
    ctx = ssl.create_default_context(cafile=cafile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version:
        ctx.maximum_version = max_version
    raw = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    return ctx.wrap_socket(raw, server_hostname=name)


def tls_read_all(s):
    got = b""
    while True:
        try:
            d = s.recv(65536)
        except ssl.SSLZeroReturnError:
            return got
        if not d:
            return got
        got += d


def test_tls_termination_on_a_tcp_router(weir, certs):
    """tls without passthrough: weir terminates with the store's certificate
    for the SNI, under the router's options, and relays the plaintext; no
    ALPN is negotiated; close_notify half-closes toward the server."""
    srv = PlainServer("echo")
    try:
        port = pick_free_port()
        weir(config(port, certs, tcp=f"""\
            routers:
              term: {{rule: "HostSNI(`b.example.test`)", service: echo, tls: {{options: modern}}}}
            services:
              echo: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{srv.port}"}}]}}}}
            """, tls_extra="""\
            options:
              modern: {minVersion: VersionTLS13}
            """))
        s = tls_client(port, "b.example.test", certs.ca[0], alpn=["h2", "http/1.1"])
        assert s.getpeercert()["subject"] == ((("commonName", "b.example.test"),),)
        assert s.version() == "TLSv1.3"
        assert s.selected_alpn_protocol() is None  # the relayed bytes are not HTTP/2
        s.sendall(b"hello over TLS\n")
        assert s.recv(100) == b"hello over TLS\n"  # decrypted to the server, echoed back
        s.close()
        # gnutls-cli sends close_notify at the end of its input and reads on:
        # the server sees EOF, answers and closes; weir passes both on
        p = subprocess.run(["gnutls-cli", "--x509cafile", certs.ca[0], "--sni-hostname",
                            "b.example.test", "--verify-hostname", "b.example.test", "-p",
                            str(port), "127.0.0.1"], input=b"half\n", capture_output=True,
                           timeout=30)
        # ... and the server's close becomes weir's close_notify
        assert b"half\nBYE\n- Peer has closed the GnuTLS connection" in p.stdout, p.stdout[-500:]
        # the router's options apply: TLS 1.2 is refused
        with pytest.raises(ssl.SSLError):
            tls_client(port, "b.example.test", certs.ca[0], max_version=ssl.TLSVersion.TLSv1_2)
        # a client that sends no close_notify but closes the socket: the server still sees EOF
        s = tls_client(port, "b.example.test", certs.ca[0])
        s.sendall(b"x" * 100000)
        got = b""
        while len(got) < 100000:
            got += s.recv(65536)
        assert got == b"x" * 100000
        s.close()
    finally:
        srv.stop()


def test_tls_toward_tcp_servers(weir, certs, tls_origin):
    """tcp.serversTransports.<name>.tls: weir speaks TLS to the server,
    verifying it against rootCAs under serverName (or skipping that with
    insecureSkipVerify); a server whose certificate does not verify gets no
    bytes and the client is closed. Both ends TLS: terminated by weir and
    encrypted again toward the origin."""
    oa = tls_origin("a", certs.a)
    port, plain = pick_free_port(), pick_free_port()
    weir(config(port, certs, extra_eps=f"""\
          plain:
            address: "127.0.0.1:{plain}"
        """, tcp=f"""\
        routers:
          plain: {{entryPoints: [plain], rule: "HostSNI(`*`)", service: verified}}
          both: {{entryPoints: [websecure], rule: "HostSNI(`b.example.test`)", service: verified,
                  tls: {{}}}}
          bad: {{entryPoints: [websecure], rule: "HostSNI(`c.example.test`)", service: unverified,
                 tls: {{}}}}
          skip: {{entryPoints: [websecure], rule: "HostSNI(`other.example.test`)", service: skip,
                  tls: {{}}}}
        services:
          verified:
            loadBalancer:
              servers: [{{address: "127.0.0.1:{oa.port}"}}]
              serversTransport: ca
          unverified:
            loadBalancer:
              servers: [{{address: "127.0.0.1:{oa.port}", tls: true}}]
          skip:
            loadBalancer:
              servers: [{{address: "127.0.0.1:{oa.port}"}}]
              serversTransport: insecure
        serversTransports:
          ca:
            tls: {{serverName: a.example.test, rootCAs: ["{certs.ca[0]}"]}}
          insecure:
            tls: {{insecureSkipVerify: true}}
        """))
    request = b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
    # plain client → TLS origin
    c = socket.create_connection(("127.0.0.1", plain), timeout=10 * SLOW)
    c.sendall(request)
    assert read_all(c).endswith(b"origin a\n")
    c.close()
    # TLS client (weir's certificate) → weir → TLS origin (its own)
    s = tls_client(port, "b.example.test", certs.ca[0])
    assert s.getpeercert()["subject"] == ((("commonName", "b.example.test"),),)
    s.sendall(request)
    assert tls_read_all(s).endswith(b"origin a\n")
    s.close()
    # the origin's certificate is not trusted by the system store: closed, nothing relayed
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s = ctx.wrap_socket(raw, server_hostname="c.example.test")
    s.sendall(request)
    try:
        assert tls_read_all(s) == b""
    except (ConnectionResetError, ssl.SSLError):
        pass
    s.close()
    # insecureSkipVerify: the origin is reached though its name is not the address
    raw = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s = ctx.wrap_socket(raw, server_hostname="other.example.test")
    s.sendall(request)
    assert tls_read_all(s).endswith(b"origin a\n")
    s.close()


class HalfCloser:
    """A server that sends a line, shuts its sending side, and then records
    what it still receives and when its peer goes away."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.eof = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        try:
            c, _ = self.sock.accept()
            c.sendall(b"done\n")
            c.shutdown(socket.SHUT_WR)
            while True:
                d = c.recv(4096)
                if not d:
                    break
                self.received += d
            self.eof.set()
            c.close()
        except OSError:
            pass

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("delay", ["200ms", "-1s", 200])
def test_termination_delay(weir, delay):
    """terminationDelay: once one side has finished, the other direction may
    run that long, then weir closes both; a negative delay waits for the
    client however long it takes. The older loadBalancer.terminationDelay
    is an integer of milliseconds."""
    srv = HalfCloser()
    try:
        port = pick_free_port()
        if isinstance(delay, str):
            weir(catch_all(port, srv.port, lb="serversTransport: tr\n",
                           tail=f'serversTransports:\n  tr: {{terminationDelay: "{delay}"}}\n'))
        else:
            weir(catch_all(port, srv.port, lb=f"terminationDelay: {delay}\n"))
        c = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        assert read_all(c) == b"done\n"  # the server's FIN reached the client
        c.sendall(b"late\n")  # within the delay the other direction still runs
        if str(delay).startswith("-"):
            assert not srv.eof.wait(1.5)  # the client still has its side open
            c.sendall(b"later\n")
            c.shutdown(socket.SHUT_WR)
            assert srv.eof.wait(10 * SLOW)
            assert srv.received == b"late\nlater\n"
        else:
            # weir closes the server side once the delay has run out, though
            # the client never closed
            assert srv.eof.wait(10 * SLOW)
            assert srv.received == b"late\n"
            assert read_all(c) == b""
        c.close()
    finally:
        srv.stop()


def test_static_tcp_servers_transport(weir, certs, tls_origin):
    """The static tcpServersTransport sets default@internal: its tls section
    serves the servers with tls: true and turns nothing on by itself."""
    oa = tls_origin("a", certs.a)
    echo = PlainServer("echo")
    try:
        tls_port, plain_port = pick_free_port(), pick_free_port()
        weir(textwrap.dedent(f"""\
            entryPoints:
              t1:
                address: "127.0.0.1:{tls_port}"
              t2:
                address: "127.0.0.1:{plain_port}"
            tcpServersTransport:
              dialTimeout: 5s
              tls: {{insecureSkipVerify: true}}
            tcp:
              routers:
                r1: {{entryPoints: [t1], rule: "HostSNI(`*`)", service: origin}}
                r2: {{entryPoints: [t2], rule: "HostSNI(`*`)", service: echo}}
              services:
                origin: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{oa.port}", tls: true}}]}}}}
                echo: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{echo.port}"}}]}}}}
            """))
        c = socket.create_connection(("127.0.0.1", tls_port), timeout=10 * SLOW)
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_all(c).endswith(b"origin a\n")
        c.close()
        c = socket.create_connection(("127.0.0.1", plain_port), timeout=10 * SLOW)
        c.sendall(b"plain\n")
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b"plain\nBYE\n"
        c.close()
    finally:
        echo.stop()


def test_tcp_router_tls_options_must_exist(tmp_path):
    from conftest import WEIR_BIN
    path = tmp_path / "opts.yml"
    path.write_text(textwrap.dedent("""\
        entryPoints:
          t:
            address: ":9000"
        tcp:
          routers:
            r: {rule: "HostSNI(`a`)", service: s, tls: {options: modrn}}
          services:
            s: {loadBalancer: {servers: [{address: "127.0.0.1:1"}]}}
        tls:
          options:
            modern: {minVersion: VersionTLS13}
        """))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    assert re.search(r'opts\.yml:6:\d+: tcp\.routers\.r\.tls\.options: tls option "modrn" does not '
                     r'exist \(did you mean "modern"\?\)', out), out
