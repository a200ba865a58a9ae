"""TLS termination: certificates by SNI, TLS options, mutual TLS, 421 on
coalescing across TLS options, resumption, http → https redirection,
certificate reloads. Real peers: curl, openssl s_client, gnutls-cli."""

import os
import re
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import pick_free_port
from helpers import curl, get, poll
from tlsutil import Certs, served_subject


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


NAMES = ["a.example.test", "b.example.test", "x.wild.example.test", "m.wild.example.test",
         "rsa.example.test", "unknown.test"]


def tls_curl(port, name, path="/", *args, host=None):
    """curl over TLS to 127.0.0.1:port with SNI `name`, trusting the test CA."""
    resolve = []
    for n in NAMES:
        resolve += ["--resolve", f"{n}:{port}:127.0.0.1"]
    extra = ["-H", f"Host: {host}"] if host else []
    return curl(f"https://{name}:{port}{path}", *resolve, *extra, *args)


def config(port, certs, routers, options="", entrypoint_extra="", extra_eps="", static=""):
    a, b, w, r = certs.a, certs.b, certs.wild, certs.rsa
    return textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{port}"
        """) + textwrap.indent(textwrap.dedent(entrypoint_extra), "    ") + extra_eps + static + \
        textwrap.dedent(f"""\
        tls:
          certificates:
            - {{certFile: {a[0]}, keyFile: {a[1]}}}
            - {{certFile: {b[0]}, keyFile: {b[1]}}}
            - {{certFile: {w[0]}, keyFile: {w[1]}}}
            - {{certFile: {r[0]}, keyFile: {r[1]}}}
        """) + textwrap.indent(textwrap.dedent(options), "  ") + "http:\n  routers:\n" + \
        textwrap.indent(textwrap.dedent(routers), "    ")


WHO = """\
a: {rule: "Host(`a.example.test`)", service: whoami@internal, tls: {}}
b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {}}
w: {rule: "HostRegexp(`^.+\\\\.wild\\\\.example\\\\.test$`)", service: whoami@internal, tls: {}}
"""


def test_sni_picks_exact_and_wildcard_certificates(weir, certs):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    assert "CN = a.example.test" in served_subject(port, "a.example.test")
    assert "CN = b.example.test" in served_subject(port, "b.example.test")
    wild = served_subject(port, "x.wild.example.test")
    assert "*.wild.example.test" in wild
    # a wildcard covers exactly one label
    assert "*.wild.example.test" not in served_subject(port, "y.x.wild.example.test")
    assert "rsa.example.test" in served_subject(port, "rsa.example.test")
    code, body, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0])
    assert code == 200 and b"Host: a.example.test" in body
    code, body, _ = tls_curl(port, "x.wild.example.test", "/", "--cacert", certs.ca[0])
    assert code == 200


def test_generated_default_certificate_when_nothing_matches(weir, certs):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    subject = served_subject(port, "unknown.test")
    assert "TRAEFIK DEFAULT CERT" in subject
    assert ".traefik.default" in subject
    assert "TRAEFIK DEFAULT CERT" in served_subject(port, None)  # no SNI at all
    # served, but curl cannot verify it
    code, _, _ = tls_curl(port, "unknown.test", "/", "--cacert", certs.ca[0])
    assert code == 0
    code, _, _ = tls_curl(port, "unknown.test", "/", "-k")
    assert code == 404  # no router for the name


def test_configured_default_certificate(weir, certs):
    port = pick_free_port()
    store = f"""\
stores:
  default:
    defaultCertificate: {{certFile: {certs.b[0]}, keyFile: {certs.b[1]}}}
"""
    weir(config(port, certs, WHO, options=store))
    assert "CN = b.example.test" in served_subject(port, "unknown.test")


def test_tls_routers_serve_tls_only_and_plain_routers_plain_only(weir, certs):
    port = pick_free_port()
    routers = """\
