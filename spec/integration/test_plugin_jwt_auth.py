"""jwt-auth: bearer tokens (HS*, RS*, PS*, ES*) checked against consumer
credentials or a JWKS file, with exp/nbf/iss/aud/lifetime rules; every
option, the refusals and their WWW-Authenticate challenges, and config
errors. Tokens are minted by spec/helpers/jwt_tokens.py with keys the
openssl CLI generates for this module."""

import json
import os
import subprocess
import textwrap
import time

import pytest

import expect
from jwt_tokens import KeyPair, credential_id, sign_token, unsigned_token
from plugin_harness import plugin_gateway
from scale import scaled

SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")

HS_SECRET = "alice-secret-0123456789abcdef-xyz"          # 33 bytes
HS512_SECRET = "h" * 64


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwt-keys")
    return {
        "rsa": KeyPair.rsa(d, "bob-rsa"),
        "rsa_other": KeyPair.rsa(d, "mallory-rsa"),
        "p256": KeyPair.ec(d, "carol-p256", "P-256"),
        "p384": KeyPair.ec(d, "carol-p384", "P-384"),
        "p521": KeyPair.ec(d, "carol-p521", "P-521"),
        "idp_rsa": KeyPair.rsa(d, "idp-rsa"),
        "idp_ec": KeyPair.ec(d, "idp-ec", "P-256"),
        "idp_next": KeyPair.rsa(d, "idp-next"),
    }


def consumers(keys):
    return [
        {"name": "alice", "tenant": "acme", "groups": ["admin", "beta"],
         "credentials": {"jwt-auth": [{"key": "alice-iss", "algorithm": "HS256", "secret": HS_SECRET},
                                      {"key": "alice-hs512", "algorithm": "HS512", "secret": HS512_SECRET},
                                      {"key": "alice-hs384", "algorithm": "HS384", "secret": "s" * 48}]}},
        {"name": "bob",
         "credentials": {"jwt-auth": [{"key": "bob-iss", "algorithm": "RS256", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-rs384", "algorithm": "RS384", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-rs512", "algorithm": "RS512", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-ps256", "algorithm": "PS256", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-ps384", "algorithm": "PS384", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-ps512", "algorithm": "PS512", "public_key": str(keys["rsa"].public)},
                                      {"key": "bob-kid", "algorithm": "RS256", "public_key": str(keys["rsa"].public)}]}},
        {"name": "carol", "tenant": "initech",
         "credentials": {"jwt-auth": [{"key": "carol-iss", "algorithm": "ES256", "public_key": str(keys["p256"].public)},
                                      {"key": "carol-es384", "algorithm": "ES384", "public_key": str(keys["p384"].public)},
                                      {"key": "carol-es512", "algorithm": "ES512", "public_key": str(keys["p521"].public)}]}},
        # Keys come from the jwks_file of the instance that checks the token.
        {"name": "idp-users", "groups": ["sso"],
         "credentials": {"jwt-auth": [{"key": "https://idp.test", "algorithm": "RS256"},
                                      {"key": "https://idp-ec.test", "algorithm": "ES256"}]}},
        {"name": "guest"},
    ]


def gateway(tmp_path, keys, conf=None, *, after=(), **kw):
    return plugin_gateway(tmp_path, "jwt-auth", conf or {}, consumers=consumers(keys), after=after,
                          plugin_dirs=[SPEC_PLUGINS] if after else (), **kw)


def claims(iss, **extra):
    c = {"iss": iss, "exp": int(time.time()) + 3600}
    c.update(extra)
    return c


def bearer(token):
    return [("Authorization", "Bearer " + token)]


def hs_token(iss="alice-iss", secret=HS_SECRET, alg="HS256", header=None, **extra):
    return sign_token(dict({"alg": alg}, **(header or {})), claims(iss, **extra), secret)


def refused(resp, description):
    """A 401 invalid_token answer saying `description`."""
    err = expect.gateway_error(resp, 401, "invalid_token", "authentication_error")
    assert err["message"] == description
    assert resp.headers_named("WWW-Authenticate") == [
        'Bearer error="invalid_token", error_description="%s"' % description]


def missing(resp):
    err = expect.gateway_error(resp, 401, "missing_credentials", "authentication_error")
    assert err["message"] == "no token in the request"
    assert resp.headers_named("WWW-Authenticate") == ["Bearer"]


def consumer_seen(resp):
    """(X-Consumer-Name, X-Consumer-Tenant) values the upstream got."""
    echo = expect.echo(resp)
    return expect.values(echo, "X-Consumer-Name"), expect.values(echo, "X-Consumer-Tenant")


# ---- valid tokens ------------------------------------------------------------------

@pytest.mark.valgrind
def test_hs256_token_authenticates_the_consumer(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        r = gw.get("/echo", headers=bearer(hs_token()))
        assert consumer_seen(r) == (["alice"], ["acme"])
        # hide_credentials (default true): the token stays at the gateway
        assert expect.values(expect.echo(r), "Authorization") == []


def test_rs256_token(tmp_path, keys):
    token = sign_token({"alg": "RS256"}, claims("bob-iss"), keys["rsa"])
    with gateway(tmp_path, keys) as (gw, upstream):
        # bob has no tenant: no X-Consumer-Tenant
        assert consumer_seen(gw.get("/echo", headers=bearer(token))) == (["bob"], [])


def test_es256_token(tmp_path, keys):
    token = sign_token({"alg": "ES256"}, claims("carol-iss"), keys["p256"])
    with gateway(tmp_path, keys) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(token))) == (["carol"], ["initech"])


