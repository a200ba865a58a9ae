"""HTTP/3 over QUIC: gtlsclient (Debian's ngtcp2-client 0.12) through weir to
the whoami service and to an origin, and the Alt-Svc advertisement seen by
curl over HTTP/1.1 and HTTP/2.

gtlsclient sends its host argument as SNI and resolves it: every run goes
through `unshare -m` with a private /etc/hosts naming the test hosts (the
machine's own file is untouched).
"""

import json
import os
import re
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import WEIR_BIN, pick_free_port
from helpers import SLOW, curl, poll
from origin import Reply, pattern_sha256
from tlsutil import Certs

NAMES = ["a.example.test", "b.example.test", "localhost"]
TIMEOUT = 60 * SLOW



@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("h3certs"))


class H3Result:
    def __init__(self, proc, log, download_dir):
        self.rc = proc.returncode
        self.log = log
        self.dir = download_dir

    def statuses(self):
        return [int(s) for s in re.findall(r"\[:status: (\d+)\]", self.log)]

    def headers(self, stream=0):
        return re.findall(r"http: stream 0x%x \[([^:\]][^:]*): (.*)\]" % stream, self.log)

    def header(self, name, stream=0):
        vals = [v for k, v in self.headers(stream) if k == name]
        return vals[0] if vals else None

    def body(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def __repr__(self):
        return f"<gtlsclient rc={self.rc}>\n{self.log[-4000:]}"


def h3(tmp_path, port, paths, *args, host="localhost", quiet=False, dump=False,
       timeout=TIMEOUT):
    """Runs gtlsclient to weir's UDP port for each path (one stream each),
    with SNI `host`; bodies are downloaded into a fresh directory."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 " + " ".join(NAMES) + "\n")
    dl = tmp_path / f"dl-{time.monotonic_ns()}"
    dl.mkdir()
    urls = [f"https://{host}:{port}{p}" for p in paths]
    cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
           "gtlsclient", "--exit-on-all-streams-close", f"--download={dl}", "--timeout=30s",
           *(["-q"] if quiet else [] if dump else ["--no-quic-dump", "--no-http-dump"]), *args, host, str(port),
           *urls]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return H3Result(p, (p.stdout + p.stderr).decode(errors="replace"), str(dl))


def h3_background(tmp_path, port, path):
    """Starts gtlsclient (quiet) on one request in the background: (process,
    download directory)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    dl = tmp_path / f"bg-{time.monotonic_ns()}"
    dl.mkdir()
    client = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
         "gtlsclient", "-q", "--exit-on-all-streams-close", f"--download={dl}", "--timeout=30s",
         "localhost", str(port), f"https://localhost:{port}{path}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return client, dl


def config(port, certs, routers, ep_extra="http3: {}\n", static="", services=""):
    a, b = certs.a, certs.b
    lo = certs.local
    return textwrap.dedent(f"""\
        entryPoints:
          websecure:
            address: "127.0.0.1:{port}"
        """) + textwrap.indent(textwrap.dedent(ep_extra).rstrip("\n") + "\n", "    ") + static + textwrap.dedent(f"""\
        tls:
          certificates:
            - {{certFile: {a[0]}, keyFile: {a[1]}}}
            - {{certFile: {b[0]}, keyFile: {b[1]}}}
            - {{certFile: {lo[0]}, keyFile: {lo[1]}}}
        http:
          routers:
        """) + textwrap.indent(textwrap.dedent(routers), "    ") + services


WHO = 'who: {rule: "PathPrefix(`/`)", service: whoami@internal, tls: {}}\n'


@pytest.fixture(scope="module", autouse=True)
def local_cert(certs):
    certs.local = certs.server("local", ["localhost"])


def test_get_over_http3_reaches_whoami_as_http3(weir, certs, tmp_path):
    port = pick_free_port()
    log = tmp_path / "access.log"
    weir(config(port, certs, WHO, static=f"accessLog: {{filePath: {log}, format: json}}\n"))
    r = h3(tmp_path, port, ["/hello?x=1"])
    assert r.rc == 0, r
    assert r.statuses() == [200], r
    assert "Negotiated ALPN is h3" in r.log
    body = r.body("hello?x=1").decode()
    assert "GET /hello?x=1 HTTP/3.0" in body
    assert "Host: localhost:%d" % port in body
    # weir's own Alt-Svc is never sent over HTTP/3
    assert r.header("alt-svc") is None, r

    def logged():
        return log.exists() and log.read_text().strip()
    assert poll(logged, 10)
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["RequestProtocol"] == "HTTP/3.0"
    assert entry["RequestScheme"] == "https"
    assert entry["DownstreamStatus"] == 200
    assert entry["RequestCount"] == 1
    # the requests of one connection are counted (here: three streams)
    r = h3(tmp_path, port, ["/a", "/b", "/c"])
    assert r.statuses() == [200, 200, 200], r
    assert poll(lambda: len(log.read_text().splitlines()) >= 4, 10)
    counts = sorted(json.loads(line)["RequestCount"] for line in log.read_text().splitlines()[1:])
    assert counts == [1, 2, 3], counts


def handshake_bytes(log):
    """The CRYPTO data gtlsclient dumps (hexdump lines), joined."""
    out = bytearray()
    for m in re.finditer(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2}){1,16})", log, re.M):
        out += bytes.fromhex(m.group(1).replace(" ", ""))
    return bytes(out)


