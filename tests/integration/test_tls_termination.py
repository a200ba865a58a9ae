"""TLS termination, as clients see it: the certificate chosen by SNI (exact
name, then wildcard, then the configured or generated default), plain HTTP
and TLS on one port, entry point TLS, TLS options (versions, ciphers,
curves, sniStrict, ALPN, client certificates) chosen by SNI, 421 when the
Host belongs to other options, session resumption, http → https
redirection, certificate reloads and `weir --check`.

Real peers only: curl (OpenSSL), openssl s_client, gnutls-cli. The
certificates come from the session-scoped `pki` fixture (tlspki.py).
"""

import os
import re
import subprocess
import textwrap
import time

import pytest

from conftest import WEIR_BIN, pick_free_port
from helpers import SLOW, get, poll
from tlspki import gnutls_cli, require_tool, served_cert

CURL_TIMEOUT = 15 * SLOW
RELOAD_TIMEOUT = 15 * SLOW

# every name the tests use resolves to 127.0.0.1 for curl (--resolve)
NAMES = ("a.example.test", "b.example.test", "x.wild.example.test", "m.wild.example.test",
         "exact.wild.example.test", "y.x.wild.example.test", "rsa.example.test",
         "p.example.test", "unknown.example.test", "shop.example.test")


# ---------------------------------------------------------------------------
# clients


class CurlResult:
    def __init__(self, rc, status, version, verify, body, log):
        self.rc = rc            # curl's exit code (0: a response was read)
        self.status = status    # HTTP status, 0 when there was none
        self.version = version  # "1.1", "2", or "0"
        self.verify = verify    # %{ssl_verify_result}
        self.body = body
        self.log = log          # curl -v output

    @property
    def tls_version(self):
        m = re.search(r"SSL connection using (TLSv[\d.]+) / (\S+)", self.log)
        return m.group(1) if m else None

    @property
    def cipher(self):
        m = re.search(r"SSL connection using (TLSv[\d.]+) / (\S+)", self.log)
        return m.group(2) if m else None

    def header(self, name):
        m = re.search(r"^< " + re.escape(name) + r":\s*(.*?)\r?$", self.log, re.M | re.I)
        return m.group(1) if m else None

    def __repr__(self):
        return (f"<curl rc={self.rc} status={self.status} http={self.version} "
                f"verify={self.verify} body={self.body[:300]!r}>\n{self.log[-3000:]}")


def curl(url, *args, port=None, timeout=CURL_TIMEOUT):
    """Runs curl -v on url; every name in NAMES resolves to 127.0.0.1
    (the port is taken from the URL unless given)."""
    require_tool("curl")
    if port is None:
        m = re.match(r"\w+://[^/:]+:(\d+)", url)
        port = int(m.group(1)) if m else 443
    cmd = ["curl", "-sS", "-v", "--max-time", str(int(timeout)), "-o", "-",
           "-w", "\n%{http_code} %{http_version} %{ssl_verify_result}"]
    for n in NAMES:
        cmd += ["--resolve", f"{n}:{port}:127.0.0.1"]
    cmd += [*args, url]
    out = subprocess.run(cmd, capture_output=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)
    body, _, tail = out.stdout.rpartition(b"\n")
    fields = tail.decode().split()
    status, version, verify = (int(fields[0]), fields[1], int(fields[2])) if len(fields) == 3 \
        else (0, "0", -1)
    return CurlResult(out.returncode, status, version, verify, body,
                      out.stderr.decode("latin-1"))


def https(port, name, path="/", *args, ca=None, host=None, insecure=False, timeout=CURL_TIMEOUT):
    """GET https://name:port/path with SNI `name`, trusting the test CA `ca`
    (a Cert) unless insecure; host sets a different Host header."""
    extra = []
    if insecure:
        extra.append("-k")
    elif ca is not None:
        extra += ["--cacert", ca.crt]
    if host:
        extra += ["-H", f"Host: {host}"]
    return curl(f"https://{name}:{port}{path}", *extra, *args, timeout=timeout)


def refused(r):
    """The request got no HTTP response at all (the TLS handshake failed)."""
    return r.rc != 0 and r.status == 0


# ---------------------------------------------------------------------------
# configuration


def indent(text, n):
    text = textwrap.dedent(text)
    return "".join(" " * n + line + "\n" for line in text.splitlines() if line.strip())