ALL_ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512"]
ALG_CASES = [("HS384", "alice-hs384", "s" * 48, "alice"), ("HS512", "alice-hs512", HS512_SECRET, "alice"),
             ("RS384", "bob-rs384", "rsa", "bob"), ("RS512", "bob-rs512", "rsa", "bob"),
             ("PS256", "bob-ps256", "rsa", "bob"), ("PS384", "bob-ps384", "rsa", "bob"),
             ("PS512", "bob-ps512", "rsa", "bob"), ("ES384", "carol-es384", "p384", "carol"),
             ("ES512", "carol-es512", "p521", "carol")]


@pytest.mark.valgrind
def test_every_algorithm_when_allowed(tmp_path, keys):
    with gateway(tmp_path, keys, {"algorithms": ALL_ALGS}) as (gw, upstream):
        for alg, iss, key, who in ALG_CASES:
            signer = keys[key] if key in keys else key
            token = sign_token({"alg": alg}, claims(iss), signer)
            r = gw.get("/echo", headers=bearer(token))
            assert consumer_seen(r)[0] == [who], (alg, r)


def test_algorithms_option_refuses_others(tmp_path, keys):
    with gateway(tmp_path, keys, {"algorithms": ["RS256"]}) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(hs_token())), "algorithm not allowed")
        token = sign_token({"alg": "RS256"}, claims("bob-iss"), keys["rsa"])
        assert consumer_seen(gw.get("/echo", headers=bearer(token)))[0] == ["bob"]
    # the default list is HS256, RS256, ES256
    with gateway(tmp_path, keys) as (gw, upstream):
        token = sign_token({"alg": "PS256"}, claims("bob-ps256"), keys["rsa"])
        refused(gw.get("/echo", headers=bearer(token)), "algorithm not allowed")


@pytest.mark.parametrize("key, expected", [
    ("consumer", "alice"),
    ("consumer.tenant", "acme"),
    ("consumer.groups", "admin,beta"),
    ("credential", credential_id("alice-iss")),
])
def test_context_for_later_plugins(tmp_path, keys, key, expected):
    probe = {"probe-a": {"tag": "p", "read_ctx": key}}
    with gateway(tmp_path, keys, after=[probe]) as (gw, upstream):
        echo = expect.echo(gw.get("/echo", headers=bearer(hs_token())))
        assert expect.values(echo, "X-Ctx") == [expected]


def test_neither_secret_nor_token_reaches_the_upstream(tmp_path, keys):
    token = hs_token()
    probe = {"probe-a": {"tag": "p", "read_ctx": "credential"}}
    with gateway(tmp_path, keys, after=[probe]) as (gw, upstream):
        echo = expect.echo(gw.get("/echo", headers=bearer(token)))
        assert expect.values(echo, "X-Ctx") == [credential_id("alice-iss")]
        assert HS_SECRET not in echo["raw_head"]
        assert token.split(".")[2] not in echo["raw_head"]


