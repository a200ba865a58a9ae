"""The command line: --version, --configFile / -c, --check."""

import os
import re
import subprocess
import textwrap

from conftest import REPO, WEIR_BIN
from helpers import IO_TIMEOUT, SLOW, curl, get, simple_config


def run_weir(*args, timeout=20 * SLOW):
    return subprocess.run([WEIR_BIN, *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(p)


def line_col(text, needle, occurrence=1):
    """1-based line and column of the occurrence-th `needle` in text."""
    text = textwrap.dedent(text).lstrip("\n")
    idx = -1
    for _ in range(occurrence):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


def test_version_prints_the_version_and_exits_0():
    out = run_weir("--version")
    assert out.returncode == 0, out
    version = open(os.path.join(REPO, "VERSION")).read().strip()
    assert version in (out.stdout + out.stderr).decode()


def test_config_file_long_flag_serves_requests(weir, free_port):
    w = weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            hello:
              rule: "Path(`/hello`)"
              service: whoami@internal
        """)
    status, body, _ = curl(w.url("/hello"))
    assert status == 200
    assert b"GET /hello HTTP/1.1" in body


def test_short_c_flag_serves_requests(weir, free_port, tmp_path):
    path = tmp_path / "short.yml"
    w = weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            hello:
              rule: "PathPrefix(`/`)"
              service: whoami@internal
        """, name="short.yml", args=["-c", str(path)])
    r = get(w.port, "/via-short-flag")
    assert r.status == 200
    assert b"GET /via-short-flag HTTP/1.1" in r.body


def test_check_accepts_a_valid_file_without_serving(tmp_path, free_port):
    path = write(tmp_path, "good.yml", simple_config(
        free_port, ["http://127.0.0.1:9"], rule="Host(`example.com`) && PathPrefix(`/api`)"))
    out = run_weir("--check", "--configFile", path)
    assert out.returncode == 0, out
    # --check only validates: nothing listens on the configured port afterwards.
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        f"http://127.0.0.1:{free_port}/"], capture_output=True,
                       timeout=IO_TIMEOUT)
    assert r.stdout == b"000"


def test_check_reports_unknown_key_with_file_line_column(tmp_path, free_port):
    text = f"""
        entryPoints:
          web:
            adress: "127.0.0.1:{free_port}"
        """
    path = write(tmp_path, "typo.yml", text)
    out = run_weir("--check", "--configFile", path)
    assert out.returncode != 0
    output = (out.stdout + out.stderr).decode()
    line, col = line_col(text, "adress")
    assert f"{path}:{line}:{col}:" in output, output
    assert "adress" in output


def test_check_reports_router_pointing_to_missing_service(tmp_path, free_port):
    text = f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            r:
              rule: "PathPrefix(`/`)"
              service: nowhere
        """
    path = write(tmp_path, "missing.yml", text)
    out = run_weir("--check", "--configFile", path)
    assert out.returncode != 0
    output = (out.stdout + out.stderr).decode()
    line, _ = line_col(text, "service: nowhere")
    assert re.search(re.escape(f"{path}:{line}:") + r"\d+:", output), output
    assert "nowhere" in output


def test_check_reports_every_error_not_just_the_first(tmp_path, free_port):
    text = f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
            bogusOption: 1
        http:
          routers:
            r:
              rule: "PathPrefix(`/`)"
              service: nowhere
          services:
            s:
              loadBalancer:
                servers:
                  - urll: "http://127.0.0.1:9"
        """
    path = write(tmp_path, "many.yml", text)
    out = run_weir("--check", "--configFile", path)
    assert out.returncode != 0
    output = (out.stdout + out.stderr).decode()
    for needle in ("bogusOption", "service: nowhere", "urll"):
        line, _ = line_col(text, needle)
        assert re.search(re.escape(f"{path}:{line}:") + r"\d+:", output), (needle, output)


def test_check_reports_bad_rule_in_provider_file(tmp_path, free_port):
    dyn = """
        http:
          routers:
            broken:
              rule: "Hots(`example.com`)"
              service: whoami@internal
        """
    dyn_path = write(tmp_path, "dynamic.yml", dyn)
    path = write(tmp_path, "static.yml", f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        providers:
          file:
            filename: "{dyn_path}"
        """)
    out = run_weir("--check", "--configFile", path)
    assert out.returncode != 0
    output = (out.stdout + out.stderr).decode()
    line, _ = line_col(dyn, "rule:")
    assert re.search(re.escape(f"{dyn_path}:{line}:") + r"\d+:", output), output


def test_check_accepts_valid_provider_directory(tmp_path, free_port):
    d = tmp_path / "dyn"
    d.mkdir()
    write(d, "a.yml", """
        http:
          routers:
            a:
              rule: "Path(`/a`)"
              service: svc
        """)
    write(d, "b.yaml", """
        http:
          services:
            svc:
              loadBalancer:
                servers:
                  - url: "http://127.0.0.1:9"
        """)
    path = write(tmp_path, "static.yml", f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        providers:
          file:
            directory: "{d}"
        """)
    out = run_weir("--check", "--configFile", path)
    assert out.returncode == 0, out


def test_missing_config_file_fails_with_a_message(tmp_path):
    missing = str(tmp_path / "does-not-exist.yml")
    out = run_weir("--configFile", missing)
    assert out.returncode != 0
    assert "does-not-exist.yml" in (out.stdout + out.stderr).decode()