def router(name, rule, tls="{}", service="whoami@internal", extra=""):
    """One flow-style router line; tls=None for a plain (non-TLS) router."""
    parts = [f'rule: "{rule}"', f"service: {service}"]
    if tls is not None:
        parts.append(f"tls: {tls}")
    if extra:
        parts.append(extra)
    return f"{name}: {{{', '.join(parts)}}}\n"


def host(name):
    return f"Host(`{name}`)"


def certificates(*certs):
    return "".join(f"  - {{certFile: {c.crt}, keyFile: {c.key}}}\n" for c in certs)


def config(port, routers, certs=(), tls_extra="", ep_extra="", top="", services=""):
    """An entry point `web` on 127.0.0.1:port, the given certificates under
    tls.certificates, tls_extra (options:, stores:) under tls, routers
    (lines) under http.routers, services under http.services."""
    out = f'entryPoints:\n  web:\n    address: "127.0.0.1:{port}"\n' + indent(ep_extra, 4)
    out += textwrap.dedent(top)
    if certs or tls_extra:
        out += "tls:\n"
        if certs:
            out += "  certificates:\n" + indent(certificates(*certs), 2)
        out += indent(tls_extra, 2)
    out += "http:\n  routers:\n" + indent(routers, 4)
    if services:
        out += "  services:\n" + indent(services, 4)
    return out


def all_certs(pki):
    return (pki.a, pki.b, pki.wild, pki.exact_wild, pki.rsa)


def name_routers():
    return (router("a", host("a.example.test")) + router("b", host("b.example.test"))
            + router("w", f"{host('x.wild.example.test')} || {host('m.wild.example.test')}")
            + router("e", host("exact.wild.example.test")) + router("r", host("rsa.example.test")))


# ---------------------------------------------------------------------------
# certificates by SNI


def test_sni_selects_the_exact_name_then_the_wildcard(weir, pki):
    port = pick_free_port()
    weir(config(port, name_routers(), certs=all_certs(pki)))

    a = served_cert(port, "a.example.test")
    assert a.ok, a.log
    assert a.cn == "a.example.test" and a.sans == ["a.example.test"] and a.key_type == "ECDSA"
    assert "Weir Test Root CA" in a.issuer
    b = served_cert(port, "b.example.test")
    assert b.cn == "b.example.test" and b.key_type == "RSA", b
    r = served_cert(port, "rsa.example.test")
    assert r.cn == "rsa.example.test" and r.key_type == "RSA", r
    for name in ("x.wild.example.test", "m.wild.example.test"):
        w = served_cert(port, name)
        assert w.sans == ["*.wild.example.test"], (name, w)
    # an exact SAN wins over a wildcard that also covers the name
    e = served_cert(port, "exact.wild.example.test")
    assert e.sans == ["exact.wild.example.test"] and e.key_type == "RSA", e
    # a wildcard covers exactly one label: neither the bare domain nor two labels
    for name in ("y.x.wild.example.test", "wild.example.test"):
        d = served_cert(port, name)
        assert d.cn == "TRAEFIK DEFAULT CERT", (name, d)

    # gnutls-cli sees the same, and verifies the chain against the test CA
    rc, out = gnutls_cli(port, "b.example.test", "--print-cert", ca=pki.ca.crt)
    assert rc == 0, out
    assert "subject `CN=b.example.test'" in out and "RSA key 2048 bits" in out, out

    # curl verifies every name against the test CA (ssl_verify_result 0),
    # negotiates h2 by ALPN and the request reaches the router of the name
    for name in ("a.example.test", "b.example.test", "x.wild.example.test",
                 "exact.wild.example.test", "rsa.example.test"):
        res = https(port, name, "/who", "--http2", ca=pki.ca)
        assert (res.status, res.version, res.verify) == (200, "2", 0), res
        assert f"Host: {name}".encode() in res.body, res