def test_kid_in_header_wins_over_key_claim(tmp_path, keys):
    # kid names bob's credential; iss names alice's. The kid is used first.
    token = sign_token({"alg": "RS256", "kid": "bob-kid"}, claims("alice-iss"), keys["rsa"])
    probe = {"probe-a": {"tag": "p", "read_ctx": "credential"}}
    with gateway(tmp_path, keys, after=[probe]) as (gw, upstream):
        echo = expect.echo(gw.get("/echo", headers=bearer(token)))
        assert expect.values(echo, "X-Consumer-Name") == ["bob"]
        assert expect.values(echo, "X-Ctx") == [credential_id("bob-kid")]
        # a kid no credential has falls back to the key claim
        token = hs_token(header={"kid": "no-such-kid"})
        assert consumer_seen(gw.get("/echo", headers=bearer(token)))[0] == ["alice"]


def test_key_claim_option(tmp_path, keys):
    token = sign_token({"alg": "HS256"}, {"sub": "alice-iss", "iss": "someone-else",
                                          "exp": int(time.time()) + 60}, HS_SECRET)
    with gateway(tmp_path, keys, {"key_claim": "sub"}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(token)))[0] == ["alice"]
        refused(gw.get("/echo", headers=bearer(hs_token())), "unknown key")   # iss alone no longer counts


# ---- refused tokens ----------------------------------------------------------------

@pytest.mark.valgrind
def test_wrong_signature(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(hs_token(secret="not-alice-secret-0123456789abcdef"))),
                "bad signature")
        forged = sign_token({"alg": "RS256"}, claims("bob-iss"), keys["rsa_other"])
        refused(gw.get("/echo", headers=bearer(forged)), "bad signature")
        es_forged = sign_token({"alg": "ES256"}, claims("carol-iss"), keys["idp_ec"])
        refused(gw.get("/echo", headers=bearer(es_forged)), "bad signature")
        # claims changed after signing
        head, _, sig = hs_token().split(".")
        tampered = sign_token({"alg": "HS256"}, claims("alice-iss", admin=True), HS_SECRET).split(".")[1]
        refused(gw.get("/echo", headers=bearer("%s.%s.%s" % (head, tampered, sig))), "bad signature")
        assert upstream.requests == []


def test_alg_none_is_always_refused(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        for alg in ("none", "None", "NONE"):
            token = unsigned_token({"alg": alg}, claims("alice-iss"))
            refused(gw.get("/echo", headers=bearer(token)), "algorithm not allowed")
        assert upstream.requests == []


@pytest.mark.valgrind
def test_hs256_signed_with_the_rsa_public_key_is_refused(tmp_path, keys):
    # The classic confusion attack: the RS256 credential's public key PEM,
    # which an attacker can know, used as an HMAC secret.
    token = sign_token({"alg": "HS256"}, claims("bob-iss"), keys["rsa"].public_pem())
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(token)), "algorithm does not match the key")
        assert upstream.requests == []


def test_token_alg_must_match_the_credential(tmp_path, keys):
    token = sign_token({"alg": "RS256"}, claims("carol-iss"), keys["rsa"])   # carol's is ES256
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(token)), "algorithm does not match the key")


def test_expired(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(hs_token(exp=int(time.time()) - 300))), "token expired")


def test_not_yet_valid(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(hs_token(nbf=int(time.time()) + 300))), "token not yet valid")
        # an nbf in the past is fine
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token(nbf=int(time.time()) - 300))))[0] == ["alice"]


def test_clock_skew(tmp_path, keys):
    slightly_expired = hs_token(exp=int(time.time()) - 10)
    slightly_early = hs_token(nbf=int(time.time()) + 10)
    with gateway(tmp_path, keys) as (gw, upstream):           # default 30s
        assert consumer_seen(gw.get("/echo", headers=bearer(slightly_expired)))[0] == ["alice"]
        assert consumer_seen(gw.get("/echo", headers=bearer(slightly_early)))[0] == ["alice"]
    with gateway(tmp_path, keys, {"clock_skew": "0s"}) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(slightly_expired)), "token expired")
        refused(gw.get("/echo", headers=bearer(slightly_early)), "token not yet valid")
    with gateway(tmp_path, keys, {"clock_skew": "10m"}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token(exp=int(time.time()) - 300))))[0] == ["alice"]


