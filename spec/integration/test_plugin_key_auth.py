"""key-auth (plugins/key-auth): API keys from a header or a query parameter,
checked against the consumers' key-auth credentials.

The plugin compares SHA-256 digests of keys with CRYPTO_memcmp; that the
comparison takes constant time cannot be observed reliably from a black-box
spec (no timing is a pass/fail condition here), so it is not tested."""

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


CONSUMERS = [
    {"name": "alice", "tenant": "acme", "groups": ["admin", "beta"],
     "credentials": {"key-auth": [{"key": "alice-key-1"}, {"key_sha256": sha256("alice-key-2")}]}},
    {"name": "bob", "credentials": {"key-auth": [{"key": "bob-key"}]}},
    {"name": "carol", "credentials": {"key-auth": [{"key": "c&d=e f"}]}},
    {"name": "guest", "groups": ["public"]},
]

MISSING = "no API key in the request"
INVALID = "invalid API key"


def cfg(upstream, conf=None, after=(), consumers=CONSUMERS):
    c = proxy(upstream, route={"plugins": [{"key-auth": conf or {}}] + list(after)})
    c["consumers"] = consumers
    if after:
        c["plugin_dirs"] = [SPEC_PLUGINS]
    return c


def refused(resp, code, message):
    err = expect.gateway_error(resp, 401, code, "authentication_error")
    assert err["message"] == message
    assert resp.headers_named("WWW-Authenticate") == ['Key realm="sluice"']


def seen(resp, name):
    return expect.values(expect.echo(resp), name)


# ---- where the key comes from ---------------------------------------------------

@pytest.mark.valgrind
def test_key_in_the_default_header_names_the_consumer(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo/a", [("X-Api-Key", "alice-key-1")]))
    assert echo["target"] == "/echo/a"
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]
    assert expect.values(echo, "X-Consumer-Tenant") == ["acme"]
    assert expect.values(echo, "X-Api-Key") == []
    assert expect.values(echo, "X-Anonymous-Consumer") == []
    assert expect.values(echo, "X-Consumer-Groups") == []


