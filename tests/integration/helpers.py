"""Client-side helpers: a raw-socket HTTP/1.1 client and a curl wrapper.

The raw client lets tests send exactly the bytes they want (pipelining,
smuggling attempts, slow heads) and read responses strictly, so that every
byte weir sends is accounted for.
"""

import os
import socket
import subprocess
import textwrap
import time

SANITIZED = os.environ.get("WEIR_SANITIZED") == "1"
# Everything waits longer under ASan+UBSan; every wait stays bounded.
SLOW = 3.0 if SANITIZED else 1.0
IO_TIMEOUT = 10.0 * SLOW


class Response:
    def __init__(self, status, reason, version, headers, body):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} body={self.body[:200]!r}>"


class Conn:
    """One client connection with a read buffer."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=IO_TIMEOUT):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise EOFError("connection closed by peer")
        self.buf += data

    def read_until(self, marker, limit=16 << 20):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (marker, limit))
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head[:-4].split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip(" \t")))
        return version, int(code), reason, headers

    def read_response(self, method="GET", skip_interim=True, sink=None):
        """Reads one response. 1xx responses are skipped unless skip_interim
        is False. With sink, body bytes are passed to sink(memoryview) and not
        kept (for huge bodies)."""
        while True:
            version, status, reason, headers = self.read_head()
            if not (100 <= status < 200 and status != 101 and skip_interim):
                break
        resp = Response(status, reason, version, headers, b"")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        body = bytearray()
        emit = sink if sink is not None else body.extend
        if "chunked" in te:
            while True:
                size = int(self.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                self._read_n(size, emit)
                assert self.read_exact(2) == b"\r\n", "bad chunk terminator from weir"
        elif cl is not None:
            self._read_n(int(cl), emit)
        else:
            emit(memoryview(self.read_to_eof()))
        resp.body = bytes(body)
        return resp

    def _read_n(self, n, emit):
        if self.buf:
            take = min(n, len(self.buf))
            emit(memoryview(self.buf)[:take])
            del self.buf[:take]
            n -= take
        chunk = bytearray(1024 * 1024)
        view = memoryview(chunk)
        while n > 0:
            got = self.sock.recv_into(view, min(n, len(chunk)))
            if got == 0:
                raise EOFError("connection closed with %d body bytes missing" % n)
            emit(view[:got])
            n -= got

    def request(self, method="GET", path="/", headers=None, body=None, host=None):
        """Sends one request (Host defaults to 127.0.0.1:port) and reads the response."""
        self.send(build_request(method, path, headers, body,
                                host if host is not None else f"127.0.0.1:{self.port}"))
        return self.read_response(method)

    def is_closed_by_peer(self, timeout=2.0):
        """True if the peer closes (EOF or reset) within timeout without sending
        more bytes; False if the connection stays open. Raises if bytes arrive."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)
        if data:
            raise AssertionError(f"unexpected bytes from weir: {data[:200]!r}")
        return True


def build_request(method, path, headers=None, body=None, host="localhost"):
    lines = [f"{method} {path} HTTP/1.1"]
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host is not None and not any(k.lower() == "host" for k, _ in hdrs):
        lines.append(f"Host: {host}")
    for k, v in hdrs:
        lines.append(f"{k}: {v}")
    if isinstance(body, str):
        body = body.encode()
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k, _ in hdrs):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def request(port, method="GET", path="/", headers=None, body=None, host=None, source=None,
            timeout=IO_TIMEOUT):
    """One request on a fresh connection."""
    with Conn(port, source=source, timeout=timeout) as c:
        return c.request(method, path, headers, body, host)


def get(port, path="/", **kw):
    return request(port, "GET", path, **kw)


def send_raw(port, data, timeout=IO_TIMEOUT):
    """Sends raw bytes, returns (first response or None, closed-afterwards flag)."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        try:
            resp = c.read_response()
        except EOFError:
            return None, True
        return resp, c.is_closed_by_peer(2.0 * SLOW)


def curl(url, *args, timeout=IO_TIMEOUT):
    """Runs curl; returns (status code, body bytes, headers text)."""
    out = subprocess.run(
        ["curl", "-sS", "--max-time", str(int(timeout)), "-D", "/dev/stderr", "-o", "-",
         "-w", "\n%{http_code}", *args, url],
        capture_output=True, timeout=timeout + 5)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), body, out.stderr.decode("latin-1")


def poll(fn, timeout, interval=0.05):
    """Calls fn until it returns a truthy value or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except (OSError, EOFError, ValueError):
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def connect_refused(port):
    """True when a TCP connect to 127.0.0.1:port is refused."""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def _indent(text, n):
    text = textwrap.dedent(text)
    return "".join(" " * n + line + "\n" for line in text.splitlines() if line.strip())


def simple_config(port, servers, rule="PathPrefix(`/`)", static="", service_extra="",
                  router_extra="", entrypoint_extra=""):
    """YAML for one entry point `web` on 127.0.0.1:port, one router `r` with
    `rule`, and one loadBalancer service `svc` over the server URLs.

    entrypoint_extra / router_extra / service_extra are YAML lines placed
    under entryPoints.web / http.routers.r / http.services.svc.loadBalancer;
    `static` is YAML appended at the top level (e.g. accessLog, core)."""
    if servers:
        srv_block = "        servers:\n" + "".join(
            f"          - url: \"{u}\"\n" for u in servers)
    else:
        srv_block = "        servers: []\n"
    return (
        "entryPoints:\n"
        "  web:\n"
        f"    address: \"127.0.0.1:{port}\"\n"
        f"{_indent(entrypoint_extra, 4)}"
        "http:\n"
        "  routers:\n"
        "    r:\n"
        "      entryPoints: [web]\n"
        f"      rule: \"{rule}\"\n"
        "      service: svc\n"
        f"{_indent(router_extra, 6)}"
        "  services:\n"
        "    svc:\n"
        "      loadBalancer:\n"
        f"{srv_block}"
        f"{_indent(service_extra, 8)}"
        f"{textwrap.dedent(static)}"
    )