def test_sni_picks_certificate_and_router(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, """\
        a: {rule: "Host(`a.example.test`)", service: whoami@internal, tls: {}}
        b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {}}
        """))
    for name, other in (("a.example.test", "b.example.test"), ("b.example.test", "a.example.test")):
        r = h3(tmp_path, port, ["/who"], "--no-http-dump", host=name, dump=True)
        assert r.statuses() == [200], r
        assert f"Host: {name}:{port}" in r.body("who").decode()
        # the certificate in the handshake is the one for the SNI
        hs = handshake_bytes(r.log)
        assert name.encode() in hs and other.encode() not in hs, r
    # a name no router claims: the default certificate, and 404
    r = h3(tmp_path, port, ["/"], host="localhost")
    assert r.statuses() == [404], r


def test_large_download_and_upload_byte_for_byte(weir, certs, tmp_path, origin):
    o = origin()
    size = 24 * 1024 * 1024
    o.route("/big", Reply(stream=size))
    o.route("/echo", Reply(echo=True))
    port = pick_free_port()
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    r = h3(tmp_path, port, ["/big"], quiet=True)
    assert r.rc == 0, r
    import hashlib
    got = r.body("big")
    assert len(got) == size
    assert hashlib.sha256(got).hexdigest() == pattern_sha256(size)

    up = tmp_path / "upload.bin"
    data = os.urandom(8 * 1024 * 1024)
    up.write_bytes(data)
    r = h3(tmp_path, port, ["/echo"], "-m", "POST", f"--data={up}", quiet=True)
    assert r.rc == 0, r
    assert r.body("echo") == data
    req = o.last_request()
    assert req.method == "POST"
    assert req.body_len == len(data)
    assert req.header("X-Forwarded-Proto") == "https"


def test_200_concurrent_streams_on_one_connection(weir, certs, tmp_path, origin):
    o = origin()
    port = pick_free_port()
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    r = h3(tmp_path, port, ["/many"], "-n", "200")
    assert r.rc == 0, r
    assert r.statuses() == [200] * 200, r
    assert len(re.findall(r"QUIC handshake has completed", r.log)) == 1
    o.wait_for_requests(200)


def test_retry_always_validates_the_address(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO, ep_extra="http3: {retry: always}\n"))
    r = h3(tmp_path, port, ["/"])
    assert r.statuses() == [200], r
    assert re.search(r"pkt rx .*type=Retry", r.log), r
    assert "retry_source_connection_id" in r.log


