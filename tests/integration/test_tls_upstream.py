"""TLS to https:// servers (first step of HTTP/2 and TLS to backends):
verification against rootCAs or the system's store, serverName,
insecureSkipVerify, a client certificate, and keep-alive reuse of the TLS
connection. The backend is Debian's nginx with TLS."""

import subprocess
import textwrap
import time

import pytest

from conftest import pick_free_port, wait_for_port
from helpers import get
from tlsutil import Certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("upcerts"))


@pytest.fixture
def tls_nginx(tmp_path, certs):
    procs = []

    def start(verify_client=False):
        d = tmp_path / f"nginx-tls-{len(procs) + 1}"
        d.mkdir()
        port = pick_free_port()
        verify = (f"ssl_client_certificate {certs.ca[0]}; ssl_verify_client on;"
                  if verify_client else "")
        (d / "nginx.conf").write_text(textwrap.dedent(f"""\
            daemon off;
            master_process off;
            worker_processes 1;
            pid {d}/nginx.pid;
            error_log {d}/error.log warn;
            events {{ worker_connections 256; }}
            http {{
                log_format conns '$connection $ssl_protocol "$request" $status';
                access_log {d}/access.log conns;
                client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
                uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
                server {{
                    listen 127.0.0.1:{port} ssl;
                    ssl_certificate {certs.a[0]};
                    ssl_certificate_key {certs.a[1]};
                    {verify}
                    location / {{ return 200 "tls origin $ssl_protocol $ssl_client_s_dn\\n"; }}
                }}
            }}
            """))
        p = subprocess.Popen(["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c",
                              str(d / "nginx.conf")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        problem = wait_for_port(port, 10, p, "nginx")
        assert not problem, problem
        return port, d / "access.log"

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def weir_to(weir, backend_port, transport, static=""):
    port = pick_free_port()
    cfg = textwrap.dedent(f"""\
        entryPoints:
          web: {{address: "127.0.0.1:{port}"}}
        """) + static + textwrap.dedent(f"""\
        http:
          routers:
            r: {{rule: "PathPrefix(`/`)", service: s}}
          services:
            s:
              loadBalancer:
                serversTransport: t
                servers: [{{url: "https://127.0.0.1:{backend_port}"}}]
          serversTransports:
            t:
        """) + textwrap.indent(textwrap.dedent(transport), "      ")
    weir(cfg)
    return port


def test_verified_with_root_cas_and_server_name(weir, tls_nginx, certs):
    bport, log = tls_nginx()
    port = weir_to(weir, bport, f"serverName: a.example.test\nrootCAs: [{certs.ca[0]}]\n")
    r = get(port, "/x")
    assert r.status == 200
    assert r.body.startswith(b"tls origin TLSv1.")


def test_system_trust_refuses_a_private_ca(weir, tls_nginx):
    bport, _ = tls_nginx()
    port = weir_to(weir, bport, "serverName: a.example.test\n")
    assert get(port, "/").status == 502


def test_insecure_skip_verify(weir, tls_nginx):
    bport, _ = tls_nginx()
    port = weir_to(weir, bport, "insecureSkipVerify: true\n")
    r = get(port, "/")
    assert r.status == 200 and b"tls origin" in r.body


def test_wrong_server_name_is_refused(weir, tls_nginx, certs):
    bport, _ = tls_nginx()
    port = weir_to(weir, bport, f"serverName: b.example.test\nrootCAs: [{certs.ca[0]}]\n")
    assert get(port, "/").status == 502
    port2 = weir_to(weir, bport, f"rootCAs: [{certs.ca[0]}]\n")  # 127.0.0.1 is not in the SAN
    assert get(port2, "/").status == 502


def test_client_certificate(weir, tls_nginx, certs):
    bport, _ = tls_nginx(verify_client=True)
    port = weir_to(weir, bport, f"serverName: a.example.test\nrootCAs: [{certs.ca[0]}]\n")
    assert get(port, "/").status == 400  # nginx: "No required SSL certificate was sent"
    port2 = weir_to(weir, bport, f"""\
        serverName: a.example.test
        rootCAs: [{certs.ca[0]}]
        certificates:
          - {{certFile: {certs.client[0]}, keyFile: {certs.client[1]}}}
        """)
    r = get(port2, "/")
    assert r.status == 200 and b"CN=client" in r.body


def test_tls_connection_is_reused(weir, tls_nginx, certs):
    bport, log = tls_nginx()
    port = weir_to(weir, bport, f"serverName: a.example.test\nrootCAs: [{certs.ca[0]}]\n",
                   static="core: {workers: 1}\n")
    for i in range(5):
        assert get(port, f"/r{i}").status == 200
    time.sleep(0.3)
    lines = [l for l in log.read_text().splitlines() if '"GET /r' in l]
    assert len(lines) == 5
    assert len({l.split()[0] for l in lines}) == 1, lines  # one TLS connection


def test_static_transport_root_cas(weir, tls_nginx, certs):
    bport, _ = tls_nginx()
    port = pick_free_port()
    weir(textwrap.dedent(f"""\
        entryPoints:
          web: {{address: "127.0.0.1:{port}"}}
        serversTransport:
          rootCAs: [{certs.ca[0]}]
        http:
          routers:
            r: {{rule: "PathPrefix(`/`)", service: s}}
          services:
            s:
              loadBalancer:
                servers: [{{url: "https://localhost:{bport}"}}]
        """))
    # localhost is not in the certificate: verification fails by name
    assert get(port, "/").status == 502


def test_bad_root_ca_file_is_a_config_error(tmp_path):
    import os
    cfg = tmp_path / "weir.yml"
    cfg.write_text(textwrap.dedent("""\
        entryPoints:
          web: {address: "127.0.0.1:1"}
        http:
          routers:
            r: {rule: "PathPrefix(`/`)", service: s}
          services:
            s:
              loadBalancer:
                serversTransport: t
                servers: [{url: "https://127.0.0.1:9"}]
          serversTransports:
            t:
              rootCAs: [/nonexistent/ca.pem]
        """))
    out = subprocess.run([os.environ.get("WEIR_BIN", "build/weir"), "--check", "-c", str(cfg)],
                         capture_output=True, timeout=20)
    assert out.returncode != 0
    assert "weir.yml:13:" in out.stderr.decode() and "/nonexistent/ca.pem" in out.stderr.decode()
