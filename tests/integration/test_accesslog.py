"""Access log: common and JSON formats, stdout or file, SIGUSR1 reopen."""

import json
import os
import signal

from conftest import pick_free_port
from helpers import SLOW, get, poll, request
from origin import Reply


def config(port, origin_url, access_log):
    return f"""
        entryPoints:
          web:
            address: "127.0.0.1:{port}"
        accessLog:
        {access_log}
        http:
          routers:
            hello-router:
              rule: "PathPrefix(`/hello`)"
              service: hello-svc
            dead-router:
              rule: "PathPrefix(`/dead`)"
              service: dead-svc
          services:
            hello-svc:
              loadBalancer:
                servers:
                  - url: "{origin_url}"
            dead-svc:
              loadBalancer:
                servers:
                  - url: "http://127.0.0.1:{pick_free_port()}"
        """


def read_lines(path):
    try:
        with open(path) as f:
            return [line for line in f.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def wait_lines(path, n):
    return poll(lambda: len(read_lines(path)) >= n and read_lines(path), 3 * SLOW) or \
        read_lines(path)


def test_common_format_to_file(weir, origin, free_port, tmp_path):
    o = origin("o")
    log = tmp_path / "access.log"
    weir(config(free_port, o.url, f"""  filePath: "{log}"
          format: common"""))
    assert get(free_port, "/hello/world").status == 200
    assert get(free_port, "/missing").status == 404
    lines = wait_lines(log, 2)
    assert len(lines) == 2, lines
    assert '"GET /hello/world HTTP/1.1" 200' in lines[0]
    assert lines[0].startswith("127.0.0.1 ")
    assert '"GET /missing HTTP/1.1" 404' in lines[1]


def test_common_format_to_stdout_by_default(weir, origin, free_port):
    o = origin("o")
    w = weir(config(free_port, o.url, "  format: common"))
    assert request(free_port, "POST", "/hello/stdout-probe", body=b"x").status == 200
    assert poll(lambda: '"POST /hello/stdout-probe HTTP/1.1" 200' in w.stdout(), 3 * SLOW), \
        w.logs_tail()


def test_json_format_fields(weir, origin, free_port, tmp_path):
    o = origin("o", default=Reply(201, "created\n"))
    log = tmp_path / "access.json"
    weir(config(free_port, o.url, f"""  filePath: "{log}"
          format: json"""))
    assert get(free_port, "/hello/json").status == 201
    assert get(free_port, "/dead/end").status == 502
    lines = wait_lines(log, 2)
    assert len(lines) == 2, lines
    entries = [json.loads(line) for line in lines]
    ok, dead = entries
    for key in ("ClientHost", "RequestMethod", "RequestPath", "RequestProtocol",
                "DownstreamStatus", "OriginStatus", "Duration", "RouterName", "ServiceName"):
        assert key in ok, f"{key} missing from {ok}"
    assert ok["ClientHost"] == "127.0.0.1"
    assert ok["RequestMethod"] == "GET"
    assert ok["RequestPath"] == "/hello/json"
    assert ok["RequestProtocol"] == "HTTP/1.1"
    assert ok["DownstreamStatus"] == 201
    assert ok["OriginStatus"] == 201
    assert isinstance(ok["Duration"], (int, float)) and ok["Duration"] > 0
    assert "hello-router" in ok["RouterName"]
    assert "hello-svc" in ok["ServiceName"]
    assert dead["DownstreamStatus"] == 502
    assert dead["RequestPath"] == "/dead/end"
    assert "dead-router" in dead["RouterName"]


def test_sigusr1_reopens_the_access_log(weir, origin, free_port, tmp_path):
    o = origin("o")
    log = tmp_path / "access.log"
    w = weir(config(free_port, o.url, f"""  filePath: "{log}"
          format: common"""))
    assert get(free_port, "/hello/before").status == 200
    assert len(wait_lines(log, 1)) == 1
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    w.send_signal(signal.SIGUSR1)
    # Reopening creates the file again, as logrotate expects.
    assert poll(log.exists, 3 * SLOW), "access.log was not re-created after SIGUSR1"
    assert get(free_port, "/hello/after").status == 200
    lines = wait_lines(log, 1)
    assert any("/hello/after" in line for line in lines), (lines, read_lines(rotated))
    assert all("/hello/after" not in line for line in read_lines(rotated))
    assert any("/hello/before" in line for line in read_lines(rotated))
    assert w.running()


def test_request_count_per_connection_over_h2c(weir, origin, free_port, tmp_path):
    """RequestCount numbers the requests of one connection, for HTTP/2
    streams as for HTTP/1.1 keep-alive (nghttp: three requests on one h2c
    connection, one after the other)."""
    import subprocess
    o = origin("o", default=Reply(200, "ok\n"))
    log = tmp_path / "access.json"
    weir(config(free_port, o.url, f"""  filePath: "{log}"
          format: json"""))
    p = subprocess.run(["nghttp", "-n", "--no-dep", "-m", "3",
                        f"http://127.0.0.1:{free_port}/hello/h2"], capture_output=True,
                       timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr
    lines = wait_lines(log, 3)
    entries = [json.loads(line) for line in lines]
    assert [e["RequestProtocol"] for e in entries] == ["HTTP/2.0"] * 3, entries
    assert sorted(e["RequestCount"] for e in entries) == [1, 2, 3], entries
