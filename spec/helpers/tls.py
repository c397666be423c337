"""Test certificates, made with the openssl CLI at test time.

Nothing is checked into the repo: certificates would expire, and a private key
in the tree invites copy-paste into real deployments.
"""

import os
import ssl
import subprocess
from pathlib import Path


class CertSet:
    """Paths of one CA and one server certificate it signed."""

    def __init__(self, directory, ca_cert, ca_key, cert, key, names):
        self.dir = directory
        self.ca_cert = ca_cert
        self.ca_key = ca_key
        self.cert = cert
        self.key = key
        self.names = names

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def client_context(self):
        """Trusts only this set's CA, checks host names."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(self.ca_cert))
        return ctx


def _openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), proc.stderr))


def make_certs(directory, name="upstream.test", local=True, ca_name="sluice test CA"):
    """A fresh CA and a server certificate for `name`; with local=True the
    certificate also covers 127.0.0.1 and localhost. EC keys keep this fast."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sans = ["DNS:%s" % name]
    if local:
        sans += ["DNS:localhost", "IP:127.0.0.1"]
    srv_ext = d / "server_ext.cnf"
    srv_ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=%s\n" % ",".join(sans))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=%s" % ca_name, "-config", os.devnull,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=%s" % name,
             "-config", os.devnull, cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", str(srv_ext), cwd=d)
    return CertSet(d, d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key", sans)
