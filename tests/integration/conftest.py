"""Fixtures for weir's integration tests.

Every test drives the real binary (env WEIR_BIN, default build/weir of this
repository) with a YAML configuration written into the test's tmp_path, in
front of real origins: the Python origin of origin.py, or Debian's nginx.

Fixtures:
  free_port()            an unused TCP port on 127.0.0.1
  weir(config, ...)      writes config, starts weir, waits until every
                         entry point accepts connections; at teardown stops it
                         by PID (SIGTERM, then SIGKILL) and fails the test if
                         weir crashed or a sanitizer reported an error
  origin(name, ...)      a threaded Python HTTP/1.1 origin (origin.Origin)
  nginx_origin(...)      nginx serving `return 200 "..."` on a free port
  pki                    (session) a CA, server and client certificates made
                         with certtool (tlspki.py)

Under WEIR_SANITIZED=1 (ASan+UBSan build) every wait is longer (helpers.SLOW).
"""

import os
import random
import re
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from helpers import SANITIZED
from origin import Origin
from tlspki import pki  # noqa: F401  (session-scoped fixture, defined in tlspki.py)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEIR_BIN = os.environ.get("WEIR_BIN") or os.path.join(REPO, "build", "weir")
START_TIMEOUT = 30.0 if SANITIZED else 10.0
STOP_TIMEOUT = 30.0 if SANITIZED else 15.0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

_used_ports = set()


def pick_free_port():
    """A port below the ephemeral range (so no outgoing connection takes it
    meanwhile) that is free on 127.0.0.1 right now and not handed out before
    in this session."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _used_ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port found")


@pytest.fixture
def free_port():
    return pick_free_port()


def is_listening(port):
    """True if a TCP socket listens on 127.0.0.1:port (or any address).

    Read from /proc/net/tcp rather than by connecting: a probe connection
    would be one more client for weir to handle in every test."""
    want = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] in want and fields[3] == "0A":  # 0A = LISTEN
                    return True
    except OSError:
        pass
    return False


def wait_for_port(port, timeout, proc=None, what="process"):
    """Waits until something listens on 127.0.0.1:port. Returns None, or a
    message if proc exits first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            return f"{what} exited with code {proc.returncode} before listening on {port}"
        if is_listening(port):
            return None
        if time.monotonic() >= deadline:
            return f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s"
        time.sleep(0.02)