def test_claims_to_verify(tmp_path, keys):
    no_exp = sign_token({"alg": "HS256"}, {"iss": "alice-iss"}, HS_SECRET)
    expired = hs_token(exp=int(time.time()) - 300)
    early = hs_token(nbf=int(time.time()) + 300)
    bad_exp = hs_token(exp="tomorrow")
    with gateway(tmp_path, keys) as (gw, upstream):           # default [exp, nbf]
        refused(gw.get("/echo", headers=bearer(no_exp)), "missing exp claim")
        refused(gw.get("/echo", headers=bearer(bad_exp)), "invalid exp claim")
    with gateway(tmp_path, keys, {"claims_to_verify": ["nbf"]}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(no_exp)))[0] == ["alice"]
        assert consumer_seen(gw.get("/echo", headers=bearer(expired)))[0] == ["alice"]
        refused(gw.get("/echo", headers=bearer(early)), "token not yet valid")
    with gateway(tmp_path, keys, {"claims_to_verify": []}) as (gw, upstream):
        for token in (no_exp, expired, early, bad_exp):
            assert consumer_seen(gw.get("/echo", headers=bearer(token)))[0] == ["alice"]


def test_issuer(tmp_path, keys):
    conf = {"issuer": "https://auth.example", "key_claim": "sub"}
    good = hs_token(iss="https://auth.example", sub="alice-iss")
    with gateway(tmp_path, keys, conf) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(good)))[0] == ["alice"]
        refused(gw.get("/echo", headers=bearer(hs_token(iss="https://auth.example/", sub="alice-iss"))),
                "wrong issuer")
        no_iss = sign_token({"alg": "HS256"}, {"sub": "alice-iss", "exp": int(time.time()) + 60}, HS_SECRET)
        refused(gw.get("/echo", headers=bearer(no_iss)), "wrong issuer")


def test_audience(tmp_path, keys):
    with gateway(tmp_path, keys, {"audience": "orders-api"}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token(aud="orders-api"))))[0] == ["alice"]
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token(aud=["web", "orders-api"]))))[0] == ["alice"]
        refused(gw.get("/echo", headers=bearer(hs_token(aud="billing-api"))), "wrong audience")
        refused(gw.get("/echo", headers=bearer(hs_token(aud=["web", "orders"]))), "wrong audience")
        refused(gw.get("/echo", headers=bearer(hs_token())), "wrong audience")


def test_max_lifetime(tmp_path, keys):
    now = int(time.time())
    with gateway(tmp_path, keys, {"max_lifetime": "1h"}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token(iat=now, exp=now + 3600))))[0] == ["alice"]
        refused(gw.get("/echo", headers=bearer(hs_token(iat=now, exp=now + 3601))),
                "token lifetime exceeds max_lifetime")
        refused(gw.get("/echo", headers=bearer(hs_token())), "missing iat claim")


def test_unknown_key(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(hs_token(iss="nobody"))), "unknown key")
        no_iss = sign_token({"alg": "HS256"}, {"exp": int(time.time()) + 60}, HS_SECRET)
        refused(gw.get("/echo", headers=bearer(no_iss)), "unknown key")
        # a credential that relies on a jwks_file is unknown to an instance without one
        token = sign_token({"alg": "RS256", "kid": "idp-1"}, claims("https://idp.test"), keys["idp_rsa"])
        refused(gw.get("/echo", headers=bearer(token)), "unknown key")


