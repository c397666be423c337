"""Lua plugins through the PDK: order, exit, errors, sandbox, suspension on
sleep/Redis/HTTP (with clients leaving mid-wait), JSON round trips, body
filters, reload of an edited plugin, and the example business-hours plugin."""

import json
import os
import shutil
import subprocess
import textwrap
import threading
import time

import pytest

import expect
import raw
from configs import proxy
from gateway import repo_root
from plugin_harness import plugin_gateway
from redis import RedisServer
from scale import scaled

LUA_SPEC = repo_root() / "spec" / "plugins" / "lua"
EXAMPLE = repo_root() / "examples" / "plugins" / "business-hours"


def cfg(upstream, plugins, plugin_dirs=(str(LUA_SPEC),), **kw):
    c = proxy(upstream, route={"plugins": list(plugins)}, **kw)
    c["plugin_dirs"] = list(plugin_dirs)
    return c


def wait_for_redis(gw):
    """Workers connect to Redis after start-up; until the first connection is
    up the PDK reports "not connected". Waits (bounded) for the first INCR
    that went through: the counter then reads 1."""
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        value = header(gw.get("/echo"), "X-Redis")[0]
        if value == "1":
            return
        assert value.startswith("error: "), value
        time.sleep(0.05)
    raise AssertionError("Redis never answered through the gateway")


def header(resp, name):
    return expect.values(expect.echo(resp), name)


def test_lua_plugin_sets_upstream_headers_in_order(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "one", "copy_header": "X-In"}}]))
    r = gw.get("/echo", headers=[("X-In", "value-in")])
    assert header(r, "X-Lua-Order") == ["one"]
    assert header(r, "X-Copied") == ["value-in"]


@pytest.mark.valgrind
def test_exit_answers_with_json_table_and_headers(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "t", "exit_in": "rewrite"}}]))
    r = gw.get("/echo")
    assert r.status == 418
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Exit") == "t"
    assert json.loads(r.body) == {"tag": "t", "phase": "rewrite"}
    assert upstream.requests == []


def test_exit_with_a_string_body(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "t", "exit_in": "access"}}]))
    r = gw.get("/echo")
    assert (r.status, r.body, r.header("X-Exit")) == (418, b"exit from t", "t")


@pytest.mark.valgrind
def test_runtime_error_is_500_with_request_id_and_logged_traceback(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "t", "fail_in": "access"}}]))
    r = gw.get("/echo", headers=[("X-Request-Id", "lua-err-1")])
    err = expect.gateway_error(r, 500, "plugin_error", "api_error")
    assert err["request_id"] == "lua-err-1"
    log = gw.stderr()
    assert "probe failure in access" in log
    assert "lua-err-1" in log
    assert "stack traceback" in log
    assert gw.get("/echo").status == 500    # the worker and its Lua state live on


@pytest.mark.parametrize("name", ["escape-io", "escape-os", "escape-ffi", "escape-debug",
                                  "escape-load", "escape-dump", "escape-require", "escape-getfenv"])
def test_sandbox_escapes_are_refused(gateway_factory, upstream, name):
    gw = gateway_factory(cfg(upstream, [{name: {}}]))
    r = gw.get("/echo")
    expect.gateway_error(r, 500, "plugin_error", "api_error")
    assert upstream.requests == []