def test_hashed_credential_accepts_the_key_it_hashes(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo", [("X-Api-Key", "alice-key-2")]), "X-Consumer-Name") == ["alice"]


def test_the_hash_itself_is_not_a_key(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo", [("X-Api-Key", sha256("alice-key-2"))]), "invalid_credentials", INVALID)
    assert upstream.requests == []


def test_consumer_without_tenant_gets_no_tenant_header(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [("X-Api-Key", "bob-key")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert expect.values(echo, "X-Consumer-Tenant") == []


def test_header_name_is_case_insensitive(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [("x-api-key", "bob-key")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert expect.values(echo, "X-Api-Key") == []


def test_key_in_the_default_query_param_is_stripped_from_the_target(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo/q?a=1&api_key=alice-key-1&b=2"))
    assert echo["target"] == "/echo/q?a=1&b=2"
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]


@pytest.mark.parametrize("target,forwarded", [
    ("/echo/q?api_key=bob-key", "/echo/q"),
    ("/echo/q?api_key=bob-key&api_key=other", "/echo/q"),
    ("/echo/q?x=api_key&api_key=bob-key&y", "/echo/q?x=api_key&y"),
    ("/echo/q?api%5Fkey=bob-key&z=3", "/echo/q?z=3"),
])
def test_every_occurrence_of_the_param_is_stripped(gateway_factory, upstream, target, forwarded):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get(target))
    assert echo["target"] == forwarded
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]


def test_query_value_is_percent_and_plus_decoded(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo?api_key=c%26d%3De+f"), "X-Consumer-Name") == ["carol"]
    assert seen(gw.get("/echo?api_key=c%26d%3De%20f"), "X-Consumer-Name") == ["carol"]


@pytest.mark.parametrize("query", ["api_key=%zz", "api_key=bob-key%2", "api_key=%"])
def test_broken_escape_in_the_query_key_is_invalid(gateway_factory, upstream, query):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo?" + query), "invalid_credentials", INVALID)
    assert upstream.requests == []


def test_header_wins_over_query_and_both_are_stripped(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo?api_key=alice-key-1", [("X-Api-Key", "bob-key")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert echo["target"] == "/echo"
    assert expect.values(echo, "X-Api-Key") == []


def test_invalid_header_key_is_refused_even_with_a_valid_query_key(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo?api_key=alice-key-1", [("X-Api-Key", "nope")]), "invalid_credentials", INVALID)


# ---- refusals -------------------------------------------------------------------

def test_missing_key_is_401_with_a_challenge(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo"), "missing_credentials", MISSING)
    refused(gw.get("/echo?other=1"), "missing_credentials", MISSING)
    assert upstream.requests == []


@pytest.mark.parametrize("request_kw", [
    {"headers": [("X-Api-Key", "")]},
    {"target": "/echo?api_key="},
    {"target": "/echo?api_key"},
])
def test_empty_key_counts_as_missing(gateway_factory, upstream, request_kw):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get(request_kw.get("target", "/echo"), request_kw.get("headers", ())),
            "missing_credentials", MISSING)


@pytest.mark.parametrize("key", ["wrong", "ALICE-KEY-1", "alice-key-1x", "alice-key"])
def test_unknown_key_is_401_invalid(gateway_factory, upstream, key):
    gw = gateway_factory(cfg(upstream))
    refused(gw.get("/echo", [("X-Api-Key", key)]), "invalid_credentials", INVALID)
    assert upstream.requests == []


# ---- options ----------------------------------------------------------------------

def test_header_option_names_another_header(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"header": "X-Key", "query_param": ""}))
    echo = expect.echo(gw.get("/echo", [("X-Key", "bob-key")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert expect.values(echo, "X-Key") == []
    refused(gw.get("/echo", [("X-Api-Key", "bob-key")]), "missing_credentials", MISSING)


def test_empty_header_option_reads_only_the_query(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"header": ""}))
    refused(gw.get("/echo", [("X-Api-Key", "bob-key")]), "missing_credentials", MISSING)
    assert seen(gw.get("/echo?api_key=bob-key"), "X-Consumer-Name") == ["bob"]


def test_query_param_option_names_another_param(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"query_param": "token"}))
    echo = expect.echo(gw.get("/echo?token=bob-key&api_key=kept"))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert echo["target"] == "/echo?api_key=kept"


def test_empty_query_param_option_ignores_the_query(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"query_param": ""}))
    refused(gw.get("/echo?api_key=bob-key"), "missing_credentials", MISSING)
    echo = expect.echo(gw.get("/echo?api_key=left-alone", [("X-Api-Key", "bob-key")]))
    assert echo["target"] == "/echo?api_key=left-alone"


def test_hide_credentials_false_forwards_header_and_param(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"hide_credentials": False}))
    echo = expect.echo(gw.get("/echo", [("X-Api-Key", "bob-key")]))
    assert expect.values(echo, "X-Api-Key") == ["bob-key"]
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    echo = expect.echo(gw.get("/echo?a=1&api_key=alice-key-1"))
    assert echo["target"] == "/echo?a=1&api_key=alice-key-1"
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]


