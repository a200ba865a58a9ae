"""The server the HTTP/2 frame-level suites talk to (test_h2_conformance.py,
test_h2_abuse.py), and the site every target serves.

By default each test starts weir (conftest's `weir` fixture) in front of the
Python origin (`origin` fixture) with one router PathPrefix(`/`). The env var
H2_TARGET points the suites at another server, to check the cases and their
expectations against a reference implementation:

  H2_TARGET=host:port   a server already running; it must serve SITE
                        (below) itself; assertions about what reached the
                        origin are skipped
  H2_TARGET=h2o         Debian's h2o 2.2.5 started per test as a reverse
                        proxy in front of the same Python origin as weir
  H2_TARGET=nghttpd     nghttpd (nghttp2-server) started per test on a
                        document root holding SITE's files, --echo-upload
                        and --trailer 'x-trailer: yes'

SITE (every target answers these the same way):
  GET  /hello     200 "hello\\n"
  GET  /big       200, BIG bytes of origin.pattern_chunks
  GET  /slow      200 "slow\\n" (the origin waits SLOW_DELAY s first;
                  nghttpd answers at once)
  GET  /trailers  200 "trailers\\n" and the trailer x-trailer: yes
  GET  /hop       200 "hop\\n"; the origin adds Connection: close and
                  Keep-Alive and sends it chunked
  POST /echo      200 with the request body as the response body
"""

import os
import signal
import subprocess
import textwrap
from dataclasses import dataclass, field

import pytest

from conftest import pick_free_port, wait_for_port
from h2util import Client
from helpers import simple_config
from origin import Origin, Reply, pattern_chunks

H2_TARGET = os.environ.get("H2_TARGET", "").strip()
BIG = 300_000
SLOW_DELAY = 1.0
BIG_BODY = b"".join(bytes(c) for c in pattern_chunks(BIG))


def site_routes(o):
    o.route("/hello", Reply(200, "hello\n"))
    o.route("/big", Reply(200, stream=BIG))
    o.route("/slow", Reply(200, "slow\n", delay=SLOW_DELAY))
    o.route("/trailers", Reply(200, "trailers\n", chunked=True, trailers=[("X-Trailer", "yes")]))
    o.route("/hop", Reply(200, "hop\n", chunked=True, close=True,
                          headers=[("Keep-Alive", "timeout=5")]))
    o.route("/echo", Reply(200, echo=True))
    return o


@dataclass
class Target:
    host: str
    port: int
    kind: str                    # weir, h2o, nghttpd or external
    origin: Origin = None        # None when the origin cannot be observed
    weir: object = None          # conftest.Weir in weir mode
    procs: list = field(default_factory=list)

    def client(self, settings=(), handshake=True):
        """A new connection; with handshake, the preface is exchanged and the
        server's SETTINGS read (ours are acknowledged later, in stream order)."""
        c = Client(self.host, self.port)
        if handshake:
            c.handshake(settings)
        return c

    @property
    def is_weir(self):
        return self.kind == "weir"


def _start(cmd, port, directory, what):
    log = open(os.path.join(directory, f"{what}.log"), "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=directory, start_new_session=True)
    log.close()
    problem = wait_for_port(port, 10, p, what)
    if problem:
        with open(os.path.join(directory, f"{what}.log"), "rb") as f:
            pytest.fail(f"{problem}\n{f.read()[-3000:].decode(errors='replace')}")
    return p


def _start_h2o(directory, origin_url):
    port = pick_free_port()
    conf = os.path.join(directory, "h2o.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""\
            listen:
              host: 127.0.0.1
              port: {port}
            user: root
            pid-file: {directory}/h2o.pid
            hosts:
              default:
                paths:
                  /:
                    proxy.reverse.url: "{origin_url}/"
                    proxy.preserve-host: ON
            """))
    return port, _start(["h2o", "-c", conf], port, directory, "h2o")


def _start_nghttpd(directory):
    port = pick_free_port()
    root = os.path.join(directory, "htdocs")
    os.makedirs(root, exist_ok=True)
    files = {"hello": b"hello\n", "big": BIG_BODY, "slow": b"slow\n", "trailers": b"trailers\n",
             "hop": b"hop\n", "echo": b""}
    for name, content in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(content)
    cmd = ["nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", root, "--echo-upload",
           "--trailer", "x-trailer: yes", str(port)]
    return port, _start(cmd, port, directory, "nghttpd")


@pytest.fixture
def h2_target(weir, origin, tmp_path):
    """Factory: h2_target(entrypoint_extra="") -> Target. entrypoint_extra is
    YAML under entryPoints.web for weir (other targets ignore it)."""
    started = []

    def start(entrypoint_extra=""):
        if H2_TARGET and H2_TARGET not in ("h2o", "nghttpd", "weir"):
            host, _, port = H2_TARGET.rpartition(":")
            return Target(host or "127.0.0.1", int(port), "external")
        if H2_TARGET == "nghttpd":
            port, p = _start_nghttpd(str(tmp_path))
            started.append(p)
            return Target("127.0.0.1", port, "nghttpd", procs=[p])
        o = site_routes(origin("o"))
        if H2_TARGET == "h2o":
            port, p = _start_h2o(str(tmp_path), o.url)
            started.append(p)
            return Target("127.0.0.1", port, "h2o", origin=o, procs=[p])
        port = pick_free_port()
        extra = "http2:\n  maxConcurrentStreams: 8\n" + textwrap.dedent(entrypoint_extra)
        w = weir(simple_config(port, [o.url], entrypoint_extra=extra))
        return Target("127.0.0.1", port, "weir", origin=o, weir=w)

    yield start
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


@pytest.fixture
def t(h2_target):
    """The default target for one test."""
    return h2_target()