@pytest.mark.parametrize("token, description", [
    ("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhbGljZS1pc3MifQ", "malformed token: not three dot-separated parts"),
    ("a.b.c.d", "malformed token: not three dot-separated parts"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhbGljZS1pc3MifQ==.c2ln", "malformed token: bad base64url"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJpc3Mi*iJhbGljZS1pc3MifQ.c2ln", "malformed token: bad base64url"),
    ("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "malformed token: bad JSON"),        # "not json"
    ("eyJhbGciOiJIUzI1NiIsfQ.e30.c2ln", "malformed token: bad JSON"),             # '{"alg":"HS256",}'
    ("WyJIUzI1NiJd.e30.c2ln", "malformed token: header is not a JSON object"),     # '["HS256"]'
    ("eyJhbGciOiJIUzI1NiJ9.MTIz.c2ln", "malformed token: payload is not a JSON object"),  # '123'
    ("eyJ0eXAiOiJKV1QifQ.e30.c2ln", "malformed token: no alg in header"),         # '{"typ":"JWT"}'
])
def test_malformed_tokens(tmp_path, keys, token, description):
    with gateway(tmp_path, keys) as (gw, upstream):
        refused(gw.get("/echo", headers=bearer(token)), description)
        assert upstream.requests == []


def test_missing_token(tmp_path, keys):
    with gateway(tmp_path, keys) as (gw, upstream):
        missing(gw.get("/echo"))
        missing(gw.get("/echo", headers=[("Authorization", "Basic YWxpY2U6czNjcmV0")]))
        missing(gw.get("/echo", headers=[("Authorization", "Bearer")]))
        missing(gw.get("/echo", headers=[("Authorization", hs_token())]))     # no scheme
        assert consumer_seen(gw.get("/echo", headers=[("Authorization", "bearer  " + hs_token())]))[0] == ["alice"]
        assert upstream.requests[0].path == "/echo"
        assert len(upstream.requests) == 1


# ---- JWKS ----------------------------------------------------------------------------

def write_jwks(path, jwks):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(jwks))
    os.replace(tmp, path)


def test_jwks_file_by_kid(tmp_path, keys):
    jwks = tmp_path / "idp.jwks"
    write_jwks(jwks, {"keys": [keys["idp_rsa"].jwk("idp-1", use="sig"), keys["idp_ec"].jwk("idp-ec-1"),
                               {"kty": "oct", "kid": "ignored", "k": "c2VjcmV0"}]})
    rsa_token = sign_token({"alg": "RS256", "kid": "idp-1"}, claims("https://idp.test"), keys["idp_rsa"])
    ec_token = sign_token({"alg": "ES256", "kid": "idp-ec-1"}, claims("https://idp-ec.test"), keys["idp_ec"])
    with gateway(tmp_path, keys, {"jwks_file": str(jwks)}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(rsa_token)))[0] == ["idp-users"]
        assert consumer_seen(gw.get("/echo", headers=bearer(ec_token)))[0] == ["idp-users"]
        # a kid the JWKS lacks
        unknown = sign_token({"alg": "RS256", "kid": "idp-9"}, claims("https://idp.test"), keys["idp_rsa"])
        refused(gw.get("/echo", headers=bearer(unknown)), "unknown key")
        # no kid at all: nothing to look up
        refused(gw.get("/echo", headers=bearer(sign_token({"alg": "RS256"}, claims("https://idp.test"),
                                                          keys["idp_rsa"]))), "unknown key")
        # the right kid, signed by someone else
        forged = sign_token({"alg": "RS256", "kid": "idp-1"}, claims("https://idp.test"), keys["rsa_other"])
        refused(gw.get("/echo", headers=bearer(forged)), "bad signature")
        # the EC key cannot serve the RS256 credential
        crossed = sign_token({"alg": "RS256", "kid": "idp-ec-1"}, claims("https://idp.test"), keys["idp_rsa"])
        refused(gw.get("/echo", headers=bearer(crossed)), "algorithm does not match the key")
        # credentials with their own key ignore the JWKS
        assert consumer_seen(gw.get("/echo", headers=bearer(hs_token())))[0] == ["alice"]
    assert "jwt-auth: %s: keys[2] skipped: kty is neither RSA nor EC" % jwks in gw.stderr()


@pytest.mark.valgrind
def test_jwks_file_is_reread_on_reload(tmp_path, keys):
    jwks = tmp_path / "idp.jwks"
    write_jwks(jwks, {"keys": [keys["idp_rsa"].jwk("idp-1")]})
    old = sign_token({"alg": "RS256", "kid": "idp-1"}, claims("https://idp.test"), keys["idp_rsa"])
    new = sign_token({"alg": "RS256", "kid": "idp-2"}, claims("https://idp.test"), keys["idp_next"])
    with gateway(tmp_path, keys, {"jwks_file": str(jwks)}) as (gw, upstream):
        assert consumer_seen(gw.get("/echo", headers=bearer(old)))[0] == ["idp-users"]
        refused(gw.get("/echo", headers=bearer(new)), "unknown key")
        write_jwks(jwks, {"keys": [keys["idp_next"].jwk("idp-2")]})
        assert gw.reload().ok
        assert consumer_seen(gw.get("/echo", headers=bearer(new)))[0] == ["idp-users"]
        refused(gw.get("/echo", headers=bearer(old)), "unknown key")
        # a broken file fails the reload and keeps the keys in use
        jwks.write_text("{not json")
        result = gw.reload()
        assert not result.ok
        assert "jwks_file: \"%s\": not JSON" % jwks in result.output
        assert consumer_seen(gw.get("/echo", headers=bearer(new)))[0] == ["idp-users"]


