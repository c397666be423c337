"""basic-auth (plugins/basic-auth): `Authorization: Basic base64(user:password)`
checked against the consumers' basic-auth credentials.

Passwords are compared as SHA-256 digests with CRYPTO_memcmp, and an unknown
user costs the same comparison as a wrong password; neither property can be
observed reliably from a black-box spec (no timing is a pass/fail condition
here), so neither is tested."""

import base64
import hashlib
import os
import subprocess
import textwrap

import pytest

import expect
from configs import proxy
from scale import scaled

SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def basic(user, password):
    return ("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode())


CONSUMERS = [
    {"name": "alice", "tenant": "acme", "groups": ["admin", "beta"],
     "credentials": {"basic-auth": [{"username": "alice", "password": "s3cret"},
                                    {"username": "al", "password_sha256": sha256("hashed-pw")}]}},
    {"name": "bob", "credentials": {"basic-auth": [{"username": "bob", "password": "pa:ss"}]}},
    {"name": "zoe", "credentials": {"basic-auth": [{"username": "zoë", "password": "pässwörd"}]}},
    {"name": "guest", "groups": ["public"]},
]

CHALLENGE = 'Basic realm="sluice", charset="UTF-8"'
MISSING = "no Basic credentials in the request"
INVALID = "invalid username or password"
MALFORMED = "malformed Basic credentials"


def cfg(upstream, conf=None, after=(), consumers=CONSUMERS):
    c = proxy(upstream, route={"plugins": [{"basic-auth": conf or {}}] + list(after)})
    c["consumers"] = consumers
    if after:
        c["plugin_dirs"] = [SPEC_PLUGINS]
    return c


def refused(resp, code, message, challenge=CHALLENGE):
    err = expect.gateway_error(resp, 401, code, "authentication_error")
    assert err["message"] == message
    assert resp.headers_named("WWW-Authenticate") == [challenge]


def seen(resp, name):
    return expect.values(expect.echo(resp), name)


# ---- accepted ---------------------------------------------------------------------

@pytest.mark.valgrind
def test_plain_password_names_the_consumer_and_is_hidden(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [basic("alice", "s3cret")]))
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]
    assert expect.values(echo, "X-Consumer-Tenant") == ["acme"]
    assert expect.values(echo, "Authorization") == []
    assert expect.values(echo, "X-Anonymous-Consumer") == []