def test_new_token_lets_the_next_connection_skip_retry(weir, certs, tmp_path):
    """After a handshake weir sends NEW_TOKEN; an Initial from the same
    address that carries it is accepted without a Retry round trip even
    with retry: always. A token weir did not make gets a Retry; a forged
    Retry token gets CONNECTION_CLOSE (INVALID_TOKEN)."""
    import socket
    from quicinit import initial, partial_client_hello
    port = pick_free_port()
    weir(config(port, certs, WHO, ep_extra="http3: {retry: always}\n"))
    r = h3(tmp_path, port, ["/"], dump=True)
    assert r.statuses() == [200], r
    m = re.search(r"frm rx \d+ 1RTT NEW_TOKEN\(0x07\) token=0x([0-9a-f]+)", r.log)
    assert m, r
    token = bytes.fromhex(m.group(1))

    def first_reply(tok):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3 * SLOW)
        scid = os.urandom(8)
        s.sendto(initial(os.urandom(8), scid, partial_client_hello(), token=tok),
                 ("127.0.0.1", port))
        try:
            return s.recv(65536)
        finally:
            s.close()
    # long header packet types (QUIC v1): 0 Initial, 3 Retry
    assert (first_reply(token)[0] & 0x30) >> 4 == 0
    assert (first_reply(b"")[0] & 0x30) >> 4 == 3
    assert (first_reply(bytes([token[0]]) + os.urandom(len(token) - 1))[0] & 0x30) >> 4 == 3
    forged = bytes([0xb6]) + os.urandom(60)  # the Retry token magic byte, random content
    reply = first_reply(forged)
    assert (reply[0] & 0x30) >> 4 == 0 and len(reply) < 200, reply  # a bare CONNECTION_CLOSE


def test_retry_never_and_auto_answer_directly(weir, certs, tmp_path):
    for mode in ("never", "auto"):
        port = pick_free_port()
        weir(config(port, certs, WHO, ep_extra=f"http3: {{retry: {mode}}}\n"))
        r = h3(tmp_path, port, ["/"])
        assert r.statuses() == [200], r
        assert not re.search(r"type=Retry", r.log), (mode, r)


def test_retry_auto_starts_under_a_half_open_flood(weir, certs, tmp_path):
    """retry: auto answers directly until many handshakes are in progress
    (here: Initials whose ClientHello never completes, as a spoofed flood
    leaves them), then asks new clients to prove their address first."""
    import socket
    from quicinit import initial, partial_client_hello
    port = pick_free_port()
    weir(config(port, certs, WHO, ep_extra="http3: {retry: auto}\n"))
    assert not re.search(r"type=Retry", h3(tmp_path, port, ["/"]).log)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(200):
        s.sendto(initial(os.urandom(8), os.urandom(8), partial_client_hello()), ("127.0.0.1", port))
    s.close()
    time.sleep(0.3)
    r = h3(tmp_path, port, ["/"])
    assert r.statuses() == [200], r
    assert re.search(r"pkt rx .*type=Retry", r.log), r


