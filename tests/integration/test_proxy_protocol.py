"""PROXY protocol in (entryPoints.<name>.proxyProtocol): v1 and v2 headers
from trusted senders give the client address to rules, forwarded headers,
whoami and the access log; a header from anyone else is refused; malformed
or truncated headers close the connection. Real senders: curl
--haproxy-protocol and haproxy (send-proxy, send-proxy-v2)."""

import json
import os
import shutil
import socket
import struct
import subprocess
import textwrap
import time

import pytest

from conftest import pick_free_port, wait_for_port
from helpers import SLOW, poll

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="127.0.0.1", dport=80, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport) + tlvs
    return V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body


def config(port, trusted="[127.0.0.1/32]", insecure=False, static="", routers=None):
    routers = routers or """\
        who: {rule: "PathPrefix(`/`)", service: whoami@internal}
        """
    return textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{port}"
            proxyProtocol:
              trustedIPs: {trusted}
        """) + ("      insecure: true\n" if insecure else "") + static + "http:\n  routers:\n" + textwrap.indent(textwrap.dedent(routers), "    ")


def exchange(port, data, source="127.0.0.1", wait=5.0):
    """Sends data from `source`, returns everything read until the server
    closes or `wait` seconds pass, and whether it closed."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(wait * SLOW)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    out, closed = b"", False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
            if b"\r\n\r\n" in out and b"Content-Length" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(body) >= n:
                    break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


GET = b"GET /who HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"


def origin_routers(o):
    return f"""\
        who: {{rule: "PathPrefix(`/who`)", service: whoami@internal}}
        o: {{rule: "PathPrefix(`/o`)", service: o}}
        """, f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"


def test_v1_from_a_trusted_sender_sets_the_client_address(weir, tmp_path, origin):
    o = origin()
    port = pick_free_port()
    log = tmp_path / "access.json"
    routers, services = origin_routers(o)
    weir(config(port, static=f"accessLog: {{filePath: {log}, format: json}}\n",
                routers=routers) + services)
    out, _ = exchange(port, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + GET)
    assert out.startswith(b"HTTP/1.1 200"), out
    assert b"RemoteAddr: 203.0.113.7:5555" in out, out
    out, _ = exchange(port, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" +
                      GET.replace(b"/who", b"/o"))
    assert out.startswith(b"HTTP/1.1 200"), out
    req = o.last_request()
    assert req.header("X-Forwarded-For") == "203.0.113.7"
    assert req.header("X-Real-Ip") == "203.0.113.7"
    assert poll(lambda: log.exists() and log.read_text().strip(), 10)
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["ClientHost"] == "203.0.113.7"


def test_v2_with_tlvs_and_ipv6(weir):
    port = pick_free_port()
    weir(config(port))
    tlvs = b"\x01\x00\x02h2" + b"\x02\x00\x0bexample.com"
    out, _ = exchange(port, v2_header("198.51.100.20", 40000, tlvs=tlvs) + GET)
    assert b"RemoteAddr: 198.51.100.20:40000" in out, out
    body = socket.inet_pton(socket.AF_INET6, "2001:db8::9") + socket.inet_pton(
        socket.AF_INET6, "::1") + struct.pack(">HH", 1234, 80)
    hdr = V2_SIG + b"\x21\x21" + struct.pack(">H", len(body)) + body
    out, _ = exchange(port, hdr + GET)
    assert b"RemoteAddr: [2001:db8::9]:1234" in out, out
    # LOCAL (a sender's health check): the real connection address stays
    out, _ = exchange(port, V2_SIG + b"\x20\x00\x00\x00" + GET)
    assert b"RemoteAddr: 127.0.0.1:" in out, out


def test_header_is_optional_for_trusted_senders(weir):
    port = pick_free_port()
    weir(config(port))
    out, _ = exchange(port, GET)
    assert out.startswith(b"HTTP/1.1 200"), out
    assert b"RemoteAddr: 127.0.0.1:" in out


def test_untrusted_sender_with_a_header_is_refused(weir):
    port = pick_free_port()
    w = weir(config(port, trusted="[127.0.0.1/32]"))
    out, closed = exchange(port, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + GET,
                           source="127.0.0.2")
    assert out == b"" and closed, out
    out, closed = exchange(port, v2_header("203.0.113.7", 1) + GET, source="127.0.0.2")
    assert out == b"" and closed, out
    # without a header the untrusted client is served as itself
    out, _ = exchange(port, GET, source="127.0.0.2")
    assert b"RemoteAddr: 127.0.0.2:" in out, out
    assert w.running()