secure: {rule: "Host(`a.example.test`)", service: whoami@internal, tls: {}}
plain: {rule: "Host(`p.example.test`)", service: noop@internal}
"""
    w = weir(config(port, certs, routers))
    # same port, plain HTTP
    assert get(port, "/", host="a.example.test").status == 404
    assert get(port, "/", host="p.example.test").status == 200
    # same port, TLS
    code, _, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0])
    assert code == 200
    code, _, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0],
                          host="p.example.test")
    assert code == 404


def test_entrypoint_http_tls_makes_every_router_tls(weir, certs):
    port = pick_free_port()
    routers = 'r: {rule: "Host(`a.example.test`)", service: whoami@internal}\n'
    weir(config(port, certs, routers, entrypoint_extra="http: {tls: {}}\n"))
    assert get(port, "/", host="a.example.test").status == 404
    code, _, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0])
    assert code == 200


def test_min_version_default_refuses_tls11_and_max_version(weir, certs):
    port = pick_free_port()
    routers = WHO + 'm: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {options: old}}\n'
    routers = routers.replace('b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {}}\n', "")
    opts = "options:\n  old: {maxVersion: VersionTLS12}\n"
    weir(config(port, certs, routers, options=opts))
    ca = ["--cacert", certs.ca[0]]
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--tlsv1.0", "--tls-max", "1.1")
    assert code == 0  # the default minVersion is TLS 1.2
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca)
    assert code == 200
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-v",
                          "--resolve", f"b.example.test:{port}:127.0.0.1", *ca,
                          f"https://b.example.test:{port}/"], capture_output=True, timeout=20)
    assert out.stdout == b"200"
    assert b"SSL connection using TLSv1.2" in out.stderr


def test_sni_strict_refuses_names_without_certificate(weir, certs):
    port = pick_free_port()
    opts = "options:\n  default: {sniStrict: true}\n"
    weir(config(port, certs, WHO, options=opts))
    assert served_subject(port, "unknown.test") == ""
    assert served_subject(port, None) == ""
    assert "CN = a.example.test" in served_subject(port, "a.example.test")


def test_alpn_protocols(weir, certs):
    port = pick_free_port()
    opts = "options:\n  default: {alpnProtocols: [http/1.1]}\n"
    weir(config(port, certs, WHO, options=opts))
    code, _, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0], "--http2")
    assert code == 200
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version}", "--http2",
                          "--resolve", f"a.example.test:{port}:127.0.0.1", "--cacert", certs.ca[0],
                          f"https://a.example.test:{port}/"], capture_output=True, timeout=20)
    assert out.stdout == b"1.1"


def test_cipher_suites_and_curves(weir, certs):
    port = pick_free_port()
    opts = """\
options:
  default:
    maxVersion: VersionTLS12
    cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    curvePreferences: [CurveP256]
"""
    weir(config(port, certs, WHO, options=opts))
    ca = ["--cacert", certs.ca[0]]
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert code == 200
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert code == 0
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--curves", "X25519")
    assert code == 0
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--curves", "P-256")
    assert code == 200


MTLS_ROUTER = 'm: {rule: "Host(`a.example.test`)", service: whoami@internal, tls: {options: mtls}}\n'


@pytest.mark.parametrize("auth,none_ok,stranger_ok,client_ok", [
    ("NoClientCert", True, True, True),
    ("RequestClientCert", True, True, True),
    ("RequireAnyClientCert", False, True, True),
    ("VerifyClientCertIfGiven", True, False, True),
    ("RequireAndVerifyClientCert", False, False, True),
])
def test_client_auth(weir, certs, auth, none_ok, stranger_ok, client_ok):
    port = pick_free_port()
    opts = f"options:\n  mtls: {{clientAuth: {{caFiles: [{certs.ca[0]}], clientAuthType: {auth}}}}}\n"
    weir(config(port, certs, MTLS_ROUTER, options=opts))
    ca = ["--cacert", certs.ca[0]]
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca)
    assert (code == 200) == none_ok
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--cert", certs.stranger[0],
                          "--key", certs.stranger[1])
    assert (code == 200) == stranger_ok
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--cert", certs.client[0],
                          "--key", certs.client[1])
    assert (code == 200) == client_ok


def test_misdirected_request_across_tls_options(weir, certs):
    port = pick_free_port()
    routers = """\
a: {rule: "Host(`a.example.test`)", service: whoami@internal, tls: {}}
b: {rule: "Host(`b.example.test`)", service: whoami@internal, tls: {options: strict}}
w: {rule: "Host(`x.wild.example.test`)", service: whoami@internal, tls: {}}
"""
    opts = "options:\n  strict: {minVersion: VersionTLS13}\n"
    weir(config(port, certs, routers, options=opts))
    ca = ["--cacert", certs.ca[0]]
    code, body, _ = tls_curl(port, "a.example.test", "/", *ca, host="b.example.test")
    assert code == 421
    code, _, _ = tls_curl(port, "a.example.test", "/", *ca, "--http1.1", host="b.example.test")
    assert code == 421
    # same options: served (the usual shared-certificate coalescing)
    code, body, _ = tls_curl(port, "a.example.test", "/", *ca, host="x.wild.example.test")
    assert code == 200 and b"x.wild.example.test" in body
    code, _, _ = tls_curl(port, "b.example.test", "/", *ca)
    assert code == 200


def test_session_resumption(weir, certs):
    port = pick_free_port()
    weir(config(port, certs, WHO))
    out = subprocess.run(["gnutls-cli", "--x509cafile", certs.ca[0], "--resume", "-p", str(port),
                          "--sni-hostname", "a.example.test", "--verify-hostname",
                          "a.example.test", "127.0.0.1"],
                         input=b"", capture_output=True, timeout=30)
    text = out.stdout.decode("latin-1")
    assert "This is a resumed session" in text, text


def redirect_config(web, secure, extra=""):
    return textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{web}"
            http:
              redirections:
                entryPoint: {{to: websecure{extra}}}
          websecure:
            address: "127.0.0.1:{secure}"
        http:
          routers:
            r: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
        """)


