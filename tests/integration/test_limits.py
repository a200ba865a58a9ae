"""Running out of file descriptors: weir keeps its accept loop alive without
spinning, and serves again as soon as descriptors are free."""

import os
import resource
import signal
import socket
import subprocess
import time

from conftest import WEIR_BIN
from helpers import SANITIZED, poll, request

FD_LIMIT = 64


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_emfile_pauses_accepting_instead_of_spinning(tmp_path, free_port):
    cfg = tmp_path / "weir.yml"
    cfg.write_text(f"""
entryPoints:
  web:
    address: "127.0.0.1:{free_port}"
core:
  workers: 1
log:
  level: WARN
http:
  routers:
    who:
      rule: "PathPrefix(`/`)"
      service: whoami@internal
""")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    out = open(tmp_path / "weir.out", "wb")
    proc = subprocess.Popen([WEIR_BIN, "--configFile", str(cfg)], stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=low_limit,
                            start_new_session=True)
    held = []
    try:
        assert poll(lambda: listening(free_port), 30 if SANITIZED else 10)
        # Hold more connections than weir has descriptors for.
        for _ in range(FD_LIMIT + 20):
            s = socket.create_connection(("127.0.0.1", free_port), timeout=2)
            held.append(s)
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(proc.pid) - before
        # A spinning accept loop burns a whole core (2 s); paused, weir
        # wakes ten times a second to retry.
        assert used < 1.0, f"weir used {used:.2f} s of CPU in 2 s while out of descriptors"
        assert proc.poll() is None, "weir died when it ran out of descriptors"
        for s in held:
            s.close()
        held.clear()
        # Descriptors are free again: requests are served.
        r = None
        deadline = time.monotonic() + (30 if SANITIZED else 10)
        while time.monotonic() < deadline:
            try:
                r = request(free_port, "GET", "/after")
                if r.status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert r is not None and r.status == 200
        assert b"GET /after HTTP/1.1" in r.body
        log = (tmp_path / "weir.out").read_bytes()
        assert b"pausing accepts" in log
    finally:
        for s in held:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
    text = (tmp_path / "weir.out").read_text(errors="replace")
    assert "ERROR: AddressSanitizer" not in text and "runtime error:" not in text
    assert proc.returncode == 0, text[-2000:]
