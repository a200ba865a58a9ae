"""A throw-away PKI for the TLS and HTTP/2 tests, made with GnuTLS' certtool
when the session starts (nothing is checked in).

The session-scoped fixture ``pki`` (registered in conftest.py) returns a
``Pki`` whose attributes are ``Cert`` objects (.crt, .key, .cn, .names):

  ca            the test root CA (ECDSA P-256), trusted by the clients
  other_ca      an unknown root CA (ECDSA P-256), trusted by nobody
  a             a.example.test                 ECDSA P-256, signed by ca
  a2            a.example.test, O=Reloaded     ECDSA P-256 (a different serial: for reloads)
  b             b.example.test                 RSA 2048, signed by ca
  wild          *.wild.example.test            ECDSA P-256, signed by ca
  exact_wild    exact.wild.example.test        RSA 2048 (an exact name under the wildcard)
  rsa           rsa.example.test               RSA 2048, signed by ca
  client        a client certificate signed by ca
  stranger      a client certificate signed by other_ca
  selfsigned    a self-signed client certificate

Helpers read what a real client sees: ``served_cert`` (openssl s_client:
the certificate presented for a server name) and ``gnutls_cli`` (gnutls-cli
with any options, e.g. --print-cert or --resume). ``require_tool`` fails the
test (never skips it) when a command-line tool is missing.
"""

import os
import re
import shutil
import subprocess

import pytest

from helpers import SLOW

TOOL_TIMEOUT = 60
HANDSHAKE_TIMEOUT = 15 * SLOW

PACKAGES = {"certtool": "gnutls-bin", "gnutls-cli": "gnutls-bin", "nghttp": "nghttp2-client",
            "h2load": "nghttp2-client"}