def test_amplification_limit_before_address_validation(weir, certs, tmp_path):
    """Before the client's address is validated weir sends at most three
    times the bytes it received (RFC 9000 §8.1), even when its first flight
    (here: a certificate with many names) is larger. A relay in front of
    weir counts the bytes both ways and drops everything weir sends, so the
    client (gtlsclient) never completes its address validation and keeps
    retransmitting its Initial."""
    import socket
    import threading
    big = certs.server("big", ["localhost"] + [f"name-{i:03d}.example.test" for i in range(160)])
    port = pick_free_port()
    text = config(port, certs, WHO, ep_extra="http3: {retry: never}\n")
    text = text.replace("    - {certFile: %s" % certs.local[0],
                        "    - {certFile: %s, keyFile: %s}\n    - {certFile: %s"
                        % (big[0], big[1], certs.local[0]))
    weir(text)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect(("127.0.0.1", port))
    counts = {"client": 0, "server": 0, "worst": 0.0}
    stop = threading.Event()

    def relay():
        import select
        while not stop.is_set():
            r, _, _ = select.select([front, back], [], [], 0.1)
            if front in r:
                data, _ = front.recvfrom(65536)
                counts["client"] += len(data)
                back.send(data)
            if back in r:
                counts["server"] += len(back.recv(65536))  # dropped: never reaches the client
                counts["worst"] = max(counts["worst"], counts["server"] / counts["client"])
    t = threading.Thread(target=relay, daemon=True)
    t.start()
    r = h3(tmp_path, front.getsockname()[1], ["/"], "--timeout=3s", "--handshake-timeout=3s",
           timeout=20 * SLOW)
    stop.set()
    t.join(5)
    front.close()
    back.close()
    assert r.statuses() == [], r
    assert counts["client"] >= 1200, counts
    assert counts["server"] > 0, counts
    assert counts["worst"] <= 3.0, counts


def test_resumption_and_zero_rtt(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO, ep_extra="http3: {zeroRTT: true}\n"))
    sess, tp = tmp_path / "sess", tmp_path / "tp"
    first = h3(tmp_path, port, ["/first"], f"--session-file={sess}", f"--tp-file={tp}")
    assert first.statuses() == [200], first
    assert sess.exists() and tp.exists()
    second = h3(tmp_path, port, ["/second"], f"--session-file={sess}", f"--tp-file={tp}")
    assert second.statuses() == [200], second
    assert re.search(r"frm tx \d+ 0RTT STREAM", second.log) or "0RTT" in second.log, second
    # the request went in 0-RTT: the backend is told (RFC 8470)
    assert "early-data: 1" in second.body("second").decode().lower()
    # an unsafe method in early data is refused with 425
    body = tmp_path / "b.txt"
    body.write_text("x")
    post = h3(tmp_path, port, ["/p"], f"--session-file={sess}", f"--tp-file={tp}", "-m", "POST",
              f"--data={body}")
    assert post.statuses() == [425], post