def test_bytecode_plugins_are_refused(sluice_bin, tmp_path, upstream):
    (tmp_path / "bytecode.lua").write_bytes(b"\x1bLJ\x02\x00fake bytecode")
    conf = tmp_path / "conf.yaml"
    conf.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        plugin_dirs: ["%s"]
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - bytecode: {}
        """ % tmp_path))
    proc = subprocess.run([sluice_bin, "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert proc.stderr.startswith("%s:7: routes[0].plugins[0] (bytecode): " % conf)
    assert "bytecode" in proc.stderr.splitlines()[0][len(str(conf)) + 40:]


def test_syntax_error_names_the_plugin_file_and_line(sluice_bin, tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        plugin_dirs: ["%s"]
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - syntax-error: {}
        """ % LUA_SPEC))
    proc = subprocess.run([sluice_bin, "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith("%s:7: routes[0].plugins[0] (syntax-error): " % conf)
    assert "syntax-error.lua:3:" in line


def test_schema_errors_for_lua_plugins(sluice_bin, tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        plugin_dirs: ["%s"]
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - lua-probe: {sleep_ms: -5, exit_in: never}
        """ % LUA_SPEC))
    proc = subprocess.run([sluice_bin, "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    where = "%s:7: routes[0].plugins[0] (lua-probe)" % conf
    lines = proc.stderr.splitlines()
    assert any(l.startswith(where + ".tag: missing required field") for l in lines), lines
    assert any(l.startswith(where + ".sleep_ms: must be >= 0") for l in lines), lines
    assert any(l.startswith(where + ".exit_in: must be one of") for l in lines), lines


def test_ctx_is_shared_between_lua_plugins_of_a_request(gateway_factory, upstream, tmp_path):
    # two instances of the same file under two names
    for name in ("probe-one", "probe-two"):
        text = (LUA_SPEC / "lua-probe.lua").read_text().replace('name = "lua-probe"', 'name = "%s"' % name)
        (tmp_path / ("%s.lua" % name)).write_text(text)
    gw = gateway_factory(cfg(upstream, [{"probe-one": {"tag": "a"}}, {"probe-two": {"tag": "b"}}],
                             plugin_dirs=(str(tmp_path),)))
    assert header(gw.get("/echo"), "X-Lua-Order") == ["a,b"]
    assert header(gw.get("/echo"), "X-Lua-Order") == ["a,b"]   # a fresh ctx per request


WHERE_TO = textwrap.dedent("""\
    local request = require("sluice.request")
    local upstream = require("sluice.upstream")
    return {
      name = "where-to",
      version = "0.0.1",
      access = function(conf, ctx)
        upstream.set_header("X-Route", tostring(request.get_route()))
        upstream.set_header("X-Upstream", tostring(request.get_upstream()))
      end,
    }
    """)


def test_route_and_upstream_names_reach_lua(gateway_factory, upstream, tmp_path):
    (tmp_path / "where-to.lua").write_text(WHERE_TO)
    c = cfg(upstream, [{"where-to": {}}], plugin_dirs=(str(tmp_path),), paths=["/echo/named/*"])
    # the same plugin on a route written with an inline URL
    c["routes"].append({"name": "inline", "match": {"paths": ["/echo/inline/*"]},
                        "upstream": upstream.url,
                        "plugins": [{"where-to": {}}]})
    gw = gateway_factory(c)
    r = gw.get("/echo/named/x")
    assert (header(r, "X-Route"), header(r, "X-Upstream")) == (["main"], ["backend"])
    r = gw.get("/echo/inline/x")
    assert (header(r, "X-Route"), header(r, "X-Upstream")) == (["inline"], ["route:inline"])


@pytest.mark.valgrind
def test_sleep_yields_and_many_requests_wait_concurrently(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "s", "sleep_ms": 100}}]))
    results = []

    def one():
        results.append(gw.get("/echo"))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    assert len(results) == 20
    assert all(header(r, "X-Slept") == ["s"] for r in results)


def test_redis_call_yields_and_returns_the_reply(gateway_factory, upstream, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        c = cfg(upstream, [{"lua-probe": {"tag": "r", "redis_incr": "lua-probe:count"}}])
        c["redis"] = {"url": redis.url}
        gw = gateway_factory(c)
        wait_for_redis(gw)
        got = [header(gw.get("/echo"), "X-Redis")[0] for _ in range(3)]
        assert got == ["2", "3", "4"]
        assert redis.command("GET", "lua-probe:count") == b"4"
    finally:
        redis.stop()


@pytest.mark.valgrind
def test_many_redis_waits_with_clients_leaving(gateway_factory, upstream, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        c = cfg(upstream, [{"lua-probe": {"tag": "r", "redis_incr": "leave:count", "sleep_ms": 50}}])
        c["redis"] = {"url": redis.url}
        gw = gateway_factory(c)
        for _ in range(10):
            conn = gw.conn()
            conn.send(raw.build_request("GET", "/echo/leaving"))
            conn.close()
        results = []

        def one():
            results.append(gw.get("/echo/staying"))

        threads = [threading.Thread(target=one) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(30))
        assert [r.status for r in results] == [200] * 10
        assert all(q.path == "/echo/staying" for q in upstream.requests)
    finally:
        redis.stop()


def test_redis_down_gives_the_plugin_an_error_not_a_crash(gateway_factory, upstream, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        c = cfg(upstream, [{"lua-probe": {"tag": "r", "redis_incr": "down:count"}}])
        c["redis"] = {"url": redis.url, "command_timeout": "200ms", "connect_timeout": "200ms"}
        gw = gateway_factory(c)
        wait_for_redis(gw)
        redis.kill()
        value = header(gw.get("/echo"), "X-Redis")[0]
        assert value.startswith("error: "), value
    finally:
        redis.stop()


def test_http_call_yields_and_returns_the_response(gateway_factory, upstream, upstream_factory):
    other = upstream_factory("other")
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "h", "http_get": other.url + "/big?bytes=123"}}]))
    assert header(gw.get("/echo"), "X-Http") == ["200 123"]
    assert [q.target for q in other.requests] == ["/big?bytes=123"]


def test_http_call_errors_reach_the_plugin(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "h", "http_get": "http://127.0.0.1:9/x"}}]))
    value = header(gw.get("/echo"), "X-Http")[0]
    assert value.startswith("error: "), value


JSON_CASES = [
    b'{"messages":[],"tools":[]}',
    b'{"id":9007199254740993,"n":-9223372036854775808}',
    b'{"a":null,"b":[null,1,"x"],"c":{}}',
    b'{"s":"a/b \\u00e9 \\ud83d\\ude00","f":0.1,"g":1e+300,"h":3.0}',
]


@pytest.mark.parametrize("body", JSON_CASES)
def test_json_round_trips_exactly(gateway_factory, upstream, body):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "j", "json_roundtrip": True}}]))
    r = gw.post("/echo", body, headers=[("Content-Type", "application/json")])
    sent = expect.echo(r)["body"].encode("latin-1")
    assert json.loads(sent) == json.loads(body)
    assert (b"[]" in body) == (b"[]" in sent)
    for big in (b"9007199254740993", b"-9223372036854775808"):
        assert (big in body) == (big in sent)


def test_json_errors_reach_the_plugin(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "j", "json_roundtrip": True}}]))
    r = gw.post("/echo", b'{"a":', headers=[("Content-Type", "application/json")])
    assert r.status == 400
    assert r.body.startswith(b"bad json: ")


def test_shared_dict_counts_across_requests(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "c", "count_shared": True}}], workers=2))
    got = sorted(int(header(gw.get("/echo"), "X-Hits")[0]) for _ in range(6))
    assert got == [1, 2, 3, 4, 5, 6]


def test_body_filter_in_lua(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "u", "upper_body": True}}]))
    r = gw.get("/chunks?n=2&size=3")
    assert (r.status, r.body) == (200, b"AAABBB")


def test_edited_plugin_is_picked_up_by_reload(gateway_factory, upstream, tmp_path):
    shutil.copy(LUA_SPEC / "lua-probe.lua", tmp_path / "lua-probe.lua")
    gw = gateway_factory(cfg(upstream, [{"lua-probe": {"tag": "v1"}}], plugin_dirs=(str(tmp_path),)))
    assert header(gw.get("/echo"), "X-Lua-Order") == ["v1"]
    text = (tmp_path / "lua-probe.lua").read_text()
    (tmp_path / "lua-probe.lua").write_text(text.replace('upstream.set_header("X-Lua-Order", ctx.order)',
                                                         'upstream.set_header("X-Lua-Order", "edited-" .. ctx.order)'))
    assert gw.reload().ok
    assert header(gw.get("/echo"), "X-Lua-Order") == ["edited-v1"]


# ---- the example plugin --------------------------------------------------------------

def test_business_hours_open_closed_and_unknown(tmp_path):
    tenants = {
        "always": {"open": "00:00", "close": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]},
        "never": {"open": "09:00", "close": "17:00", "days": []},
    }
    with plugin_gateway(tmp_path, "business-hours", {"tenants": tenants},
                        plugin_dirs=[EXAMPLE]) as (gw, upstream):
        assert gw.get("/echo", headers=[("X-Tenant", "always")]).status == 200
        err = expect.gateway_error(gw.get("/echo", headers=[("X-Tenant", "never")]), 403,
                                   "outside_business_hours", "permission_error")
        assert err["message"] == "tenant never is served on no day 09:00-17:00 (UTC+0 min)"
        expect.gateway_error(gw.get("/echo", headers=[("X-Tenant", "who")]), 403, "unknown_tenant",
                             "permission_error")
        expect.gateway_error(gw.get("/echo"), 403, "unknown_tenant", "permission_error")
        assert [q.header("X-Tenant") for q in upstream.requests] == ["always"]


def test_business_hours_rejects_bad_times(sluice_bin, tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        plugin_dirs: ["%s"]
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - business-hours: {tenants: {acme: {open: "9am", close: "17:00"}}}
        """ % EXAMPLE))
    proc = subprocess.run([sluice_bin, "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith(
        "%s:7: routes[0].plugins[0] (business-hours).tenants.acme.open: must match" % conf)