def test_hashed_password(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo", [basic("al", "hashed-pw")]), "X-Consumer-Name") == ["alice"]


def test_password_may_contain_colons(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [basic("bob", "pa:ss")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert expect.values(echo, "X-Consumer-Tenant") == []


def test_utf8_username_and_password(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo", [basic("zoë", "pässwörd")]), "X-Consumer-Name") == ["zoe"]


@pytest.mark.parametrize("value", [
    "basic " + base64.b64encode(b"alice:s3cret").decode(),
    "BASIC " + base64.b64encode(b"alice:s3cret").decode(),
    "Basic    " + base64.b64encode(b"alice:s3cret").decode(),
])
def test_scheme_is_case_insensitive_and_spaces_are_skipped(gateway_factory, upstream, value):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo", [("Authorization", value)]), "X-Consumer-Name") == ["alice"]


# ---- refused ----------------------------------------------------------------------

def test_missing_credentials_is_401_with_a_challenge(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo"), "missing_credentials", MISSING)
    assert upstream.requests == []


def test_another_scheme_counts_as_missing(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo", [("Authorization", "Bearer abc.def.ghi")]), "missing_credentials", MISSING)


@pytest.mark.parametrize("user,password", [
    ("alice", "wrong"), ("alice", "S3CRET"), ("alice", ""), ("nobody", "s3cret"), ("", "s3cret"),
    ("al", sha256("hashed-pw")), ("alice", "hashed-pw"), ("Alice", "s3cret"),
])
def test_wrong_user_or_password_is_401_invalid(gateway_factory, upstream, user, password):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo", [basic(user, password)]), "invalid_credentials", INVALID)
    assert upstream.requests == []


@pytest.mark.parametrize("value", [
    "Basic",                                               # no token
    "Basic !!!!",                                          # not base64
    "Basic YWxpY2U6czNjcmV0=",                             # 'alice:s3cret' with a stray '='
    "Basic YWw6cHc",                                       # 'al:pw' without its padding
    "Basic YW=w6cHc=",                                     # padding in the middle
    "Basic " + base64.b64encode(b"alice").decode(),        # no colon
    "Basic " + base64.urlsafe_b64encode(b"alice:s3cret??>").decode(),   # base64url alphabet
])
def test_malformed_basic_credentials_are_401_invalid(gateway_factory, upstream, value):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo", [("Authorization", value)]), "invalid_credentials", MALFORMED)
    assert upstream.requests == []


# ---- options ----------------------------------------------------------------------

def test_realm_option_is_in_the_challenge(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"realm": "Staff only"}))
    challenge = 'Basic realm="Staff only", charset="UTF-8"'
    refused(gw.get("/echo"), "missing_credentials", MISSING, challenge)
    refused(gw.get("/echo", [basic("alice", "x")]), "invalid_credentials", INVALID, challenge)
    refused(gw.get("/echo", [("Authorization", "Basic !")]), "invalid_credentials", MALFORMED, challenge)


def test_hide_credentials_false_forwards_authorization(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"hide_credentials": False}))
    header = basic("alice", "s3cret")
    echo = expect.echo(gw.get("/echo", [header]))
    assert expect.values(echo, "Authorization") == [header[1]]
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]


@pytest.mark.valgrind
def test_anonymous_is_used_without_basic_credentials(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    echo = expect.echo(gw.get("/echo"))
    assert expect.values(echo, "X-Consumer-Name") == ["guest"]
    assert expect.values(echo, "X-Anonymous-Consumer") == ["true"]
    echo = expect.echo(gw.get("/echo", [basic("alice", "s3cret")]))
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]
    assert expect.values(echo, "X-Anonymous-Consumer") == []


def test_anonymous_keeps_another_schemes_authorization(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    echo = expect.echo(gw.get("/echo", [("Authorization", "Bearer abc.def.ghi")]))
    assert expect.values(echo, "X-Consumer-Name") == ["guest"]
    assert expect.values(echo, "Authorization") == ["Bearer abc.def.ghi"]


def test_anonymous_does_not_cover_wrong_or_malformed_credentials(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    refused(gw.get("/echo", [basic("alice", "wrong")]), "invalid_credentials", INVALID)
    refused(gw.get("/echo", [("Authorization", "Basic !!!!")]), "invalid_credentials", MALFORMED)
    assert upstream.requests == []


# ---- identity ---------------------------------------------------------------------

def test_client_cannot_spoof_consumer_headers(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [
        basic("bob", "pa:ss"), ("X-Consumer-Name", "alice"), ("X-CONSUMER-TENANT", "acme"),
        ("X-Consumer-Groups", "admin"), ("X-Anonymous-Consumer", "true")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    for name in ("X-Consumer-Tenant", "X-Consumer-Groups", "X-Anonymous-Consumer"):
        assert expect.values(echo, name) == [], name


@pytest.mark.parametrize("conf,headers,ctx_key,value", [
    ({}, [basic("alice", "s3cret")], "consumer", "alice"),
    ({}, [basic("alice", "s3cret")], "consumer.tenant", "acme"),
    ({}, [basic("alice", "s3cret")], "consumer.groups", "admin,beta"),
    ({}, [basic("alice", "s3cret")], "credential", "basic-auth:alice"),
    ({}, [basic("al", "hashed-pw")], "credential", "basic-auth:al"),
    ({}, [basic("bob", "pa:ss")], "consumer.groups", "(none)"),
    ({"anonymous": "guest"}, [], "consumer", "guest"),
    ({"anonymous": "guest"}, [], "consumer.groups", "public"),
    ({"anonymous": "guest"}, [], "credential", "(none)"),
])
def test_context_for_later_plugins(gateway_factory, upstream, conf, headers, ctx_key, value):
    # probe-a copies one context value into X-Ctx ("(none)" when unset)
    gw = gateway_factory(cfg(upstream, conf, after=[{"probe-a": {"tag": "p", "read_ctx": ctx_key}}]))
    assert seen(gw.get("/echo", headers), "X-Ctx") == [value]


# ---- config errors ----------------------------------------------------------------

def check(sluice_bin, tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


def conf_text(consumers, plugin_conf="{}"):
    return ("listen: 127.0.0.1:1\n"
            "consumers:\n" + textwrap.indent(consumers, "  ") +
            "routes:\n"
            "  - name: r\n"
            "    upstream: http://127.0.0.1:9\n"
            "    plugins:\n"
            "      - basic-auth: " + plugin_conf + "\n")


OK_CONSUMERS = "- name: alice\n  credentials:\n    basic-auth: [{username: alice, password: pw}]\n"


def cred(body):
    return "- name: alice\n  credentials: {basic-auth: [%s]}\n" % body


def test_valid_config_passes_check(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, conf_text(OK_CONSUMERS, '{realm: "My API", anonymous: alice}'))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")


@pytest.mark.parametrize("consumers,plugin_conf,message", [
    (OK_CONSUMERS, "{anonymous: nobody}", 'anonymous: no consumer is named "nobody"'),
    (OK_CONSUMERS + "- name: bob\n  credentials: {basic-auth: [{username: alice, password: other}]}\n",
     "{}", 'consumers[1].credentials.basic-auth[0].username: "alice" is already a credential of consumer "alice"'),
    (cred("{username: \"a:b\", password: pw}"), "{}",
     'consumers[0].credentials.basic-auth[0].username: expected a non-empty string without ":"'),
    (cred("{username: \"\", password: pw}"), "{}",
     'consumers[0].credentials.basic-auth[0].username: expected a non-empty string without ":"'),
    (cred("{password: pw}"), "{}",
     'consumers[0].credentials.basic-auth[0].username: expected a non-empty string without ":"'),
    (cred("{username: a}"), "{}",
     'consumers[0].credentials.basic-auth[0]: expected exactly one of "password" or "password_sha256"'),
    (cred("{username: a, password: pw, password_sha256: \"%s\"}" % sha256("pw")), "{}",
     'consumers[0].credentials.basic-auth[0]: expected exactly one of "password" or "password_sha256"'),
    (cred("{username: a, password: \"\"}"), "{}",
     "consumers[0].credentials.basic-auth[0].password: expected a non-empty string"),
    (cred("{username: a, password: 1234}"), "{}",
     "consumers[0].credentials.basic-auth[0].password: expected a non-empty string"),
    (cred("{username: a, password_sha256: \"%s\"}" % sha256("pw")[:63]), "{}",
     "consumers[0].credentials.basic-auth[0].password_sha256: expected 64 hex digits (the SHA-256 of the password)"),
    (cred("{username: a, password: pw, role: admin}"), "{}",
     'consumers[0].credentials.basic-auth[0]: only "username" and "password" or "password_sha256" may be set'),
    ("- name: alice\n  credentials: {basic-auth: {username: a, password: pw}}\n", "{}",
     "consumers[0].credentials.basic-auth: expected a list"),
])
def test_bad_credentials_are_refused(sluice_bin, tmp_path, consumers, plugin_conf, message):
    text = conf_text(consumers, plugin_conf)
    proc, path = check(sluice_bin, tmp_path, text)
    line = text.splitlines().index("      - basic-auth: " + plugin_conf) + 1
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:%d: routes[0].plugins[0] (basic-auth): %s" % (path, line, message)]


@pytest.mark.parametrize("plugin_conf,field_message", [
    ('{realm: ""}', ".realm: must be at least 1 character"),
    ("{realm: 'say \"hi\"'}", '.realm: must match ^[^"\\[:cntrl:]]*$'),
    ('{realm: "back\\\\slash"}', '.realm: must match ^[^"\\[:cntrl:]]*$'),
    ('{realm: 5}', ".realm: expected string, got integer"),
    ('{hide_credentials: 1}', ".hide_credentials: expected boolean, got integer"),
    ('{anonymous: ""}', ".anonymous: must be at least 1 character"),
    ('{header: X-Auth}', ".header: unknown field"),
])
def test_schema_errors_name_the_field(sluice_bin, tmp_path, plugin_conf, field_message):
    text = conf_text(OK_CONSUMERS, plugin_conf)
    proc, path = check(sluice_bin, tmp_path, text)
    line = text.splitlines().index("      - basic-auth: " + plugin_conf) + 1
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:%d: routes[0].plugins[0] (basic-auth)%s" % (path, line, field_message)]