def test_zero_rtt_off_by_default(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    sess, tp = tmp_path / "sess", tmp_path / "tp"
    assert h3(tmp_path, port, ["/a"], f"--session-file={sess}", f"--tp-file={tp}").statuses() == [200]
    second = h3(tmp_path, port, ["/b"], f"--session-file={sess}", f"--tp-file={tp}")
    assert second.statuses() == [200], second
    # resumed, but the early data was not used for the request
    assert "early-data" not in second.body("b").decode().lower()


def test_chacha20(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    r = h3(tmp_path, port, ["/"], "--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305")
    assert r.statuses() == [200], r
    assert "Negotiated cipher suite is CHACHA20-POLY1305" in r.log, r


def test_key_update_during_download(weir, certs, tmp_path, origin):
    o = origin()
    size = 4 * 1024 * 1024
    o.route("/big", Reply(stream=size))
    port = pick_free_port()
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    r = h3(tmp_path, port, ["/big"], "--key-update=5ms")
    assert r.statuses() == [200], r
    assert "key update confirmed" in r.log, r
    import hashlib
    assert hashlib.sha256(r.body("big")).hexdigest() == pattern_sha256(size)


def test_thirty_percent_loss(weir, certs, tmp_path, origin):
    o = origin()
    size = 1024 * 1024
    o.route("/big", Reply(stream=size))
    port = pick_free_port()
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    # 30% of the handshake's packets lost both ways can outlast the client's
    # handshake timeout (it then gives up, saying so): a new connection
    # tries again, at most three in all
    for _ in range(3):
        r = h3(tmp_path, port, ["/big"], "-t", "0.3", "-r", "0.3", quiet=True,
               timeout=120 * SLOW)
        if "ERR_HANDSHAKE_TIMEOUT" not in r.log:
            break
    assert r.rc == 0, r
    import hashlib
    assert hashlib.sha256(r.body("big")).hexdigest() == pattern_sha256(size)


def test_nat_rebinding_during_upload(weir, certs, tmp_path, origin):
    o = origin()
    o.route("/echo", Reply(echo=True))
    port = pick_free_port()
    log = tmp_path / "access.log"
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                static=f"accessLog: {{filePath: {log}, format: json}}\n",
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    up = tmp_path / "upload.bin"
    data = os.urandom(16 * 1024 * 1024)
    up.write_bytes(data)
    r = h3(tmp_path, port, ["/echo"], "--change-local-addr=50ms", "--nat-rebinding", "-m", "POST",
           f"--data={up}")
    assert r.statuses() == [200], r
    m = re.search(r"Local address is now \[127\.0\.0\.1\]:(\d+)", r.log)
    assert m, r
    assert r.body("echo") == data
    assert poll(lambda: log.exists() and log.read_text().strip(), 10)
    entry = json.loads(log.read_text().splitlines()[-1])
    # weir followed the client to its new address
    assert entry["ClientPort"] == m.group(1), entry


def test_datagrams_reach_the_worker_that_owns_the_connection(weir, certs, tmp_path, origin):
    """A relay moves the client to a new source port every few datagrams
    (16 NAT rebindings during a download): the kernel's reuseport hash sends
    some of them to the other worker, which hands them to the connection's
    owner by its connection ID; the download completes intact."""
    import hashlib
    import select
    import socket
    import threading
    o = origin()
    size = 4 * 1024 * 1024
    o.route("/big", Reply(stream=size))
    port = pick_free_port()
    w = weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                    static="core: {workers: 2}\nlog: {level: DEBUG}\n",
                    services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    backs = []
    for _ in range(17):
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.connect(("127.0.0.1", port))
        backs.append(b)
    stop = threading.Event()

    def relay():
        client, sent, k = None, 0, 0
        while not stop.is_set():
            r, _, _ = select.select([front] + backs, [], [], 0.1)
            for sock in r:
                if sock is front:
                    data, client = front.recvfrom(65536)
                    sent += 1
                    if sent % 40 == 0 and k < len(backs) - 1:
                        k += 1  # rebinding: the next datagrams leave from another port
                    backs[k].send(data)
                else:
                    data = sock.recv(65536)
                    if client:
                        front.sendto(data, client)
    t = threading.Thread(target=relay, daemon=True)
    t.start()
    r = h3(tmp_path, front.getsockname()[1], ["/big"], quiet=True)
    stop.set()
    t.join(5)
    for sock in [front] + backs:
        sock.close()
    assert r.rc == 0, r
    assert hashlib.sha256(r.body("big")).hexdigest() == pattern_sha256(size)
    assert "handed a datagram to worker" in w.output(), w.logs_tail()


def test_idle_timeout_is_the_entry_points(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO, ep_extra="""\
        http3: {}
        transport: {respondingTimeouts: {idleTimeout: 1s}}
        """))
    r = h3(tmp_path, port, ["/"], "--delay-stream=3s", dump=True)
    assert "max_idle_timeout=1000" in r.log, r
    assert "ERR_IDLE_CLOSE" in r.log, r
    assert r.statuses() == [], r
    assert h3(tmp_path, port, ["/"]).statuses() == [200]


def test_unknown_version_gets_version_negotiation(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    r = h3(tmp_path, port, ["/"], "-v", "0x5a6a7a8a", timeout=20 * SLOW)
    assert re.search(r"pkt rx .*type=VN", r.log), r
    assert re.search(r"VN v=0x00000001", r.log), r
    assert r.statuses() == []


def test_stateless_reset_for_unknown_connection(weir, certs, tmp_path):
    """A 1-RTT packet for a connection ID weir issued but no longer knows
    (here: a connection of a weir that restarted) gets a stateless reset
    only if the secret is the same; a random one is simply dropped, and weir
    keeps serving."""
    import socket
    port = pick_free_port()
    w = weir(config(port, certs, WHO))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    # short header, 18-byte DCID naming worker 0, random payload
    pkt = bytes([0x40]) + bytes([0]) + os.urandom(17) + os.urandom(60)
    s.sendto(pkt, ("127.0.0.1", port))
    try:
        data, _ = s.recvfrom(2048)
        # a stateless reset: short header form, smaller than what we sent
        assert data[0] & 0xC0 == 0x40 and len(data) < len(pkt)
    except socket.timeout:
        pytest.fail("no stateless reset for a short-header packet with weir's CID format")
    s.close()
    assert h3(tmp_path, port, ["/"]).statuses() == [200]
    assert w.running()


def test_malformed_datagrams_are_dropped(weir, certs, tmp_path):
    import socket
    port = pick_free_port()
    w = weir(config(port, certs, WHO))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for pkt in [b"", b"\x00", b"\xc0\x00\x00\x00\x01", os.urandom(1200),
                b"\xc0\x00\x00\x00\x01\x14" + os.urandom(20) + b"\x00\x00" + os.urandom(1100),
                b"\xc0\x00\x00\x00\x01\xff" + os.urandom(1200)]:
        s.sendto(pkt, ("127.0.0.1", port))
    s.close()
    time.sleep(0.2)
    assert h3(tmp_path, port, ["/"]).statuses() == [200]
    assert w.running()


def test_graceful_shutdown_finishes_http3_requests(weir, certs, tmp_path, origin):
    import signal
    o = origin()
    o.route("/slow", Reply(body="finished", delay=1.5 * SLOW))
    port = pick_free_port()
    w = weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                    services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    client, dl = h3_background(tmp_path, port, "/slow")
    o.wait_for_requests(1)
    w.send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=TIMEOUT)
    assert client.returncode == 0, out
    assert (dl / "slow").read_bytes() == b"finished"
    w.expected_exit = True
    assert w.wait_exit(15 * SLOW) == 0


def test_reload_sends_goaway_and_finishes_requests(weir, certs, tmp_path, origin):
    import signal
    o = origin()
    o.route("/slow", Reply(body="finished", delay=1.5 * SLOW))
    port = pick_free_port()
    w = weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                    static="log: {level: INFO}\n",
                    services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    client, dl = h3_background(tmp_path, port, "/slow")
    o.wait_for_requests(1)
    w.send_signal(signal.SIGHUP)
    assert poll(lambda: "GOAWAY sent on 1 connection" in w.output(), 10), w.output()
    out, _ = client.communicate(timeout=TIMEOUT)
    assert client.returncode == 0, out
    assert (dl / "slow").read_bytes() == b"finished"
    # new connections are served by the new configuration
    assert h3(tmp_path, port, ["/x"]).statuses() == [200]
    assert w.running()


# ---------------------------------------------------------------------------
# a browser

PAGE = """<!doctype html><html><head><script src="/sub.js"></script></head><body><div id=out></div>
<script>
var nav = performance.getEntriesByType('navigation')[0];
var sub = performance.getEntriesByType('resource').filter(function (e) {
  return e.name.indexOf('/sub.js') >= 0; })[0];
document.getElementById('out').textContent = 'RESULT doc=' + nav.nextHopProtocol +
  ' sub=' + (sub ? sub.nextHopProtocol : 'none') + ' ran=' + window.subRan + ' END';
</script></body></html>"""


def spki_hash(cert):
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", cert], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_chromium_loads_page_and_subresource_over_http3(weir, certs, tmp_path, origin):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (scripts/deps.sh installs it)"
    o = origin()
    o.route("/", Reply(body=PAGE, headers=[("Content-Type", "text/html")]))
    o.route("/sub.js", Reply(body="window.subRan = 1;",
                             headers=[("Content-Type", "application/javascript")]))
    port = pick_free_port()
    log = tmp_path / "access.log"
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                static=f"accessLog: {{filePath: {log}, format: json}}\n",
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    p = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
                        "--host-resolver-rules=MAP localhost 127.0.0.1",
                        f"--origin-to-force-quic-on=localhost:{port}",
                        f"--ignore-certificate-errors-spki-list={spki_hash(certs.local[0])}",
                        "--dump-dom", f"https://localhost:{port}/"],
                       capture_output=True, timeout=120 * SLOW, stdin=subprocess.DEVNULL)
    dom = p.stdout.decode(errors="replace")
    m = re.search(r"RESULT (.*?) END", dom)
    assert m, f"{dom[-2000:]}\n{p.stderr.decode(errors='replace')[-3000:]}"
    assert m.group(1) == "doc=h3 sub=h3 ran=1", m.group(1)
    assert poll(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, 10)
    protos = {json.loads(line)["RequestPath"]: json.loads(line)["RequestProtocol"]
              for line in log.read_text().splitlines()}
    assert protos.get("/") == "HTTP/3.0" and protos.get("/sub.js") == "HTTP/3.0", protos