# ---- where the token comes from ----------------------------------------------------------

@pytest.mark.valgrind
def test_query_param(tmp_path, keys):
    token = hs_token()
    with gateway(tmp_path, keys, {"query_param": "jwt"}) as (gw, upstream):
        r = gw.get("/echo/q?a=1&jwt=%s&b=2" % token)
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.echo(r)["target"] == "/echo/q?a=1&b=2"
        r = gw.get("/echo/q?jwt=%s" % token)
        assert expect.echo(r)["target"] == "/echo/q"
        # the header still works and is looked at first
        r = gw.get("/echo/h?jwt=garbage", headers=bearer(token))
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.echo(r)["target"] == "/echo/h?jwt=garbage"
        refused(gw.get("/echo/q?jwt=garbage"), "malformed token: not three dot-separated parts")
        missing(gw.get("/echo/q?jwt="))
    with gateway(tmp_path, keys, {"query_param": "jwt", "hide_credentials": False}) as (gw, upstream):
        r = gw.get("/echo/q?a=1&jwt=%s" % token)
        assert expect.echo(r)["target"] == "/echo/q?a=1&jwt=%s" % token


@pytest.mark.valgrind
def test_cookie(tmp_path, keys):
    token = hs_token()
    with gateway(tmp_path, keys, {"cookie": "session", "header": ""}) as (gw, upstream):
        r = gw.get("/echo", headers=[("Cookie", "theme=dark; session=%s; lang=en" % token)])
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.values(expect.echo(r), "Cookie") == ["theme=dark; lang=en"]
        r = gw.get("/echo", headers=[("Cookie", "session=\"%s\"" % token)])
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.values(expect.echo(r), "Cookie") == []
        # header: "" turns the Authorization header off
        missing(gw.get("/echo", headers=bearer(token)))
        # several Cookie headers become one without the token's cookie
        r = gw.get("/echo", headers=[("Cookie", "a=1"), ("Cookie", "session=%s; b=2" % token), ("Cookie", "c=3")])
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.values(expect.echo(r), "Cookie") == ["a=1; b=2; c=3"]
        # the first session cookie counts
        refused(gw.get("/echo", headers=[("Cookie", "session=x.y; session=%s" % token)]),
                "malformed token: not three dot-separated parts")
    with gateway(tmp_path, keys, {"cookie": "session", "hide_credentials": False}) as (gw, upstream):
        r = gw.get("/echo", headers=[("Cookie", "session=%s; lang=en" % token)])
        assert expect.values(expect.echo(r), "Cookie") == ["session=%s; lang=en" % token]


def test_custom_header(tmp_path, keys):
    token = hs_token()
    with gateway(tmp_path, keys, {"header": "X-Token"}) as (gw, upstream):
        # outside Authorization the scheme is optional
        r = gw.get("/echo", headers=[("X-Token", token), ("X-Other", "kept")])
        assert consumer_seen(r)[0] == ["alice"]
        assert expect.values(expect.echo(r), "X-Token") == []
        assert expect.values(expect.echo(r), "X-Other") == ["kept"]
        assert consumer_seen(gw.get("/echo", headers=[("X-Token", "Bearer " + token)]))[0] == ["alice"]
        missing(gw.get("/echo", headers=bearer(token)))


def test_hide_credentials_false_forwards_the_token(tmp_path, keys):
    token = hs_token()
    with gateway(tmp_path, keys, {"hide_credentials": False}) as (gw, upstream):
        echo = expect.echo(gw.get("/echo", headers=bearer(token)))
        assert expect.values(echo, "Authorization") == ["Bearer " + token]


