"""Certificates made for the TLS tests with openssl: a test CA, server
certificates (ECDSA P-256 and RSA, exact and wildcard names), client
certificates signed by the CA and by an unknown CA."""

import os
import subprocess


def _run(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=60)


class Certs:
    def __init__(self, d):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.ca = self._self_signed("ca", "Weir Test CA")
        self.other_ca = self._self_signed("otherca", "Unknown CA")
        self.a = self.server("a", ["a.example.test"])
        self.b = self.server("b", ["b.example.test"])
        self.wild = self.server("wild", ["*.wild.example.test"])
        self.rsa = self.server("rsa", ["rsa.example.test"], rsa=True)
        self.client = self.signed("client", "client", self.ca, client=True)
        self.stranger = self.signed("stranger", "stranger", self.other_ca, client=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name, rsa=False):
        key = self.path(name + ".key")
        if rsa:
            _run("openssl", "genrsa", "-out", key, "2048")
        else:
            _run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", key)
        return key

    def _self_signed(self, name, cn):
        key = self._key(name)
        crt = self.path(name + ".crt")
        _run("openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30",
             "-subj", "/CN=" + cn)
        return (crt, key)

    def signed(self, name, cn, ca, sans=(), client=False, rsa=False):
        key = self._key(name, rsa)
        csr = self.path(name + ".csr")
        crt = self.path(name + ".crt")
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if sans:
                f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
            f.write("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth") + "\n")
        _run("openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        _run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
             "-CAcreateserial", "-out", crt, "-days", "30", "-extfile", ext)
        return (crt, key)

    def server(self, name, sans, rsa=False):
        return self.signed(name, sans[0], self.ca, sans=sans, rsa=rsa)


def served_subject(port, servername=None, extra=()):
    """The subject line of the certificate weir serves for a server name
    (None: no SNI), read with openssl s_client; '' when the handshake fails."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra]
    args += ["-servername", servername] if servername else ["-noservername"]
    hs = subprocess.run(args, input=b"", capture_output=True, timeout=20)
    pem = hs.stdout.decode("latin-1")
    if "BEGIN CERTIFICATE" not in pem:
        return ""
    x = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                       input=pem.encode(), capture_output=True, timeout=20)
    return x.stdout.decode()