# ---------------------------------------------------------------------------
# Alt-Svc


def curl_headers(url, *args):
    p = subprocess.run(["curl", "-sS", "-k", "-D", "-", "-o", "/dev/null", "--max-time", "10",
                        *args, url], capture_output=True, timeout=20)
    return p.stdout.decode()


def alt_values(head):
    return re.findall(r"^alt-svc:\s*(.*?)\r?$", head, re.M | re.I)


def test_alt_svc_over_http1_and_http2(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    for v in ("--http1.1", "--http2"):
        head = curl_headers(f"https://127.0.0.1:{port}/", v)
        assert alt_values(head) == [f'h3=":{port}"; ma=2592000'], head
    # weir's own answers too (no router for this host: 404)
    weir_404 = curl_headers(f"https://127.0.0.1:{port}/", "--http2", "-H", "Host: nowhere.test")
    assert " 200" in weir_404 or " 404" in weir_404
    assert alt_values(weir_404) == [f'h3=":{port}"; ma=2592000'], weir_404


def test_alt_svc_advertised_port_and_max_age(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, 'who: {rule: "Host(`localhost`)", service: whoami@internal, tls: {}}\n',
                ep_extra="http3: {advertisedPort: 443, altSvcMaxAge: 3600}\n"))
    for v in ("--http1.1", "--http2"):
        head = curl_headers(f"https://localhost:{port}/", v, "--resolve",
                            f"localhost:{port}:127.0.0.1")
        assert alt_values(head) == ['h3=":443"; ma=3600'], head
    head = curl_headers(f"https://127.0.0.1:{port}/", "--http2", "-H", "Host: other.test")
    assert " 404" in head
    assert alt_values(head) == ['h3=":443"; ma=3600'], head


