"""Mint JSON Web Tokens for the jwt-auth specs, standard library only.

HMAC tokens are signed with `hmac`; RSA and ECDSA ones by the `openssl`
command line with keys it generates at test time:

    keys = KeyPair.rsa(tmp_path / "keys", "alice")        # or KeyPair.ec(dir, name, "P-256")
    token = sign_token({"alg": "RS256"}, {"iss": "alice"}, keys)
    token = sign_token({"alg": "HS256"}, {"iss": "bob"}, b"a 32-byte secret ...")
    jwks = {"keys": [keys.jwk("kid-1")]}

ECDSA signatures come out of openssl as DER; JWS wants the fixed-width r||s
(RFC 7518 3.4), so they are converted here.
"""

import base64
import hashlib
import hmac
import json
import re
import subprocess
from pathlib import Path

HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# JWK curve name -> (openssl curve name, bytes per coordinate)
CURVES = {"P-256": ("prime256v1", 32), "P-384": ("secp384r1", 48), "P-521": ("secp521r1", 66)}
EC_ALGS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")))


def _openssl(*args, data=None):
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout


def _der_length(der, i):
    """(length, index after the length octets) of the DER item whose length starts at i."""
    first = der[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    return int.from_bytes(der[i + 1:i + 1 + n], "big"), i + 1 + n


def der_to_raw(der, size):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r||s, each `size` bytes."""
    if der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    _, i = _der_length(der, 1)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER INTEGER")
        n, i = _der_length(der, i + 1)
        value = int.from_bytes(der[i:i + n], "big")
        out += value.to_bytes(size, "big")
        i += n
    return out


class KeyPair:
    """A private key file and its public key PEM file, made by openssl."""

    def __init__(self, kind, private, public, curve=None):
        self.kind = kind            # "RSA" or "EC"
        self.private = Path(private)
        self.public = Path(public)
        self.curve = curve          # JWK crv for EC keys

    @classmethod
    def rsa(cls, directory, name, bits=2048):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        priv, pub = d / ("%s.key" % name), d / ("%s.pub.pem" % name)
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", str(priv))
        _openssl("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
        return cls("RSA", priv, pub)

    @classmethod
    def ec(cls, directory, name, curve="P-256"):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        priv, pub = d / ("%s.key" % name), d / ("%s.pub.pem" % name)
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:%s" % CURVES[curve][0],
                 "-out", str(priv))
        _openssl("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
        return cls("EC", priv, pub, curve)

    def public_pem(self):
        return self.public.read_bytes()

    def sign(self, alg, data):
        digest = "-sha" + alg[2:]
        if alg.startswith("PS"):
            return _openssl("dgst", digest, "-sign", str(self.private), "-sigopt", "rsa_padding_mode:pss",
                            "-sigopt", "rsa_pss_saltlen:digest", data=data)
        der = _openssl("dgst", digest, "-sign", str(self.private), data=data)
        if self.kind == "EC":
            return der_to_raw(der, CURVES[self.curve][1])
        return der

    def jwk(self, kid, **extra):
        """The public key as a JWK with this kid (plus extra members, e.g. alg)."""
        if self.kind == "RSA":
            text = _openssl("pkey", "-pubin", "-in", str(self.public), "-noout", "-text").decode()
            modulus = _openssl("rsa", "-pubin", "-in", str(self.public), "-noout", "-modulus").decode()
            n = int(modulus.strip().split("=", 1)[1], 16)
            e = int(re.search(r"Exponent: (\d+)", text).group(1))
            jwk = {"kty": "RSA", "kid": kid, "n": b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")),
                   "e": b64url(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
        else:
            # A SubjectPublicKeyInfo ends with the uncompressed point 04||x||y.
            der = _openssl("pkey", "-pubin", "-in", str(self.public), "-outform", "DER")
            size = CURVES[self.curve][1]
            point = der[-(1 + 2 * size):]
            assert point[0] == 0x04, point
            jwk = {"kty": "EC", "kid": kid, "crv": self.curve, "x": b64url(point[1:1 + size]),
                   "y": b64url(point[1 + size:])}
        jwk.update(extra)
        return jwk


def sign_token(header, claims, key):
    """A compact JWS. key: bytes/str (an HMAC secret) or a KeyPair; the
    algorithm is header["alg"]."""
    signing_input = ("%s.%s" % (b64url_json(header), b64url_json(claims))).encode()
    alg = header["alg"]
    if alg in HMAC_DIGESTS:
        secret = key.encode() if isinstance(key, str) else key
        sig = hmac.new(secret, signing_input, HMAC_DIGESTS[alg]).digest()
    else:
        sig = key.sign(alg, signing_input)
    return "%s.%s" % (signing_input.decode(), b64url(sig))


def unsigned_token(header, claims):
    """header.claims. with an empty signature (for alg "none")."""
    return "%s.%s." % (b64url_json(header), b64url_json(claims))


def credential_id(key):
    """What jwt-auth puts in the "credential" context for a credential key."""
    return "jwt-auth:" + hashlib.sha256(key.encode()).hexdigest()[:12]