def test_redirection_http_to_https(weir):
    web, secure = pick_free_port(), pick_free_port()
    weir(redirect_config(web, secure))
    code, _, headers = curl(f"http://127.0.0.1:{web}/a/b?c=d", "-H", "Host: shop.example.test:8080")
    assert code == 301
    assert f"Location: https://shop.example.test:{secure}/a/b?c=d" in headers
    code, _, headers = curl(f"http://127.0.0.1:{web}/form", "-X", "POST", "-d", "x=1")
    assert code == 308
    code, _, _ = curl(f"https://127.0.0.1:{secure}/", "-k")
    assert code == 200


def test_redirection_not_permanent_and_port_443_omitted(weir):
    web = pick_free_port()
    cfg = textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{web}"
            http:
              redirections:
                entryPoint: {{to: ":443", scheme: https, permanent: false}}
        http:
          routers:
            r: {{rule: "PathPrefix(`/`)", service: whoami@internal}}
        """)
    weir(cfg)
    code, _, headers = curl(f"http://127.0.0.1:{web}/x", "-H", "Host: example.test")
    assert code == 302
    assert "Location: https://example.test/x\r" in headers
    code, _, _ = curl(f"http://127.0.0.1:{web}/x", "-X", "PUT", "-d", "1")
    assert code == 307


def test_forwarded_proto_is_https(weir, origin, certs):
    port = pick_free_port()
    o = origin()
    cfg = config(port, certs, 'r: {rule: "Host(`a.example.test`)", service: s, tls: {}}\n')
    cfg += f"  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"{o.url}\"}}]\n"
    weir(cfg)
    code, _, _ = tls_curl(port, "a.example.test", "/", "--cacert", certs.ca[0])
    assert code == 200
    req = o.last_request()
    assert req.header("X-Forwarded-Proto") == "https"
    assert req.header("X-Forwarded-Port") == str(port)


def test_certificates_reload_and_bad_file_keeps_old(weir, certs, tmp_path):
    port = pick_free_port()
    dyn = tmp_path / "dyn"
    dyn.mkdir()
    shutil.copy(certs.a[0], dyn / "cur.crt")
    shutil.copy(certs.a[1], dyn / "cur.key")
    dynamic = textwrap.dedent(f"""\
        tls:
          certificates:
            - {{certFile: {dyn}/cur.crt, keyFile: {dyn}/cur.key}}
        http:
          routers:
            r: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
        """)
    (dyn / "dynamic.yml").write_text(dynamic)
    w = weir(textwrap.dedent(f"""\
        entryPoints:
          web: {{address: "127.0.0.1:{port}"}}
        providers:
          file: {{directory: {dyn}, watch: true}}
        """))
    assert "CN = a.example.test" in served_subject(port, "a.example.test")
    # a new certificate in a new file, and the configuration pointing at it
    shutil.copy(certs.b[0], dyn / "new.crt")
    shutil.copy(certs.b[1], dyn / "new.key")
    (dyn / "dynamic.yml").write_text(dynamic.replace("cur.crt", "new.crt").replace("cur.key", "new.key"))
    assert poll(lambda: "CN = b.example.test" in served_subject(port, "b.example.test"), 10)
    # a broken certificate file: an error naming it, the old one keeps serving
    (dyn / "broken.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    (dyn / "dynamic.yml").write_text(dynamic.replace("cur.crt", "broken.crt").replace("cur.key", "new.key"))
    assert poll(lambda: "broken.crt" in w.output(), 10), w.logs_tail()
    assert re.search(r"dynamic\.yml:\d+:\d+: .*broken\.crt", w.output()), w.logs_tail()
    time.sleep(0.3)
    assert "CN = b.example.test" in served_subject(port, "b.example.test")


def test_check_reports_missing_certificate_file(tmp_path):
    cfg = tmp_path / "weir.yml"
    cfg.write_text(textwrap.dedent("""\
        entryPoints:
          web: {address: "127.0.0.1:1"}
        tls:
          certificates:
            - certFile: /nonexistent/site.crt
              keyFile: /nonexistent/site.key
        """))
    out = subprocess.run([os.environ.get("WEIR_BIN", "build/weir"), "--check", "-c", str(cfg)],
                         capture_output=True, timeout=20)
    assert out.returncode != 0
    err = out.stderr.decode()
    assert re.search(r"weir\.yml:5:\d+: .*/nonexistent/site\.crt", err), err


def test_unknown_tls_option_is_a_config_error(tmp_path):
    cfg = tmp_path / "weir.yml"
    cfg.write_text(textwrap.dedent("""\
        entryPoints:
          web: {address: "127.0.0.1:1"}
        tls:
          options:
            modern: {minVersion: VersionTLS13}
        http:
          routers:
            r: {rule: "Host(`a`)", service: noop@internal, tls: {options: modrn}}
        """))
    out = subprocess.run([os.environ.get("WEIR_BIN", "build/weir"), "--check", "-c", str(cfg)],
                         capture_output=True, timeout=20)
    assert out.returncode != 0
    err = out.stderr.decode()
    assert re.search(r'weir\.yml:8:\d+: .*tls option "modrn" does not exist \(did you mean "modern"\?\)', err), err