def test_no_alt_svc_on_plain_http_or_without_http3(weir, certs, tmp_path):
    port, plain = pick_free_port(), pick_free_port()
    weir(config(port, certs, WHO + 'p: {rule: "PathPrefix(`/`)", service: whoami@internal}\n',
                ep_extra="http3: {}\n") + "", wait=True)
    # plain HTTP on the same entry point: no advertisement
    head = curl_headers(f"http://127.0.0.1:{port}/")
    assert " 200" in head and alt_values(head) == [], head
    port2 = pick_free_port()
    weir(config(port2, certs, WHO, ep_extra=""))
    head = curl_headers(f"https://127.0.0.1:{port2}/", "--http2")
    assert " 200" in head and alt_values(head) == [], head


def test_backend_alt_svc_merged_once(weir, certs, tmp_path, origin):
    o = origin()
    o.route("/alt", Reply(body="x", headers=[("Alt-Svc", 'h3=":9999"; ma=10, h3-29=":9999", '
                                                        'h2="alt.example:443"; ma=60'),
                                             ("Alt-Svc", 'clear')]))
    port = pick_free_port()
    weir(config(port, certs, 'o: {rule: "PathPrefix(`/`)", service: o, tls: {}}\n',
                services=f"  services:\n    o: {{loadBalancer: {{servers: [{{url: \"{o.url}\"}}]}}}}\n"))
    for v in ("--http1.1", "--http2"):
        head = curl_headers(f"https://127.0.0.1:{port}/alt", v)
        vals = alt_values(head)
        assert vals == [f'h3=":{port}"; ma=2592000, h2="alt.example:443"; ma=60'], head
    # over HTTP/3 the backend's value passes as it is, and weir adds nothing
    r = h3(tmp_path, port, ["/alt"])
    assert r.statuses() == [200], r
    vals = [v for k, v in r.headers() if k == "alt-svc"]
    assert f'h3=":{port}"' not in " ".join(vals), r


