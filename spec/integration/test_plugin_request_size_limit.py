"""request-size-limit: 413 for a body over max_body, whether framed by
Content-Length or chunked; sizes with units; the route's own
max_body_size acting first; config errors."""

import subprocess
import textwrap

import pytest

import expect
import raw
from configs import proxy
from plugin_harness import plugin_gateway
from scale import scaled


def too_large(resp, limit):
    err = expect.gateway_error(resp, 413, "body_too_large", "invalid_request_error")
    assert err["message"] == "the request body is larger than %d bytes" % limit


def test_body_up_to_the_limit_passes_and_one_byte_more_does_not(tmp_path):
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": 10}) as (gw, up):
        assert expect.echo(gw.post("/echo/ok", b"0123456789"))["body"] == "0123456789"
        too_large(gw.post("/echo/big", b"0123456789A"), 10)
        assert [q.path for q in up.requests] == ["/echo/ok"]


@pytest.mark.valgrind
def test_chunked_body_is_measured_after_dechunking(tmp_path):
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": 10}) as (gw, up):
        te = [("Transfer-Encoding", "chunked")]
        r = gw.post("/echo/ok", raw.chunked("01234", "56789"), headers=te)
        assert expect.echo(r)["body"] == "0123456789"
        too_large(gw.post("/echo/big", raw.chunked("01234", "56789", "A"), headers=te), 10)
        assert [q.path for q in up.requests] == ["/echo/ok"]


def test_requests_without_a_body_pass(tmp_path):
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": 0}) as (gw, up):
        assert gw.get("/echo").status == 200
        assert gw.post("/echo", b"").status == 200
        too_large(gw.post("/echo", b"x"), 0)


@pytest.mark.parametrize("max_body,limit", [("1kb", 1024), ("2048", 2048), (1500, 1500)])
def test_size_units(tmp_path, max_body, limit):
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": max_body}) as (gw, up):
        assert gw.post("/echo", b"x" * limit).status == 200
        too_large(gw.post("/echo", b"x" * (limit + 1)), limit)


def test_the_connection_stays_usable_after_a_413(tmp_path):
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": 4}) as (gw, up):
        with gw.conn() as c:
            too_large(c.request("POST", "/echo/1", body=b"12345"), 4)
            assert c.request("POST", "/echo/2", body=b"1234").status == 200
        assert [q.path for q in up.requests] == ["/echo/2"]


def test_the_routes_max_body_size_acts_before_the_plugin(tmp_path):
    # The core refuses the body while it arrives, with its own message; the
    # plugin never sees it.
    with plugin_gateway(tmp_path, "request-size-limit", {"max_body": "4kb"},
                        route={"max_body_size": "1kb"}) as (gw, up):
        err = expect.gateway_error(gw.post("/echo", b"x" * 2048), 413, "body_too_large",
                                   "invalid_request_error")
        assert err["message"] == "the request body is larger than the limit"
        assert gw.post("/echo", b"x" * 1000).status == 200


def test_global_limit_with_a_route_override(gateway_factory, upstream):
    cfg = proxy(upstream, route={"match": {"paths": ["/big/*"]},
                                 "plugins": [{"request-size-limit": {"max_body": 100}}]})
    cfg["routes"].append({"name": "rest", "upstream": "backend"})
    cfg["plugins"] = [{"request-size-limit": {"max_body": 10}}]
    gw = gateway_factory(cfg)
    assert gw.post("/big/x", b"x" * 100).status == 200
    too_large(gw.post("/big/x", b"x" * 101), 100)
    assert gw.post("/small", b"x" * 10).status == 200
    too_large(gw.post("/small", b"x" * 11), 10)


# ---- config errors -------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - request-size-limit: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (request-size-limit)" % path


@pytest.mark.parametrize("yaml,message", [
    ("{}", ".max_body: missing required field"),
    ("{max_body: big}", '.max_body: invalid size "big"'),
    ("{max_body: -1}", ".max_body: invalid size -1"),
    ("{max_body: 1.5}", ".max_body: invalid size 1.5"),
    ("{max_body: 10, max_headers: 10}", ".max_headers: unknown field"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]
