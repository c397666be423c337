"""acl (plugins/acl): lets requests through by the groups of the consumer an
auth plugin earlier in the chain identified (key-auth and basic-auth here)."""

import base64
import subprocess

import pytest

import expect
from configs import proxy
from scale import scaled

CONSUMERS = [
    {"name": "alice", "groups": ["admin", "beta"],
     "credentials": {"key-auth": [{"key": "alice-key"}],
                     "basic-auth": [{"username": "alice", "password": "pw"}]}},
    {"name": "bob", "groups": ["beta"], "credentials": {"key-auth": [{"key": "bob-key"}]}},
    {"name": "nogroups", "credentials": {"key-auth": [{"key": "plain-key"}]}},
    {"name": "guest", "groups": ["public"]},
]

FORBIDDEN = "this consumer may not use this route"


def cfg(upstream, acl_conf, auth=None):
    auth = auth or {"key-auth": {}}
    c = proxy(upstream, route={"plugins": [auth, {"acl": acl_conf}]})
    c["consumers"] = CONSUMERS
    return c


def as_(consumer):
    return [("X-Api-Key", consumer + "-key")]


def forbidden(resp):
    err = expect.gateway_error(resp, 403, "forbidden", "permission_error")
    assert err["message"] == FORBIDDEN
    assert resp.headers_named("WWW-Authenticate") == []


def groups_seen(resp):
    return expect.values(expect.echo(resp), "X-Consumer-Groups")


# ---- allow ------------------------------------------------------------------------

@pytest.mark.valgrind
def test_allow_lets_members_in_and_sends_their_groups(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["admin"]}))
    echo = expect.echo(gw.get("/echo", as_("alice")))
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]
    assert expect.values(echo, "X-Consumer-Groups") == ["admin,beta"]
    forbidden(gw.get("/echo", as_("bob")))
    forbidden(gw.get("/echo", as_("plain")))
    assert len(upstream.requests) == 1


def test_allow_with_several_groups_needs_any_one(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["ops", "beta"]}))
    assert groups_seen(gw.get("/echo", as_("alice"))) == ["admin,beta"]
    assert groups_seen(gw.get("/echo", as_("bob"))) == ["beta"]
    forbidden(gw.get("/echo", as_("plain")))


@pytest.mark.parametrize("group", ["adm", "Admin", "admins", "dmin"])
def test_groups_match_exactly(gateway_factory, upstream, group):
    gw = gateway_factory(cfg(upstream, {"allow": [group]}))
    forbidden(gw.get("/echo", as_("alice")))


def test_unauthenticated_request_is_refused_by_the_auth_plugin_first(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["admin"]}))
    r = gw.get("/echo")
    expect.gateway_error(r, 401, "missing_credentials", "authentication_error")


# ---- deny -------------------------------------------------------------------------

def test_deny_keeps_members_out(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"deny": ["admin"]}))
    forbidden(gw.get("/echo", as_("alice")))
    assert groups_seen(gw.get("/echo", as_("bob"))) == ["beta"]
    assert upstream.requests[0].header("X-Consumer-Name") == "bob"


def test_deny_lets_a_consumer_without_groups_in_without_a_groups_header(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"deny": ["admin"]}))
    echo = expect.echo(gw.get("/echo", as_("plain") + [("X-Consumer-Groups", "admin")]))
    assert expect.values(echo, "X-Consumer-Name") == ["nogroups"]
    assert expect.values(echo, "X-Consumer-Groups") == []


# ---- hide_groups_header -----------------------------------------------------------

def test_hide_groups_header_true_sends_no_groups(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["beta"], "hide_groups_header": True}))
    echo = expect.echo(gw.get("/echo", as_("alice") + [("X-Consumer-Groups", "root")]))
    assert expect.values(echo, "X-Consumer-Name") == ["alice"]
    assert expect.values(echo, "X-Consumer-Groups") == []


def test_hide_groups_header_false_replaces_a_client_sent_one(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["beta"], "hide_groups_header": False}))
    echo = expect.echo(gw.get("/echo", as_("bob") + [("X-Consumer-Groups", "admin")]))
    assert expect.values(echo, "X-Consumer-Groups") == ["beta"]