def test_router_opts_out_of_alt_svc(weir, certs, tmp_path):
    port = pick_free_port()
    weir(config(port, certs, WHO + 'quiet: {rule: "PathPrefix(`/quiet`)", service: whoami@internal, '
                                   'tls: {}, advertiseHTTP3: false}\n'))
    assert alt_values(curl_headers(f"https://127.0.0.1:{port}/quiet", "--http2")) == []
    assert len(alt_values(curl_headers(f"https://127.0.0.1:{port}/loud", "--http2"))) == 1


# ---------------------------------------------------------------------------
# configuration


def check(tmp_path, text):
    path = tmp_path / "check.yml"
    path.write_text(textwrap.dedent(text))
    p = subprocess.run([WEIR_BIN, "--check", "--configFile", str(path)], capture_output=True,
                       timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_negative_advertised_port_is_an_error_with_position(tmp_path):
    rc, out = check(tmp_path, """\
        entryPoints:
          websecure:
            address: ":8443"
            http3:
              advertisedPort: -1
        """)
    assert rc != 0
    assert re.search(r"check\.yml:5:\d+: .*advertisedPort", out), out


def test_bad_retry_mode_and_udp_entry_point_are_errors(tmp_path):
    rc, out = check(tmp_path, """\
        entryPoints:
          websecure:
            address: ":8443"
            http3: {retry: sometimes}
          dns:
            address: ":53/udp"
            http3: {}
        """)
    assert rc != 0
    assert re.search(r"check\.yml:4:\d+: .*auto, always or never", out), out
    assert re.search(r"check\.yml:7:\d+: .*HTTP/3 needs a TCP entry point", out), out


def test_startup_warns_about_chromium_port_rule(weir, certs, tmp_path):
    port = pick_free_port()
    w = weir(config(port, certs, WHO, ep_extra="http3: {advertisedPort: 8443}\n",
                    static="log: {level: INFO}\n"))
    out = w.output()
    assert re.search(r"HTTP/3 is advertised on port 8443 and served on UDP port %d" % port, out), out
    # the TCP port here is above 1024: no Chromium warning
    assert "Chromium ignores" not in out


def test_startup_warns_when_chromium_would_ignore_the_port(weir, certs, tmp_path):
    import socket
    low = None
    for p in range(900, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            low = p
            break
        except OSError:
            continue
        finally:
            s.close()
    assert low, "no free port below 1024"
    w = weir(config(low, certs, WHO, ep_extra="http3: {advertisedPort: 8443}\n",
                    static="log: {level: WARN}\n"))
    out = w.output()
    assert re.search(r"WRN .*advertisedPort 8443 is 1024 or above while the TCP port %d is below "
                     r"1024" % low, out), out