def descendants(pid):
    """pid and all of its descendant processes."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def rss_kib(pid):
    """VmRSS in KiB of pid plus all its descendants (0 for a vanished process)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Weir:
    """A running weir process."""

    def __init__(self, directory, config_path, args):
        self.dir = directory
        self.config_path = config_path
        self.stdout_path = os.path.join(directory, os.path.basename(config_path) + ".stdout")
        self.stderr_path = os.path.join(directory, os.path.basename(config_path) + ".stderr")
        self.args = args
        self.expected_exit = False
        self.ports = []
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([WEIR_BIN, *args], stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=directory,
                                     start_new_session=True)
        self.pid = self.proc.pid

    @property
    def port(self):
        return self.ports[0]

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output(self):
        return self.stdout() + self.stderr()

    def logs_tail(self, n=4000):
        return (f"--- weir stdout (tail) ---\n{self.stdout()[-n:]}\n"
                f"--- weir stderr (tail) ---\n{self.stderr()[-n:]}")

    def send_signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.expected_exit = True
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits for weir to exit; returns the exit code, or None on timeout."""
        self.expected_exit = True
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self):
        return self.proc.poll() is None

    def rss_kib(self):
        return rss_kib(self.pid)

    def stop(self):
        """Stops weir by PID: SIGTERM, bounded wait, SIGKILL. Returns a list of
        problems to report (crash, sanitizer findings)."""
        problems = []
        if self.proc.poll() is not None and not self.expected_exit:
            problems.append(f"weir exited unexpectedly with code {self.proc.returncode}")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                # graceTimeOut defaults to 10 s: a drain must end before this.
                problems.append(f"weir did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM")
        self._out.close()
        self._err.close()
        if self.proc.returncode < 0 and self.proc.returncode != -signal.SIGKILL:
            problems.append(f"weir died of signal {-self.proc.returncode}")
        err = self.stderr() + self.stdout()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                i = err.index(marker)
                problems.append(f"sanitizer report in weir's output:\n{err[max(0, i - 200):i + 6000]}")
                break
        if problems:
            problems.append(self.logs_tail(2000))
        return problems


@pytest.fixture
def weir(tmp_path):
    """Factory: weir(config_text, files=None, args=None, wait=True) -> Weir.

    config_text is YAML (dedented); it is written to tmp_path/weir.yml (or
    weir-N.yml for more than one instance). files maps extra file names to
    contents, written into tmp_path first. Every "127.0.0.1:PORT" entry point
    address in the config is awaited unless wait=False. args replaces the
    default command line ["--configFile", path]."""
    started = []

    def start(config_text, files=None, args=None, wait=True, name=None):
        for fname, content in (files or {}).items():
            (tmp_path / fname).write_text(textwrap.dedent(content))
        name = name or ("weir.yml" if not started else f"weir-{len(started) + 1}.yml")
        path = tmp_path / name
        config_text = textwrap.dedent(config_text)
        path.write_text(config_text)
        w = Weir(str(tmp_path), str(path),
                 args if args is not None else ["--configFile", str(path)])
        started.append(w)
        w.ports = [int(p) for p in re.findall(
            r"address:\s*[\"']?127\.0\.0\.1:(\d+)", config_text)]
        if wait:
            for port in w.ports:
                problem = wait_for_port(port, START_TIMEOUT, w.proc, "weir")
                if problem:
                    w.expected_exit = True
                    pytest.fail(f"{problem}\n{w.logs_tail()}")
        return w

    yield start

    problems = []
    for w in started:
        problems += [f"{w.config_path}: {p}" for p in w.stop()]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def origin():
    """Factory: origin(name="origin", default=None) -> origin.Origin."""
    started = []

    def start(name="origin", default=None):
        o = Origin(name, default=default)
        started.append(o)
        return o

    yield start
    for o in started:
        o.stop()


class Nginx:
    def __init__(self, directory, port, proc, access_log):
        self.dir = directory
        self.port = port
        self.proc = proc
        self.pid = proc.pid
        self.url = f"http://127.0.0.1:{port}"
        self.access_log = access_log

    def access_lines(self):
        try:
            with open(self.access_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format conns '$connection $connection_requests "$request" $status host=$http_host';
    access_log {dir}/access.log conns;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        location = / {{ return 200 "{body}"; }}
        location = /host {{ return 200 "host=$http_host"; }}
{locations}
    }}
}}
"""


@pytest.fixture
def nginx_origin(tmp_path):
    """Factory: nginx_origin(body="hello from nginx\\n", locations="", files=None) -> Nginx.

    nginx runs in the foreground (daemon off, master_process off) with its
    config, pid file, logs and temp dirs in tmp_path; files maps names to
    contents (str or bytes) placed under its document root."""
    started = []

    def start(body="hello from nginx\\n", locations="", files=None):
        d = tmp_path / f"nginx-{len(started) + 1}"
        (d / "www").mkdir(parents=True)
        for fname, content in (files or {}).items():
            p = d / "www" / fname
            if isinstance(content, str):
                p.write_text(content)
            else:
                p.write_bytes(content)
        port = pick_free_port()
        conf = d / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=d, port=port, body=body, locations=locations))
        log = open(d / "nginx.out", "wb")
        proc = subprocess.Popen(["nginx", "-p", str(d), "-e", str(d / "error.log"),
                                 "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        n = Nginx(str(d), port, proc, str(d / "access.log"))
        started.append(n)
        problem = wait_for_port(port, 10, proc, "nginx")
        if problem:
            pytest.fail(f"{problem}\n{(d / 'nginx.out').read_text()}\n"
                        f"{(d / 'error.log').read_text() if (d / 'error.log').exists() else ''}")
        return n

    yield start
    for n in started:
        if n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
            try:
                n.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(timeout=10)