# ---- anonymous consumers and other auth plugins -----------------------------------

def test_anonymous_consumer_is_judged_by_its_own_groups(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["public", "admin"]}, {"key-auth": {"anonymous": "guest"}}))
    echo = expect.echo(gw.get("/echo"))
    assert expect.values(echo, "X-Consumer-Name") == ["guest"]
    assert expect.values(echo, "X-Consumer-Groups") == ["public"]
    assert groups_seen(gw.get("/echo", as_("alice"))) == ["admin,beta"]
    forbidden(gw.get("/echo", as_("bob")))


def test_anonymous_consumer_can_be_denied(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"deny": ["public"]}, {"key-auth": {"anonymous": "guest"}}))
    forbidden(gw.get("/echo"))
    assert groups_seen(gw.get("/echo", as_("bob"))) == ["beta"]


def test_works_behind_basic_auth(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"allow": ["admin"]}, {"basic-auth": {}}))
    auth = ("Authorization", "Basic " + base64.b64encode(b"alice:pw").decode())
    assert groups_seen(gw.get("/echo", [auth])) == ["admin,beta"]


def test_global_auth_plugin_counts_as_earlier(gateway_factory, upstream):
    c = proxy(upstream, route={"plugins": [{"acl": {"allow": ["beta"]}}]})
    c["plugins"] = [{"key-auth": {}}]
    c["consumers"] = CONSUMERS
    gw = gateway_factory(c)
    assert groups_seen(gw.get("/echo", as_("bob"))) == ["beta"]
    forbidden(gw.get("/echo", as_("plain")))


# ---- config errors ----------------------------------------------------------------

def check(sluice_bin, tmp_path, plugins, global_plugins=""):
    text = ("listen: 127.0.0.1:1\n"
            "consumers:\n"
            "  - name: alice\n"
            "    credentials: {key-auth: [{key: k}]}\n" + global_plugins +
            "routes:\n"
            "  - name: r\n"
            "    upstream: http://127.0.0.1:9\n"
            "    plugins:\n" + "".join("      - %s\n" % p for p in plugins))
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


NEEDS = ('needs a plugin that provides "consumer" earlier in the chain '
         '(for "consumer": an auth plugin such as key-auth)')


def test_valid_config_passes_check(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, ["key-auth: {}", "acl: {deny: [banned]}"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")


def test_acl_without_an_auth_plugin_is_refused(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, ["acl: {allow: [admin]}"])
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:9: routes[0].plugins[0] (acl): %s" % (path, NEEDS)]


def test_acl_before_the_auth_plugin_is_refused(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, ["acl: {allow: [admin]}", "key-auth: {}"])
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:9: routes[0].plugins[0] (acl): %s" % (path, NEEDS)]


def test_global_acl_before_a_route_auth_plugin_is_refused(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, ["key-auth: {}"], "plugins:\n  - acl: {allow: [admin]}\n")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:6: plugins[0] (acl): %s" % (path, NEEDS)]


@pytest.mark.parametrize("acl_conf,message", [
    ("{allow: [a], deny: [b]}", ": set either allow or deny, not both"),
    ("{}", ': must set at least one of "allow", "deny"'),
    ("{hide_groups_header: true}", ': must set at least one of "allow", "deny"'),
    ("{allow: []}", ".allow: must have at least 1 item"),
    ("{deny: []}", ".deny: must have at least 1 item"),
    ("{allow: admin}", ".allow: expected array, got string"),
    ('{allow: ["a,b"]}', ".allow[0]: must match ^[^,]*$"),
    ('{deny: [ok, ""]}', ".deny[1]: must be at least 1 character"),
    ("{deny: [1]}", ".deny[0]: expected string, got integer"),
    ('{allow: [a], hide_groups_header: "no"}', ".hide_groups_header: expected boolean, got string"),
    ("{allow: [a], groups: [b]}", ".groups: unknown field"),
])
def test_bad_config(sluice_bin, tmp_path, acl_conf, message):
    proc, path = check(sluice_bin, tmp_path, ["key-auth: {}", "acl: " + acl_conf])
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:10: routes[0].plugins[1] (acl)%s" % (path, message)]