@pytest.mark.valgrind
def test_anonymous_is_used_when_no_key_is_sent(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    echo = expect.echo(gw.get("/echo"))
    assert expect.values(echo, "X-Consumer-Name") == ["guest"]
    assert expect.values(echo, "X-Anonymous-Consumer") == ["true"]
    assert expect.values(echo, "X-Consumer-Tenant") == []
    echo = expect.echo(gw.get("/echo", [("X-Api-Key", "bob-key")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    assert expect.values(echo, "X-Anonymous-Consumer") == []


def test_anonymous_does_not_cover_a_wrong_key(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    refused(gw.get("/echo", [("X-Api-Key", "wrong")]), "invalid_credentials", INVALID)
    refused(gw.get("/echo?api_key=wrong"), "invalid_credentials", INVALID)
    assert upstream.requests == []


# ---- identity for the upstream and later plugins -----------------------------------

def test_client_cannot_spoof_consumer_headers(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    echo = expect.echo(gw.get("/echo", [
        ("X-Api-Key", "bob-key"), ("X-Consumer-Name", "alice"), ("x-consumer-name", "root"),
        ("X-Consumer-Tenant", "acme"), ("X-Consumer-Groups", "admin"), ("X-Consumer-Id", "1"),
        ("X-Anonymous-Consumer", "false"), ("X-Other", "kept")]))
    assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    for name in ("X-Consumer-Tenant", "X-Consumer-Groups", "X-Consumer-Id", "X-Anonymous-Consumer"):
        assert expect.values(echo, name) == [], name
    assert expect.values(echo, "X-Other") == ["kept"]


def test_anonymous_consumer_cannot_be_spoofed_either(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"anonymous": "guest"}))
    echo = expect.echo(gw.get("/echo", [("X-Consumer-Name", "alice"), ("X-Consumer-Tenant", "acme")]))
    assert expect.values(echo, "X-Consumer-Name") == ["guest"]
    assert expect.values(echo, "X-Consumer-Tenant") == []


@pytest.mark.parametrize("conf,headers,ctx_key,value", [
    ({}, [("X-Api-Key", "alice-key-1")], "consumer", "alice"),
    ({}, [("X-Api-Key", "alice-key-1")], "consumer.tenant", "acme"),
    ({}, [("X-Api-Key", "alice-key-1")], "consumer.groups", "admin,beta"),
    ({}, [("X-Api-Key", "alice-key-1")], "credential", "key-auth:" + sha256("alice-key-1")[:12]),
    ({}, [("X-Api-Key", "alice-key-2")], "credential", "key-auth:" + sha256("alice-key-2")[:12]),
    ({}, [("X-Api-Key", "bob-key")], "consumer.tenant", "(none)"),
    ({}, [("X-Api-Key", "bob-key")], "consumer.groups", "(none)"),
    ({"anonymous": "guest"}, [], "consumer", "guest"),
    ({"anonymous": "guest"}, [], "consumer.groups", "public"),
    ({"anonymous": "guest"}, [], "credential", "(none)"),
])
def test_context_for_later_plugins(gateway_factory, upstream, conf, headers, ctx_key, value):
    # probe-a copies one context value into X-Ctx ("(none)" when unset)
    gw = gateway_factory(cfg(upstream, conf, after=[{"probe-a": {"tag": "p", "read_ctx": ctx_key}}]))
    assert seen(gw.get("/echo", headers), "X-Ctx") == [value]


def test_two_routes_keep_separate_options(gateway_factory, upstream):
    c = cfg(upstream, {"header": "X-Key-A", "query_param": ""})
    c["routes"][0]["match"] = {"paths": ["/a/*"]}
    c["routes"].append({"name": "b", "match": {"paths": ["/b/*"]}, "upstream": "backend",
                        "plugins": [{"key-auth": {"header": "X-Key-B", "anonymous": "guest"}}]})
    gw = gateway_factory(c)
    assert seen(gw.get("/a/x", [("X-Key-A", "bob-key")]), "X-Consumer-Name") == ["bob"]
    refused(gw.get("/a/x", [("X-Key-B", "bob-key")]), "missing_credentials", MISSING)
    assert seen(gw.get("/b/x", [("X-Key-A", "bob-key")]), "X-Consumer-Name") == ["guest"]
    assert seen(gw.get("/b/x", [("X-Key-B", "bob-key")]), "X-Consumer-Name") == ["bob"]


def test_reload_reads_the_consumers_again(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    assert seen(gw.get("/echo", [("X-Api-Key", "bob-key")]), "X-Consumer-Name") == ["bob"]
    gw.write_config(cfg(upstream, consumers=[{"name": "bob", "credentials": {"key-auth": [{"key": "bob-new"}]}}]))
    assert gw.reload().ok
    refused(gw.get("/echo", [("X-Api-Key", "bob-key")]), "invalid_credentials", INVALID)
    assert seen(gw.get("/echo", [("X-Api-Key", "bob-new")]), "X-Consumer-Name") == ["bob"]


def test_reload_with_a_bad_credential_keeps_the_running_config(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream))
    gw.write_config(cfg(upstream, consumers=[{"name": "bob", "credentials": {"key-auth": [{"key_sha256": "xyz"}]}}]))
    result = gw.reload()
    assert not result.ok
    assert ("routes[0].plugins[0] (key-auth): consumers[0].credentials.key-auth[0].key_sha256: "
            "expected 64 hex digits (the SHA-256 of the key)") in result.output
    assert seen(gw.get("/echo", [("X-Api-Key", "bob-key")]), "X-Consumer-Name") == ["bob"]


# ---- config errors ------------------------------------------------------------------

def check(sluice_bin, tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent(text))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


def conf_text(consumers, plugin_conf="{}"):
    return ("listen: 127.0.0.1:1\n"
            "consumers:\n" + textwrap.indent(textwrap.dedent(consumers), "  ") +
            "routes:\n"
            "  - name: r\n"
            "    upstream: http://127.0.0.1:9\n"
            "    plugins:\n"
            "      - key-auth: " + plugin_conf + "\n")


OK_CONSUMERS = """\
- name: alice
  credentials:
    key-auth: [{key: k1}]
"""


def test_valid_config_passes_check(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, conf_text(OK_CONSUMERS, "{anonymous: alice}"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")


@pytest.mark.parametrize("consumers,plugin_conf,message", [
    (OK_CONSUMERS, "{anonymous: nobody}", 'anonymous: no consumer is named "nobody"'),
    ("""\
- name: alice
  credentials: {key-auth: [{key: shared}]}
- name: bob
  credentials: {key-auth: [{key_sha256: "%s"}]}
""" % sha256("shared"), "{}",
     'consumers[1].credentials.key-auth[0]: the same key is already a credential of consumer "alice"'),
    ("""\
- name: alice
  credentials: {key-auth: [{key: a}, {key: a}]}
""", "{}", 'consumers[0].credentials.key-auth[1]: the same key is already a credential of consumer "alice"'),
    ("- name: alice\n  credentials: {key-auth: [{key: a, key_sha256: \"%s\"}]}\n" % sha256("a"), "{}",
     'consumers[0].credentials.key-auth[0]: expected exactly one of "key" or "key_sha256"'),
    ("- name: alice\n  credentials: {key-auth: [{}]}\n", "{}",
     'consumers[0].credentials.key-auth[0]: expected exactly one of "key" or "key_sha256"'),
    ("- name: alice\n  credentials: {key-auth: [{key: a, note: x}]}\n", "{}",
     'consumers[0].credentials.key-auth[0]: expected exactly one of "key" or "key_sha256"'),
    ("- name: alice\n  credentials: {key-auth: [{key: \"\"}]}\n", "{}",
     "consumers[0].credentials.key-auth[0].key: expected a non-empty string"),
    ("- name: alice\n  credentials: {key-auth: [{key: 42}]}\n", "{}",
     "consumers[0].credentials.key-auth[0].key: expected a non-empty string"),
    ("- name: alice\n  credentials: {key-auth: [{key_sha256: abc}]}\n", "{}",
     "consumers[0].credentials.key-auth[0].key_sha256: expected 64 hex digits (the SHA-256 of the key)"),
    ("- name: alice\n  credentials: {key-auth: [{key_sha256: \"%s\"}]}\n" % ("g" * 64), "{}",
     "consumers[0].credentials.key-auth[0].key_sha256: expected 64 hex digits (the SHA-256 of the key)"),
    ("- name: alice\n  credentials: {key-auth: {key: a}}\n", "{}",
     "consumers[0].credentials.key-auth: expected a list"),
    ("- name: alice\n  credentials: {key-auth: [k1]}\n", "{}",
     "consumers[0].credentials.key-auth[0]: expected a mapping"),
    ("- name: alice\n  credentials: [k1]\n", "{}",
     "consumers[0].credentials: expected a mapping from auth plugin name to a list of credentials"),
    ("- name: alice\n  tenant: [a]\n", "{}", "consumers[0].tenant: expected a non-empty string"),
    ("- name: alice\n  tenant: \"\"\n", "{}", "consumers[0].tenant: expected a non-empty string"),
    ("- name: alice\n  groups: admin\n", "{}", "consumers[0].groups: expected a list of group names"),
    ("- name: alice\n  groups: [ok, \"a,b\"]\n", "{}",
     "consumers[0].groups[1]: expected a non-empty group name without commas"),
    ("- name: alice\n  groups: [\"\"]\n", "{}",
     "consumers[0].groups[0]: expected a non-empty group name without commas"),
    (OK_CONSUMERS, '{header: "", query_param: ""}',
     "header and query_param are both empty: a client could send no key"),
])
def test_bad_consumers_and_options_are_refused(sluice_bin, tmp_path, consumers, plugin_conf, message):
    text = conf_text(consumers, plugin_conf)
    proc, path = check(sluice_bin, tmp_path, text)
    line = text.splitlines().index("      - key-auth: " + plugin_conf) + 1
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:%d: routes[0].plugins[0] (key-auth): %s" % (path, line, message)]


@pytest.mark.parametrize("plugin_conf,field_message", [
    ('{header: "X Api"}', ".header: must match ^[A-Za-z0-9!#$%&'*+.^_`|~-]*$"),
    ('{header: 7}', ".header: expected string, got integer"),
    ('{query_param: "a&b"}', ".query_param: must match ^[^&=]*$"),
    ('{hide_credentials: "yes"}', ".hide_credentials: expected boolean, got string"),
    ('{anonymous: ""}', ".anonymous: must be at least 1 character"),
    ('{realm: x}', ".realm: unknown field"),
])
def test_schema_errors_name_the_field(sluice_bin, tmp_path, plugin_conf, field_message):
    text = conf_text(OK_CONSUMERS, plugin_conf)
    proc, path = check(sluice_bin, tmp_path, text)
    line = text.splitlines().index("      - key-auth: " + plugin_conf) + 1
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:%d: routes[0].plugins[0] (key-auth)%s" % (path, line, field_message)]


def test_no_consumers_at_all_is_allowed_but_refuses_everyone(gateway_factory, upstream):
    c = proxy(upstream, route={"plugins": [{"key-auth": {}}]})
    gw = gateway_factory(c)
    refused(gw.get("/echo", [("X-Api-Key", "anything")]), "invalid_credentials", INVALID)
    assert "key-auth: no consumer has a key-auth credential" in gw.stderr()


# ---- keys accepted before stay checked ------------------------------------------

def test_a_key_removed_by_a_reload_is_refused_even_after_many_uses(gateway_factory, upstream):
    """Accepted keys are remembered per worker; a reload must forget them."""
    gw = gateway_factory(cfg(upstream))
    for _ in range(20):
        echo = expect.echo(gw.get("/echo/a", [("X-Api-Key", "bob-key")]))
        assert expect.values(echo, "X-Consumer-Name") == ["bob"]
    without_bob = [c for c in CONSUMERS if c["name"] != "bob"]
    gw.write_config(cfg(upstream, consumers=without_bob))
    assert gw.reload().ok
    for _ in range(5):
        refused(gw.get("/echo/a", [("X-Api-Key", "bob-key")]), "invalid_credentials", INVALID)
    echo = expect.echo(gw.get("/echo/a", [("X-Api-Key", "alice-key-1")]))
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]


def test_a_remembered_key_still_names_its_own_consumer(gateway_factory, upstream):
    """Two keys used in turn many times: each keeps naming its consumer and
    a near-miss of a remembered key is still refused."""
    gw = gateway_factory(cfg(upstream))
    for _ in range(10):
        for key, name in (("alice-key-1", "alice"), ("bob-key", "bob"), ("alice-key-2", "alice")):
            echo = expect.echo(gw.get("/echo/a", [("X-Api-Key", key)]))
            assert expect.values(echo, "X-Consumer-Name") == [name]
        refused(gw.get("/echo/a", [("X-Api-Key", "bob-ke")]), "invalid_credentials", INVALID)
        refused(gw.get("/echo/a", [("X-Api-Key", "bob-kez")]), "invalid_credentials", INVALID)