def test_generated_default_certificate_when_nothing_matches(weir, pki):
    port = pick_free_port()
    w = weir(config(port, name_routers(), certs=(pki.a,)))
    first = served_cert(port, "unknown.example.test")
    assert first.ok, first.log
    assert first.cn == "TRAEFIK DEFAULT CERT", first
    assert first.issuer == first.subject  # self-signed
    assert first.sans and first.sans[0].endswith(".traefik.default"), first
    # the same certificate for every unmatched name, without SNI, and later on
    assert served_cert(port, None).pem == first.pem
    assert served_cert(port, "y.x.wild.example.test").pem == first.pem
    assert served_cert(port, "unknown.example.test").pem == first.pem
    # a name with a certificate still gets it
    assert served_cert(port, "a.example.test").cn == "a.example.test"

    # a verifying client refuses it (curl exit 60: peer certificate cannot
    # be authenticated); an insecure one is answered by the routers
    res = https(port, "unknown.example.test", ca=pki.ca)
    assert res.rc == 60 and res.status == 0, res
    res = https(port, "unknown.example.test", insecure=True)
    assert res.status == 404, res  # no router for that name
    res = https(port, "unknown.example.test", insecure=True, host="a.example.test")
    assert res.status == 200 and b"Host: a.example.test" in res.body, res
    assert w.running()


def test_generated_default_certificate_without_any_certificate(weir, pki):
    port = pick_free_port()
    weir(config(port, router("a", host("a.example.test"))))
    assert served_cert(port, "a.example.test").cn == "TRAEFIK DEFAULT CERT"
    res = https(port, "a.example.test", insecure=True)
    assert res.status == 200 and res.version == "2", res


def test_configured_default_certificate(weir, pki):
    port = pick_free_port()
    store = f"""\
        stores:
          default:
            defaultCertificate: {{certFile: {pki.b.crt}, keyFile: {pki.b.key}}}
        """
    weir(config(port, name_routers(), certs=(pki.a,), tls_extra=store))
    for name in ("unknown.example.test", None, "y.x.wild.example.test"):
        s = served_cert(port, name)
        assert s.cn == "b.example.test", (name, s)
    assert served_cert(port, "a.example.test").cn == "a.example.test"
    res = https(port, "b.example.test", ca=pki.ca)
    assert res.status == 200 and res.verify == 0, res


# ---------------------------------------------------------------------------
# plain and TLS on one port


def test_plain_and_tls_on_the_same_port(weir, pki):
    port = pick_free_port()
    routers = (router("secure", host("a.example.test"))
               + router("plain", host("p.example.test"), tls=None))
    weir(config(port, routers, certs=(pki.a,)))
    # plain HTTP/1.1: only the router without tls
    assert get(port, "/", host="a.example.test").status == 404
    r = get(port, "/plain", host="p.example.test")
    assert r.status == 200 and b"GET /plain HTTP/1.1" in r.body
    # TLS on the same port: only the router with tls, HTTP/1.1 and h2
    for proto, version in (("--http1.1", "1.1"), ("--http2", "2")):
        res = https(port, "a.example.test", "/secure", proto, ca=pki.ca)
        assert (res.status, res.version, res.verify) == (200, version, 0), res
        assert b"GET /secure HTTP/" in res.body
        res = https(port, "a.example.test", "/", proto, ca=pki.ca, host="p.example.test")
        assert res.status == 404, res
    # an unverified TLS client asking for the plain name by SNI: still 404
    res = https(port, "p.example.test", insecure=True)
    assert res.status == 404, res
    # and plain HTTP goes on working after the TLS connections
    assert get(port, "/", host="p.example.test").status == 200


def test_entrypoint_http_tls_makes_every_router_tls(weir, pki):
    port = pick_free_port()
    routers = router("r", host("a.example.test"), tls=None)
    weir(config(port, routers, certs=(pki.a,), ep_extra="http:\n  tls: {}\n"))
    assert get(port, "/", host="a.example.test").status == 404
    res = https(port, "a.example.test", ca=pki.ca)
    assert res.status == 200 and res.verify == 0, res