@pytest.mark.valgrind
def test_anonymous(tmp_path, keys):
    with gateway(tmp_path, keys, {"anonymous": "guest"}) as (gw, upstream):
        r = gw.get("/echo")
        assert consumer_seen(r) == (["guest"], [])
        assert expect.values(expect.echo(r), "X-Anonymous-Consumer") == ["true"]
        # a token that is sent must still be valid
        refused(gw.get("/echo", headers=bearer(hs_token(iss="nobody"))), "unknown key")
        r = gw.get("/echo", headers=bearer(hs_token()))
        assert consumer_seen(r) == (["alice"], ["acme"])
        assert expect.values(expect.echo(r), "X-Anonymous-Consumer") == []


def test_anonymous_has_no_credential_context(tmp_path, keys):
    probe = {"probe-a": {"tag": "p", "read_ctx": "credential"}}
    with gateway(tmp_path, keys, {"anonymous": "guest"}, after=[probe]) as (gw, upstream):
        echo = expect.echo(gw.get("/echo"))
        assert expect.values(echo, "X-Ctx") == ["(none)"]
        assert expect.values(echo, "X-Consumer-Name") == ["guest"]


def test_client_cannot_spoof_consumer_headers(tmp_path, keys):
    spoof = [("X-Consumer-Name", "admin"), ("x-consumer-tenant", "root"), ("X-Consumer-Groups", "admin"),
             ("X-Consumer-Id", "1"), ("X-Anonymous-Consumer", "false")]
    with gateway(tmp_path, keys, {"anonymous": "guest"}) as (gw, upstream):
        echo = expect.echo(gw.get("/echo", headers=spoof + [("X-Kept", "yes")]))
        assert [(n, v) for n, v in expect.forwarded(echo) if n.lower().startswith("x-")] == [
            ("X-Kept", "yes"), ("X-Consumer-Name", "guest"), ("X-Anonymous-Consumer", "true")]
        echo = expect.echo(gw.get("/echo", headers=spoof + bearer(hs_token())))
        assert [(n, v) for n, v in expect.forwarded(echo) if n.lower().startswith("x-")] == [
            ("X-Consumer-Name", "alice"), ("X-Consumer-Tenant", "acme")]


# ---- config errors -------------------------------------------------------------------

def check(sluice_bin, tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent(text))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


def config(plugin_conf, credential='{key: k1, algorithm: HS256, secret: "0123456789abcdef0123456789abcdef"}'):
    return """\
listen: 127.0.0.1:1
consumers:
  - name: alice
    credentials:
      jwt-auth: [%s]
routes:
  - name: r
    upstream: http://127.0.0.1:9
    plugins:
      - jwt-auth: %s
""" % (credential, plugin_conf)


WHERE = "%s:10: routes[0].plugins[0] (jwt-auth)"


def test_config_is_accepted(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, config("{}"))
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr


@pytest.mark.parametrize("credential, message", [
    ("{key: k1, algorithm: HS999, secret: x}",
     'consumers[0] (alice).credentials.jwt-auth[0].algorithm: unknown algorithm "HS999" (one of HS256, HS384, '
     'HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)'),
    ("{key: k1, algorithm: none}",
     'consumers[0] (alice).credentials.jwt-auth[0].algorithm: unknown algorithm "none" (one of HS256, HS384, '
     'HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)'),
    ("{key: k1, algorithm: HS256, secret: short}",
     "consumers[0] (alice).credentials.jwt-auth[0].secret: must be at least 32 bytes for HS256"),
    ("{key: k1, algorithm: HS256}",
     "consumers[0] (alice).credentials.jwt-auth[0].secret: missing (HS256 needs a shared secret)"),
    ('{key: k1, algorithm: RS256, secret: "0123456789abcdef0123456789abcdef"}',
     "consumers[0] (alice).credentials.jwt-auth[0].secret: not allowed with RS256 (it takes a public_key)"),
    ("{key: k1, algorithm: RS256, public_key: /nonexistent/pub.pem}",
     'consumers[0] (alice).credentials.jwt-auth[0].public_key: cannot read "/nonexistent/pub.pem": '
     "No such file or directory"),
    ("{key: k1, algorithm: RS256, pubkey: /x.pem}",
     "consumers[0] (alice).credentials.jwt-auth[0]: unknown field (allowed: key, algorithm, secret, public_key)"),
    ("{algorithm: RS256}", "consumers[0] (alice).credentials.jwt-auth[0].key: expected a non-empty string"),
])
def test_bad_credentials(sluice_bin, tmp_path, credential, message):
    proc, path = check(sluice_bin, tmp_path, config("{}", credential))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s: %s" % (WHERE % path, message)]