def require_tool(name):
    """The path of a command-line tool; fails (never skips) the test without it."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"required tool {name!r} is not installed "
                    f"(Debian package {PACKAGES.get(name, name)})", pytrace=False)
    return path


def _run(args, **kw):
    out = subprocess.run(args, capture_output=True, timeout=TOOL_TIMEOUT, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({out.returncode}):\n"
                           f"{out.stdout.decode(errors='replace')}\n{out.stderr.decode(errors='replace')}")
    return out


class Cert:
    def __init__(self, name, crt, key, cn, names):
        self.name = name
        self.crt = crt
        self.key = key
        self.cn = cn
        self.names = list(names)

    def pem(self):
        with open(self.crt) as f:
            return f.read()

    def __repr__(self):
        return f"<Cert {self.name} cn={self.cn!r} {self.crt}>"


class Pki:
    def __init__(self, directory):
        require_tool("certtool")
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self._serial = 0x1000
        self.ca = self._make("ca", "Weir Test Root CA", ca=True)
        self.other_ca = self._make("other_ca", "Unknown Test CA", ca=True)
        self.a = self._make("a", "a.example.test", names=["a.example.test"], signer=self.ca)
        self.a2 = self._make("a2", "a.example.test", names=["a.example.test"], signer=self.ca,
                             org="Reloaded")
        self.b = self._make("b", "b.example.test", names=["b.example.test"], signer=self.ca,
                            rsa=True)
        self.wild = self._make("wild", "*.wild.example.test", names=["*.wild.example.test"],
                               signer=self.ca)
        self.exact_wild = self._make("exact_wild", "exact.wild.example.test",
                                     names=["exact.wild.example.test"], signer=self.ca, rsa=True)
        self.rsa = self._make("rsa", "rsa.example.test", names=["rsa.example.test"],
                              signer=self.ca, rsa=True)
        self.client = self._make("client", "client one", signer=self.ca, client=True)
        self.stranger = self._make("stranger", "stranger", signer=self.other_ca, client=True)
        self.selfsigned = self._make("selfsigned", "self signed client", client=True,
                                     self_signed_leaf=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _make(self, name, cn, names=(), signer=None, ca=False, client=False, rsa=False,
              org=None, self_signed_leaf=False):
        key = self.path(name + ".key")
        crt = self.path(name + ".crt")
        tmpl = self.path(name + ".tmpl")
        if rsa:
            _run(["certtool", "--generate-privkey", "--key-type=rsa", "--bits=2048",
                  "--no-text", "--outfile", key])
        else:
            _run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1",
                  "--no-text", "--outfile", key])
        self._serial += 1
        lines = [f'cn = "{cn}"', f"serial = {self._serial}", "expiration_days = 30"]
        if org:
            lines.append(f'organization = "{org}"')
        if ca:
            lines += ["ca", "cert_signing_key", "crl_signing_key"]
        else:
            lines += ["signing_key"]
            if rsa:
                lines.append("encryption_key")
            lines.append("tls_www_client" if client else "tls_www_server")
            lines += [f'dns_name = "{n}"' for n in names]
        with open(tmpl, "w") as f:
            f.write("\n".join(lines) + "\n")
        if signer is None:
            _run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                  "--no-text", "--outfile", crt])
        else:
            _run(["certtool", "--generate-certificate", "--load-privkey", key,
                  "--load-ca-certificate", signer.crt, "--load-ca-privkey", signer.key,
                  "--template", tmpl, "--no-text", "--outfile", crt])
        return Cert(name, crt, key, cn, names)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


# ---------------------------------------------------------------------------
# What a client sees


class Served:
    """The certificate a server presented (from openssl), or a failed handshake."""

    def __init__(self, ok, pem, text, log):
        self.ok = ok          # a certificate was received
        self.pem = pem
        self.text = text      # openssl x509 -text
        self.log = log        # s_client's output, for messages

    def _field(self, label):
        m = re.search(label + r"\s*[:=]\s*(.*)", self.text)
        return m.group(1).strip() if m else ""

    @property
    def subject(self):
        return self._field(r"Subject")

    @property
    def issuer(self):
        return self._field(r"Issuer")

    @property
    def sans(self):
        m = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)\n", self.text)
        if not m:
            return []
        return [s.strip()[4:] for s in m.group(1).split(",") if s.strip().startswith("DNS:")]

    @property
    def cn(self):
        m = re.search(r"CN\s*=\s*([^,/]+)", self.subject)
        return m.group(1).strip() if m else ""

    @property
    def key_type(self):
        m = re.search(r"Public Key Algorithm:\s*(\S+)", self.text)
        return {"id-ecPublicKey": "ECDSA", "rsaEncryption": "RSA"}.get(m.group(1), m.group(1)) \
            if m else ""

    def __repr__(self):
        return f"<Served ok={self.ok} subject={self.subject!r} sans={self.sans}>"


def served_cert(port, servername=None, extra=(), timeout=HANDSHAKE_TIMEOUT):
    """Connects with openssl s_client (SNI servername, or none) and returns
    the certificate the server presented as a Served."""
    require_tool("openssl")
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra]
    args += ["-servername", servername] if servername else ["-noservername"]
    hs = subprocess.run(args, input=b"", capture_output=True, timeout=timeout)
    log = (hs.stdout + hs.stderr).decode("latin-1")
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", log, re.S)
    if not m:
        return Served(False, "", "", log)
    x = subprocess.run(["openssl", "x509", "-noout", "-text", "-nameopt", "oneline"],
                       input=m.group(0).encode(), capture_output=True, timeout=timeout)
    text = x.stdout.decode("latin-1")
    return Served(True, m.group(0), text, log)


def gnutls_cli(port, servername, *args, ca=None, stdin=b"", timeout=HANDSHAKE_TIMEOUT):
    """Runs gnutls-cli against 127.0.0.1:port with SNI servername; returns
    (exit code, combined output)."""
    require_tool("gnutls-cli")
    cmd = ["gnutls-cli", "-p", str(port)]
    if servername:
        cmd += ["--sni-hostname", servername, "--verify-hostname", servername]
    if ca:
        cmd += ["--x509cafile", ca]
    else:
        cmd += ["--insecure"]
    cmd += [*args, "127.0.0.1"]
    out = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    return out.returncode, (out.stdout + out.stderr).decode("latin-1")