def test_entrypoint_http_tls_options_are_the_default_of_routers_without_tls(weir, pki):
    port = pick_free_port()
    routers = (router("inherits", host("a.example.test"), tls=None)
               + router("own", host("b.example.test"), tls="{}"))
    weir(config(port, routers, certs=(pki.a, pki.b),
                tls_extra="options:\n  modern: {minVersion: VersionTLS13}\n",
                ep_extra="http:\n  tls: {options: modern}\n"))
    # a.example.test's router has no tls section: the entry point's options
    assert refused(https(port, "a.example.test", "/", "--tls-max", "1.2", ca=pki.ca))
    res = https(port, "a.example.test", "/", "--tlsv1.3", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.3", res
    # b.example.test's router has its own tls section: the default options
    res = https(port, "b.example.test", "/", "--tls-max", "1.2", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.2", res


# ---------------------------------------------------------------------------
# TLS options


TLS11 = ("--tlsv1.0", "--tls-max", "1.1")
# OpenSSL 3 refuses TLS 1.0/1.1 itself at its default security level; level 0
# lets curl offer them, so that a refusal below comes from weir.
LEGACY = (*TLS11, "--ciphers", "DEFAULT@SECLEVEL=0")


def test_min_version_defaults_to_tls12(weir, pki):
    port = pick_free_port()
    routers = (router("a", host("a.example.test"))
               + router("old", host("b.example.test"), tls="{options: old}"))
    weir(config(port, routers, certs=(pki.a, pki.b),
                tls_extra="options:\n  old: {minVersion: VersionTLS10}\n"))
    # default options: TLS 1.1 is refused, whatever the client allows
    assert refused(https(port, "a.example.test", "/", *TLS11, ca=pki.ca))
    assert refused(https(port, "a.example.test", "/", *LEGACY, ca=pki.ca))
    # the same client gets TLS 1.1 where minVersion allows it
    res = https(port, "b.example.test", "/", *LEGACY, ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.1", res
    # TLS 1.2 and 1.3 with the default options
    res = https(port, "a.example.test", "/", "--tls-max", "1.2", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.2", res
    res = https(port, "a.example.test", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.3", res


def test_max_version_tls12(weir, pki):
    port = pick_free_port()
    weir(config(port, router("a", host("a.example.test")), certs=(pki.a,),
                tls_extra="options:\n  default: {maxVersion: VersionTLS12}\n"))
    res = https(port, "a.example.test", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.2", res
    assert refused(https(port, "a.example.test", "/", "--tlsv1.3", ca=pki.ca))
    rc, out = gnutls_cli(port, "a.example.test", ca=pki.ca.crt)
    assert rc == 0 and "- Description: (TLS1.2-" in out, out


def test_cipher_suites(weir, pki):
    port = pick_free_port()
    opts = """\
        options:
          default:
            maxVersion: VersionTLS12
            cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
        """
    weir(config(port, router("a", host("a.example.test")), certs=(pki.a,), tls_extra=opts))
    res = https(port, "a.example.test", ca=pki.ca)
    assert res.status == 200, res
    assert (res.tls_version, res.cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), res
    assert refused(https(port, "a.example.test", "/", "--ciphers",
                         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
                         ca=pki.ca))
    res = https(port, "a.example.test", "/", "--ciphers",
                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256", ca=pki.ca)
    assert res.status == 200 and res.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256", res


def test_curve_preferences(weir, pki):
    port = pick_free_port()
    weir(config(port, router("a", host("a.example.test")), certs=(pki.a,),
                tls_extra="options:\n  default: {curvePreferences: [CurveP384]}\n"))
    for curves in ("X25519", "P-256", "X25519:P-256"):
        assert refused(https(port, "a.example.test", "/", "--curves", curves, ca=pki.ca)), curves
    res = https(port, "a.example.test", "/", "--curves", "P-384", ca=pki.ca)
    assert res.status == 200, res
    # a client offering several groups ends up on the only one allowed
    s = served_cert(port, "a.example.test", extra=("-groups", "X25519:P-256:P-384"))
    assert s.ok and re.search(r"Server Temp Key: ECDH, (secp384r1|P-384)", s.log), s.log


def test_sni_strict_refuses_names_without_a_certificate(weir, pki):
    port = pick_free_port()
    weir(config(port, name_routers(), certs=(pki.a, pki.wild),
                tls_extra="options:\n  default: {sniStrict: true}\n"))
    for name in ("unknown.example.test", "y.x.wild.example.test", None):
        s = served_cert(port, name)
        assert not s.ok, (name, s)
    assert refused(https(port, "unknown.example.test", insecure=True))
    assert served_cert(port, "a.example.test").cn == "a.example.test"
    res = https(port, "x.wild.example.test", ca=pki.ca)
    assert res.status == 200, res


def test_alpn_protocols(weir, pki):
    port = pick_free_port()
    routers = (router("a", host("a.example.test"))
               + router("b", host("b.example.test"), tls="{options: h1only}"))
    weir(config(port, routers, certs=(pki.a, pki.b),
                tls_extra="options:\n  h1only: {alpnProtocols: [http/1.1]}\n"))
    res = https(port, "b.example.test", "/", "--http2", ca=pki.ca)
    assert res.status == 200 and res.version == "1.1", res
    assert "ALPN: server accepted http/1.1" in res.log, res
    assert b"GET / HTTP/1.1" in res.body
    # the default options offer h2
    res = https(port, "a.example.test", "/", "--http2", ca=pki.ca)
    assert res.status == 200 and res.version == "2", res
    assert b"GET / HTTP/2.0" in res.body


# (client certificate presented) -> expected outcome, for each clientAuthType
CLIENT_AUTH = {
    #                            none   CA-signed  unknown CA  self-signed
    "NoClientCert":               (True, True,      True,       True),
    "RequestClientCert":          (True, True,      True,       True),
    "RequireAnyClientCert":       (False, True,     True,       True),
    "VerifyClientCertIfGiven":    (True, True,      False,      False),
    "RequireAndVerifyClientCert": (False, True,     False,      False),
}


@pytest.mark.parametrize("auth_type", list(CLIENT_AUTH))
def test_client_auth(weir, pki, auth_type):
    port = pick_free_port()
    opts = f"""\
        options:
          mtls:
            clientAuth:
              caFiles: [{pki.ca.crt}]
              clientAuthType: {auth_type}
        """
    weir(config(port, router("a", host("a.example.test"), tls="{options: mtls}"),
                certs=(pki.a,), tls_extra=opts))
    presented = {
        "none": (),
        "CA-signed": ("--cert", pki.client.crt, "--key", pki.client.key),
        "unknown CA": ("--cert", pki.stranger.crt, "--key", pki.stranger.key),
        "self-signed": ("--cert", pki.selfsigned.crt, "--key", pki.selfsigned.key),
    }
    for (what, args), accepted in zip(presented.items(), CLIENT_AUTH[auth_type]):
        for proto in ("--http1.1", "--http2"):
            res = https(port, "a.example.test", "/", proto, *args, ca=pki.ca)
            if accepted:
                assert res.status == 200, (auth_type, what, proto, res)
            else:
                assert refused(res), (auth_type, what, proto, res)


def test_tls_options_are_chosen_by_sni(weir, pki):
    port = pick_free_port()
    opts = f"""\
        options:
          modern: {{minVersion: VersionTLS13}}
          mtls:
            clientAuth: {{caFiles: [{pki.ca.crt}], clientAuthType: RequireAndVerifyClientCert}}
        """
    routers = (router("a", host("a.example.test"))
               + router("b", host("b.example.test"), tls="{options: mtls}")
               # no Host in the rule: the options apply to the names in tls.domains
               + router("d", "PathPrefix(`/d`)",
                        tls="{options: modern, domains: [{main: m.wild.example.test}]}"))
    weir(config(port, routers, certs=(pki.a, pki.b, pki.wild), tls_extra=opts))
    # a.example.test: default options, no client certificate needed
    assert https(port, "a.example.test", ca=pki.ca).status == 200
    # b.example.test: its router's options want a client certificate
    assert refused(https(port, "b.example.test", ca=pki.ca))
    res = https(port, "b.example.test", "/", "--cert", pki.client.crt, "--key", pki.client.key,
                ca=pki.ca)
    assert res.status == 200, res
    # m.wild.example.test: named by tls.domains -> TLS 1.3 only
    assert refused(https(port, "m.wild.example.test", "/d", "--tls-max", "1.2", ca=pki.ca))
    res = https(port, "m.wild.example.test", "/d", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.3", res
    # x.wild.example.test, same certificate, no router names it: default options
    res = https(port, "x.wild.example.test", "/d", "--tls-max", "1.2", ca=pki.ca)
    assert res.status == 200 and res.tls_version == "TLSv1.2", res


def test_misdirected_request_when_the_host_uses_other_tls_options(weir, pki):
    port = pick_free_port()
    opts = f"""\
        options:
          strict:
            minVersion: VersionTLS12
            clientAuth: {{caFiles: [{pki.ca.crt}], clientAuthType: RequireAndVerifyClientCert}}
        """
    routers = (router("a", host("a.example.test"))
               + router("b", host("b.example.test"), tls="{options: strict}")
               + router("w", host("x.wild.example.test")))
    weir(config(port, routers, certs=(pki.a, pki.b, pki.wild), tls_extra=opts))
    for proto, version in (("--http1.1", "1.1"), ("--http2", "2")):
        # SNI a.example.test (options "default", no client certificate asked)
        # cannot reach b.example.test, whose router requires one
        res = https(port, "a.example.test", "/", proto, ca=pki.ca, host="b.example.test")
        assert res.status == 421 and res.version == version, res
        # the same options: served (connection coalescing)
        res = https(port, "a.example.test", "/", proto, ca=pki.ca, host="x.wild.example.test")
        assert res.status == 200, res
        assert b"Host: x.wild.example.test" in res.body, res
        # SNI b.example.test with a client certificate: b is served, a is not
        cert = ("--cert", pki.client.crt, "--key", pki.client.key)
        res = https(port, "b.example.test", "/", proto, *cert, ca=pki.ca)
        assert res.status == 200, res
        res = https(port, "b.example.test", "/", proto, *cert, ca=pki.ca, host="a.example.test")
        assert res.status == 421, res


# ---------------------------------------------------------------------------
# session resumption


def test_session_resumption(weir, pki, tmp_path):
    port = pick_free_port()
    weir(config(port, name_routers(), certs=all_certs(pki), top="core: {workers: 4}\n"))
    # several times: with 4 workers the resumed connection often lands on
    # another worker than the first one, which must accept the ticket too
    for _ in range(4):
        rc, out = gnutls_cli(port, "a.example.test", "--resume", ca=pki.ca.crt)
        assert rc == 0, out
        assert "This is a resumed session" in out, out
    # openssl: a saved session is reused, with TLS 1.3 and with TLS 1.2
    require_tool("openssl")
    for version in ("-tls1_3", "-tls1_2"):
        sess = str(tmp_path / f"session{version}.pem")
        base = ["openssl", "s_client", version, "-connect", f"127.0.0.1:{port}",
                "-servername", "b.example.test", "-CAfile", pki.ca.crt]
        # TLS 1.3 tickets come after the handshake: s_client must stay until
        # weir answers a request and closes, or it may exit before reading them
        request = b"GET / HTTP/1.0\r\nHost: b.example.test\r\n\r\n"
        first = subprocess.run(base + ["-ign_eof", "-sess_out", sess], input=request,
                               capture_output=True, timeout=20)
        assert b"New, TLSv1." in first.stdout, (first.stdout + first.stderr).decode("latin-1")
        assert os.path.getsize(sess) > 0, first.stderr.decode("latin-1")
        second = subprocess.run(base + ["-ign_eof", "-sess_in", sess], input=request,
                                capture_output=True, timeout=20)
        text = (second.stdout + second.stderr).decode("latin-1")
        assert "Reused, TLSv1." in text, text
        assert "Verify return code: 0 (ok)" in text, text


def test_disable_session_tickets(weir, pki):
    port = pick_free_port()
    weir(config(port, name_routers(), certs=all_certs(pki),
                tls_extra="options:\n  default: {disableSessionTickets: true}\n"))
    # TLS 1.3 resumes only with tickets
    rc, out = gnutls_cli(port, "a.example.test", "--resume",
                         "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3", ca=pki.ca.crt)
    assert rc == 0, out
    assert "Resume Handshake was completed" in out, out
    assert "This is a resumed session" not in out, out


# ---------------------------------------------------------------------------
# http -> https redirection


def redirect_config(web, secure, entry_point, pki):
    return textwrap.dedent(f"""\
        entryPoints:
          web:
            address: "127.0.0.1:{web}"
            http:
              redirections:
                entryPoint: {entry_point}
          websecure:
            address: "127.0.0.1:{secure}"
        tls:
          certificates:
            - {{certFile: {pki.a.crt}, keyFile: {pki.a.key}}}
        http:
          routers:
            app: {{rule: "PathPrefix(`/`)", service: whoami@internal, tls: {{}}}}
        """)


def test_redirection_to_the_https_entry_point(weir, pki):
    web, secure = pick_free_port(), pick_free_port()
    weir(redirect_config(web, secure, "{to: websecure, scheme: https}", pki))
    url = f"http://shop.example.test:{web}/a/b?c=d&e=%20f"
    want = f"https://shop.example.test:{secure}/a/b?c=d&e=%20f"
    for method, status in (("GET", 301), ("HEAD", 301), ("POST", 308), ("PUT", 308),
                           ("DELETE", 308)):
        args = ["-X", method] if method != "HEAD" else ["-I"]
        if method in ("POST", "PUT"):
            args += ["--data-binary", "x=1"]
        res = curl(url, *args)
        assert res.status == status, (method, res)
        assert res.header("Location") == want, (method, res)
    # the port of the client's Host is replaced by the target's
    res = curl(f"http://127.0.0.1:{web}/p", "-H", "Host: shop.example.test:8080")
    assert res.status == 301 and res.header("Location") == f"https://shop.example.test:{secure}/p"
    # a browser-like client follows it to the TLS router
    res = curl(f"http://a.example.test:{web}/follow?q=1", "-L", "--cacert", pki.ca.crt,
               "--resolve", f"a.example.test:{secure}:127.0.0.1")
    assert res.status == 200 and res.verify == 0, res
    assert b"GET /follow?q=1 HTTP/" in res.body, res
    # TLS on the redirecting entry point is not redirected: the TLS router serves it
    res = https(web, "a.example.test", "/tls", ca=pki.ca)
    assert res.status == 200 and res.header("Location") is None, res


def test_redirection_not_permanent(weir, pki):
    web, secure = pick_free_port(), pick_free_port()
    weir(redirect_config(web, secure, "{to: websecure, scheme: https, permanent: false}", pki))
    for method, status in (("GET", 302), ("HEAD", 302), ("POST", 307), ("PATCH", 307)):
        args = ["-X", method] if method != "HEAD" else ["-I"]
        res = curl(f"http://shop.example.test:{web}/x?y=z", *args)
        assert res.status == status, (method, res)
        assert res.header("Location") == f"https://shop.example.test:{secure}/x?y=z", res


def test_redirection_to_port_443_leaves_the_port_out(weir, pki):
    web, secure = pick_free_port(), pick_free_port()
    weir(redirect_config(web, secure, '{to: ":443", scheme: https}', pki))
    res = curl(f"http://shop.example.test:{web}/x?y=z")
    assert res.status == 301, res
    assert res.header("Location") == "https://shop.example.test/x?y=z", res


# ---------------------------------------------------------------------------
# reloads and --check


def test_forwarded_headers_say_https(weir, origin, pki):
    port = pick_free_port()
    o = origin()
    weir(config(port, router("a", host("a.example.test"), service="app"), certs=(pki.a,),
                services=f'app: {{loadBalancer: {{servers: [{{url: "{o.url}"}}]}}}}\n'))
    res = https(port, "a.example.test", "/fwd", "--http2", ca=pki.ca)
    assert res.status == 200, res
    req = o.last_request()
    assert req.target == "/fwd"
    assert req.header("X-Forwarded-Proto") == "https"
    assert req.header("X-Forwarded-Port") == str(port)
    assert req.header("Host") == f"a.example.test:{port}"


def write_atomically(path, text):
    """Writes path by renaming a hidden file (hidden files are not read by
    the file provider), so weir never reads half a file."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def test_certificates_reload_with_the_dynamic_configuration(weir, pki, tmp_path):
    port = pick_free_port()
    dyn = tmp_path / "dynamic"
    dyn.mkdir()
    certdir = tmp_path / "certs"
    certdir.mkdir()

    def put(name, cert):
        for src, ext in ((cert.crt, "crt"), (cert.key, "key")):
            with open(src) as f:
                (certdir / f"{name}.{ext}").write_text(f.read())

    def dynamic(*names):
        return ("tls:\n  certificates:\n" + "".join(
            f"    - {{certFile: {certdir}/{n}.crt, keyFile: {certdir}/{n}.key}}\n" for n in names)
            + "http:\n  routers:\n" + indent(name_routers(), 4))

    put("first", pki.a)
    write_atomically(str(dyn / "tls.yml"), dynamic("first"))
    w = weir(textwrap.dedent(f"""\
        entryPoints:
          web: {{address: "127.0.0.1:{port}"}}
        providers:
          providersThrottleDuration: 100ms
          file: {{directory: {dyn}, watch: true}}
        """))
    before = served_cert(port, "a.example.test")
    assert before.subject == "CN = a.example.test", before
    assert served_cert(port, "b.example.test").cn == "TRAEFIK DEFAULT CERT"

    # new files, and the configuration pointing at them
    put("second", pki.a2)
    put("bee", pki.b)
    write_atomically(str(dyn / "tls.yml"), dynamic("second", "bee"))
    assert poll(lambda: served_cert(port, "a.example.test").subject
                == "O = Reloaded, CN = a.example.test", RELOAD_TIMEOUT), w.logs_tail()
    assert served_cert(port, "b.example.test").cn == "b.example.test"
    res = https(port, "b.example.test", ca=pki.ca)
    assert res.status == 200 and res.verify == 0, res

    # a broken certificate file: weir says which, the previous ones keep serving
    (certdir / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    write_atomically(str(dyn / "tls.yml"), dynamic("second", "bee").replace(
        f"{certdir}/bee.crt", f"{certdir}/broken.crt"))
    assert poll(lambda: f"{certdir}/broken.crt" in w.output(), RELOAD_TIMEOUT), w.logs_tail()
    assert re.search(r"tls\.yml:\d+:\d+: .*broken\.crt", w.output()), w.logs_tail()
    time.sleep(0.5 * SLOW)
    assert served_cert(port, "a.example.test").subject == "O = Reloaded, CN = a.example.test"
    assert served_cert(port, "b.example.test").cn == "b.example.test"
    res = https(port, "b.example.test", ca=pki.ca)
    assert res.status == 200, res

    # a missing key file is refused the same way
    write_atomically(str(dyn / "tls.yml"), dynamic("second").replace(
        f"{certdir}/second.key", f"{certdir}/gone.key"))
    assert poll(lambda: f"{certdir}/gone.key" in w.output(), RELOAD_TIMEOUT), w.logs_tail()
    time.sleep(0.5 * SLOW)
    assert served_cert(port, "b.example.test").cn == "b.example.test"
    assert w.running()


def run_check(path):
    return subprocess.run([WEIR_BIN, "--check", "-c", str(path)], capture_output=True,
                          timeout=20 * SLOW, stdin=subprocess.DEVNULL)


def test_check_reports_missing_certificate_files(tmp_path, pki):
    port = pick_free_port()
    good = tmp_path / "good.yml"
    good.write_text(config(port, name_routers(), certs=all_certs(pki)))
    out = run_check(good)
    assert out.returncode == 0, out

    cases = {
        "certFile": (tmp_path / "missing-cert.yml", f"{tmp_path}/nowhere/site.crt",
                     f"  certificates:\n    - {{certFile: {tmp_path}/nowhere/site.crt, "
                     f"keyFile: {pki.a.key}}}\n"),
        "keyFile": (tmp_path / "missing-key.yml", f"{tmp_path}/nowhere/site.key",
                    f"  certificates:\n    - {{certFile: {pki.a.crt}, "
                    f"keyFile: {tmp_path}/nowhere/site.key}}\n"),
        "defaultCertificate": (tmp_path / "missing-default.yml", f"{tmp_path}/nowhere/def.crt",
                               f"  stores:\n    default:\n      defaultCertificate: "
                               f"{{certFile: {tmp_path}/nowhere/def.crt, keyFile: {pki.a.key}}}\n"),
        "caFiles": (tmp_path / "missing-ca.yml", f"{tmp_path}/nowhere/ca.crt",
                    f"  options:\n    mtls:\n      clientAuth: {{caFiles: [{tmp_path}/nowhere/ca.crt], "
                    f"clientAuthType: RequireAndVerifyClientCert}}\n"),
    }
    for what, (path, missing, tls) in cases.items():
        path.write_text(f'entryPoints:\n  web:\n    address: "127.0.0.1:{port}"\n'
                        f"tls:\n{tls}"
                        "http:\n  routers:\n"
                        '    r: {rule: "Host(`a.example.test`)", service: whoami@internal, '
                        "tls: {}}\n")
        out = run_check(path)
        err = (out.stdout + out.stderr).decode()
        assert out.returncode != 0, (what, err)
        assert missing in err, (what, err)
        assert re.search(re.escape(path.name) + r":\d+:\d+: .*" + re.escape(missing), err), \
            (what, err)