def test_public_key_of_the_wrong_kind(sluice_bin, tmp_path, keys):
    cred = "{key: k1, algorithm: ES256, public_key: %s}" % keys["rsa"].public
    proc, path = check(sluice_bin, tmp_path, config("{}", cred))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s: consumers[0] (alice).credentials.jwt-auth[0].public_key: "%s" is not a key for ES256'
        % (WHERE % path, keys["rsa"].public)]
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    proc, path = check(sluice_bin, tmp_path, config("{}", "{key: k1, algorithm: RS256, public_key: %s}" % not_pem))
    assert proc.stderr.splitlines() == [
        '%s: consumers[0] (alice).credentials.jwt-auth[0].public_key: "%s" holds no PEM public key or certificate'
        % (WHERE % path, not_pem)]


def test_duplicate_credential_keys(sluice_bin, tmp_path):
    text = config("{}").replace("routes:", """\
  - name: bob
    credentials:
      jwt-auth: [{key: k1, algorithm: ES256}]
routes:""")
    proc, path = check(sluice_bin, tmp_path, text)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s:13: routes[0].plugins[0] (jwt-auth): jwt-auth credential key "k1" is used twice (consumers alice and bob)'
        % path]


@pytest.mark.parametrize("plugin_conf, message", [
    ("{anonymous: nobody}", 'anonymous: no consumer named "nobody"'),
    ('{header: "", query_param: "", cookie: ""}',
     "header, query_param and cookie are all empty: the token could come from nowhere"),
    ("{jwks_file: /nonexistent/keys.jwks}",
     'jwks_file: cannot read "/nonexistent/keys.jwks": No such file or directory'),
])
def test_bad_options(sluice_bin, tmp_path, plugin_conf, message):
    proc, path = check(sluice_bin, tmp_path, config(plugin_conf))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s: %s" % (WHERE % path, message)]


@pytest.mark.parametrize("jwks, message", [
    ("{not json", "not JSON (line 1 column 4: string or '}' expected near 'not')"),
    ('{"keys": {}}', 'expected an object with a "keys" array'),
    ('{"keys": []}', "no usable signing key (RSA or EC P-256/P-384/P-521 with a kid)"),
    ('{"keys": [{"kty": "RSA", "kid": "a", "n": "AQAB+", "e": "AQAB"}]}', "keys[0].n: bad base64url"),
    ('{"keys": [{"kty": "EC", "kid": "a", "crv": "P-256", "x": "AQAB", "y": "AQAB"}]}',
     "keys[0]: x and y must be 32 bytes each for P-256"),
])
def test_bad_jwks_file(sluice_bin, tmp_path, jwks, message):
    path_jwks = tmp_path / "keys.jwks"
    path_jwks.write_text(jwks)
    proc, path = check(sluice_bin, tmp_path, config("{jwks_file: %s}" % path_jwks))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ['%s: jwks_file: "%s": %s' % (WHERE % path, path_jwks, message)]


@pytest.mark.parametrize("plugin_conf, field_message", [
    ("{algorithms: [none]}", "algorithms[0]: must be one of"),
    ("{algorithms: []}", "algorithms: must have at least 1 item"),
    ("{claims_to_verify: [iat]}", "claims_to_verify[0]: must be one of"),
    ("{clock_skew: soon}", 'clock_skew: invalid duration "soon"'),
    ("{clock_skew: 2h}", "clock_skew: must be <= 1h"),
    ("{max_lifetime: 0}", "max_lifetime: must be >= 1s"),
    ("{header: \"Bad Header\"}", "header: must match"),
    ("{hide_credentials: \"yes\"}", "hide_credentials: expected boolean, got string"),
    ("{secret: x}", "secret: unknown field"),
])
def test_schema_errors(sluice_bin, tmp_path, plugin_conf, field_message):
    proc, path = check(sluice_bin, tmp_path, config(plugin_conf))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("%s.%s" % (WHERE % path, field_message)), lines