def test_insecure_trusts_everyone(weir):
    port = pick_free_port()
    weir(config(port, trusted="[]", insecure=True))
    out, _ = exchange(port, b"PROXY TCP4 203.0.113.8 127.0.0.1 1 80\r\n" + GET, source="127.0.0.3")
    assert b"RemoteAddr: 203.0.113.8:1" in out, out


@pytest.mark.parametrize("bad", [
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                       # LF without CR
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                      # over 107 bytes
    b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
    V2_SIG + b"\x21\x41\x00\x0c" + bytes(12),                    # bad family
    V2_SIG + b"\x21\x11\x00\x08" + bytes(8),                     # too short for IPv4
    V2_SIG + b"\x21\x11\x00\x11" + bytes(12) + b"\x01\x00\x09h2",  # TLV past the end
])
def test_malformed_headers_close_the_connection(weir, bad):
    port = pick_free_port()
    w = weir(config(port))
    out, closed = exchange(port, bad + GET)
    assert out == b"" and closed, out
    assert w.running()


def test_truncated_header_closes_after_a_bounded_wait(weir):
    port = pick_free_port()
    weir(config(port))
    for partial in (b"PROXY TCP4 1.2.3.4 5.6.7.8", V2_SIG + b"\x21\x11\x00\x0c\x01\x02"):
        t0 = time.monotonic()
        out, closed = exchange(port, partial, wait=15)
        took = time.monotonic() - t0
        assert out == b"" and closed, out
        assert 4 <= took <= 10 * SLOW, took


def test_client_ip_rules_see_the_proxied_address(weir):
    port = pick_free_port()
    weir(config(port, routers="""\
        inside: {rule: "ClientIP(`10.0.0.0/8`)", service: whoami@internal}
        """))
    out, _ = exchange(port, b"PROXY TCP4 10.1.2.3 127.0.0.1 1 80\r\n" + GET)
    assert out.startswith(b"HTTP/1.1 200"), out
    out, _ = exchange(port, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n" + GET)
    assert out.startswith(b"HTTP/1.1 404"), out


def test_curl_haproxy_protocol_over_http_and_tls(weir, tmp_path):
    port = pick_free_port()
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    weir(config(port, routers="""\
        who: {rule: "PathPrefix(`/`)", service: whoami@internal}
        whos: {rule: "PathPrefix(`/`)", service: whoami@internal, tls: {}}
        """) + f"tls:\n  certificates: [{{certFile: {crt}, keyFile: {key}}}]\n")
    for url in (f"http://127.0.0.1:{port}/x", f"https://127.0.0.1:{port}/x"):
        p = subprocess.run(["curl", "-sk", "--haproxy-protocol", "--max-time", "10", url],
                           capture_output=True, timeout=20)
        assert p.returncode == 0, p.stderr
        assert b"RemoteAddr: 127.0.0.1:" in p.stdout, p.stdout


def test_haproxy_send_proxy_v1_and_v2(weir, tmp_path, origin):
    assert shutil.which("haproxy"), "haproxy is not installed (scripts/deps.sh installs it)"
    o = origin()
    port = pick_free_port()
    routers, services = origin_routers(o)
    weir(config(port, routers=routers) + services)
    for mode in ("send-proxy", "send-proxy-v2"):
        hport = pick_free_port()
        cfg = tmp_path / f"haproxy-{mode}.cfg"
        cfg.write_text(textwrap.dedent(f"""\
            global
                maxconn 100
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend fe
                bind 127.0.0.1:{hport}
                default_backend be
            backend be
                server weir 127.0.0.1:{port} {mode}
            """))
        h = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            assert wait_for_port(hport, 10, h, "haproxy") is None
            # the client connects from 127.0.0.2; weir sees haproxy (127.0.0.1)
            p = subprocess.run(["curl", "-s", "--interface", "127.0.0.2", "--max-time", "10",
                                f"http://127.0.0.1:{hport}/who"], capture_output=True, timeout=20)
            assert b"RemoteAddr: 127.0.0.2:" in p.stdout, (mode, p.stdout)
            p = subprocess.run(["curl", "-s", "--interface", "127.0.0.2", "--max-time", "10",
                                f"http://127.0.0.1:{hport}/o"], capture_output=True, timeout=20)
            assert p.returncode == 0, p.stderr
            assert o.last_request().header("X-Forwarded-For") == "127.0.0.2", mode
        finally:
            h.terminate()
            h.wait(10)


def test_bad_trusted_ip_is_a_configuration_error(tmp_path):
    from conftest import WEIR_BIN
    path = tmp_path / "bad.yml"
    path.write_text(textwrap.dedent("""\
        entryPoints:
          web:
            address: ":8080"
            proxyProtocol:
              trustedIPs: ["10.0.0.0/33"]
        """))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    assert p.returncode != 0
    assert b"bad.yml:5:" in p.stderr + p.stdout, p.stderr
