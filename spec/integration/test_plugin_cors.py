"""cors: actual requests and preflights, exact origins, "*", whole-origin
patterns, credentials, methods/headers/expose_headers/max_age, preflight
answered here or passed upstream, Vary, other plugins' answers, config
errors."""

import os
import subprocess
import textwrap

import pytest

from plugin_harness import plugin_gateway
from scale import scaled

SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
                "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
                "Access-Control-Max-Age", "Access-Control-Expose-Headers")


def cors_of(resp):
    """The CORS headers and Vary of a response, each as the list of its values."""
    return {n: resp.headers_named(n) for n in CORS_HEADERS + ("Vary",) if resp.headers_named(n)}


def preflight(gw, origin=APP, method="PUT", req_headers=None, target="/echo"):
    h = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if req_headers is not None:
        h.append(("Access-Control-Request-Headers", req_headers))
    return gw.request("OPTIONS", target, h)


# ---- actual requests ----------------------------------------------------------------------

def test_allowed_origin_is_echoed(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP, "http://localhost:3000"]}) as (gw, up):
        r = gw.get("/echo", headers=[("Origin", APP)])
        assert r.status == 200
        assert cors_of(r) == {"Access-Control-Allow-Origin": [APP], "Vary": ["Origin"]}
        r = gw.get("/echo", headers=[("Origin", "http://localhost:3000")])
        assert cors_of(r) == {"Access-Control-Allow-Origin": ["http://localhost:3000"], "Vary": ["Origin"]}


def test_disallowed_or_missing_origin_gets_no_cors_headers_but_vary(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = gw.get("/echo/1", headers=[("Origin", OTHER)])
        assert r.status == 200
        assert cors_of(r) == {"Vary": ["Origin"]}
        r = gw.get("/echo/2")
        assert r.status == 200
        assert cors_of(r) == {"Vary": ["Origin"]}
        # the browser enforces CORS; the gateway still forwards the request
        assert [q.path for q in up.requests] == ["/echo/1", "/echo/2"]


def test_origin_comparison_ignores_case(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": ["https://App.Example.com"]}) as (gw, up):
        r = gw.get("/echo", headers=[("Origin", APP)])
        assert r.headers_named("Access-Control-Allow-Origin") == [APP]


def test_wildcard_without_credentials_answers_star_to_everyone(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": ["*"]}) as (gw, up):
        assert cors_of(gw.get("/echo", headers=[("Origin", OTHER)])) == {"Access-Control-Allow-Origin": ["*"]}
        # same answer without an Origin, so no Vary is needed
        assert cors_of(gw.get("/echo")) == {"Access-Control-Allow-Origin": ["*"]}


def test_wildcard_with_credentials_echoes_the_origin(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": ["*"], "credentials": True}) as (gw, up):
        assert cors_of(gw.get("/echo", headers=[("Origin", OTHER)])) == {
            "Access-Control-Allow-Origin": [OTHER], "Access-Control-Allow-Credentials": ["true"],
            "Vary": ["Origin"]}
        assert cors_of(gw.get("/echo")) == {"Vary": ["Origin"]}


def test_credentials_with_exact_origins(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP], "credentials": True}) as (gw, up):
        assert cors_of(gw.get("/echo", headers=[("Origin", APP)])) == {
            "Access-Control-Allow-Origin": [APP], "Access-Control-Allow-Credentials": ["true"],
            "Vary": ["Origin"]}
        assert cors_of(gw.get("/echo", headers=[("Origin", OTHER)])) == {"Vary": ["Origin"]}


@pytest.mark.parametrize("origin,allowed", [
    ("https://app.example.com", True),
    ("https://a-b.example.com", True),
    ("HTTPS://APP.EXAMPLE.COM", True),
    ("https://app.example.com:8443", True),
    ("https://app.example.com.evil.net", False),      # patterns match the whole origin
    ("http://app.example.com", False),
    ("https://example.com", False),
    ("xhttps://app.example.com", False),
])
def test_origin_patterns_match_the_whole_origin(tmp_path, origin, allowed):
    conf = {"origin_patterns": [r"https://[a-z-]+\.example\.com(:[0-9]+)?"]}
    with plugin_gateway(tmp_path, "cors", conf) as (gw, up):
        r = gw.get("/echo", headers=[("Origin", origin)])
        assert r.headers_named("Access-Control-Allow-Origin") == ([origin] if allowed else [])


def test_origins_and_patterns_together(tmp_path):
    conf = {"origins": ["null"], "origin_patterns": [r"http://localhost:[0-9]+"]}
    with plugin_gateway(tmp_path, "cors", conf) as (gw, up):
        assert gw.get("/echo", headers=[("Origin", "null")]).headers_named("Access-Control-Allow-Origin") == ["null"]
        assert gw.get("/echo", headers=[("Origin", "http://localhost:5173")]).headers_named(
            "Access-Control-Allow-Origin") == ["http://localhost:5173"]
        assert gw.get("/echo", headers=[("Origin", APP)]).headers_named("Access-Control-Allow-Origin") == []


def test_expose_headers_on_actual_requests(tmp_path):
    conf = {"origins": [APP], "expose_headers": ["X-Total", "X-Page"]}
    with plugin_gateway(tmp_path, "cors", conf) as (gw, up):
        assert cors_of(gw.get("/echo", headers=[("Origin", APP)])) == {
            "Access-Control-Allow-Origin": [APP], "Access-Control-Expose-Headers": ["X-Total,X-Page"],
            "Vary": ["Origin"]}
        assert "Access-Control-Expose-Headers" not in cors_of(preflight(gw))
        assert cors_of(gw.get("/echo", headers=[("Origin", OTHER)])) == {"Vary": ["Origin"]}


@pytest.mark.valgrind
def test_upstream_cors_headers_are_replaced(tmp_path):
    target = ("/headers?Access-Control-Allow-Origin=https://x.test&Access-Control-Allow-Credentials=true"
              "&Access-Control-Expose-Headers=X-Up&X-Kept=1")
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = gw.get(target, headers=[("Origin", APP)])
        assert cors_of(r) == {"Access-Control-Allow-Origin": [APP], "Vary": ["Origin"]}
        assert r.header("X-Kept") == "1"
        r = gw.get(target, headers=[("Origin", OTHER)])
        assert cors_of(r) == {"Vary": ["Origin"]}


@pytest.mark.parametrize("upstream_vary,expected", [
    ("Accept-Encoding", "Accept-Encoding, Origin"),
    ("accept-encoding, origin", "accept-encoding, origin"),
    ("*", "*"),
])
def test_vary_is_merged_with_the_upstreams(tmp_path, upstream_vary, expected):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = gw.get("/headers?Vary=" + upstream_vary.replace(" ", "%20"), headers=[("Origin", APP)])
        assert r.headers_named("Vary") == [expected]


# ---- preflights ------------------------------------------------------------------------------

def test_preflight_is_answered_with_204_and_defaults(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = preflight(gw, req_headers="X-Token, Content-Type")
        assert r.status == 204
        assert r.body == b""
        assert r.header("Content-Length") is None
        assert cors_of(r) == {
            "Access-Control-Allow-Origin": [APP],
            "Access-Control-Allow-Methods": ["GET,HEAD,PUT,PATCH,POST,DELETE"],
            "Access-Control-Allow-Headers": ["X-Token, Content-Type"],
            "Access-Control-Max-Age": ["3600"],
            "Vary": ["Origin, Access-Control-Request-Headers"],
        }
        assert up.requests == []


def test_preflight_without_request_headers_echoes_none(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = preflight(gw)
        assert r.status == 204
        assert "Access-Control-Allow-Headers" not in cors_of(r)


@pytest.mark.valgrind
def test_preflight_with_configured_methods_headers_and_max_age(tmp_path):
    conf = {"origins": [APP], "methods": ["GET", "POST"], "headers": ["X-Token", "Content-Type"],
            "max_age": "90s", "credentials": True}
    with plugin_gateway(tmp_path, "cors", conf) as (gw, up):
        r = preflight(gw, method="POST", req_headers="X-Other")
        assert r.status == 204
        assert cors_of(r) == {
            "Access-Control-Allow-Origin": [APP],
            "Access-Control-Allow-Credentials": ["true"],
            "Access-Control-Allow-Methods": ["GET,POST"],
            "Access-Control-Allow-Headers": ["X-Token,Content-Type"],
            "Access-Control-Max-Age": ["90"],
            "Vary": ["Origin"],
        }


@pytest.mark.parametrize("max_age,seconds", [("0s", "0"), ("1500ms", "1"), (7200000, "7200")])
def test_max_age_is_sent_in_seconds(tmp_path, max_age, seconds):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP], "max_age": max_age}) as (gw, up):
        assert preflight(gw).headers_named("Access-Control-Max-Age") == [seconds]


def test_empty_headers_list_allows_no_request_headers(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP], "headers": []}) as (gw, up):
        r = preflight(gw, req_headers="X-Token")
        assert r.status == 204
        assert "Access-Control-Allow-Headers" not in cors_of(r)
        assert r.headers_named("Vary") == ["Origin"]


def test_preflight_from_a_disallowed_origin_gets_204_without_cors_headers(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = preflight(gw, origin=OTHER, req_headers="X-Token")
        assert r.status == 204
        # whatever headers it asks for, this origin gets the same answer
        assert cors_of(r) == {"Vary": ["Origin"]}
        assert up.requests == []


def test_wildcard_preflight(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": ["*"], "headers": ["X-Token"]}) as (gw, up):
        assert cors_of(preflight(gw, origin=OTHER)) == {
            "Access-Control-Allow-Origin": ["*"],
            "Access-Control-Allow-Methods": ["GET,HEAD,PUT,PATCH,POST,DELETE"],
            "Access-Control-Allow-Headers": ["X-Token"],
            "Access-Control-Max-Age": ["3600"],
        }


def test_options_without_request_method_is_an_actual_request(tmp_path):
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}) as (gw, up):
        r = gw.request("OPTIONS", "/echo", [("Origin", APP)])
        assert r.status == 200
        assert cors_of(r) == {"Access-Control-Allow-Origin": [APP], "Vary": ["Origin"]}
        assert [q.method for q in up.requests] == ["OPTIONS"]


def test_preflight_continue_sends_preflights_upstream(tmp_path):
    conf = {"origins": [APP], "preflight_continue": True, "expose_headers": ["X-Total"]}
    with plugin_gateway(tmp_path, "cors", conf) as (gw, up):
        r = preflight(gw, req_headers="X-Token")
        assert r.status == 200
        assert cors_of(r) == {"Access-Control-Allow-Origin": [APP],
                              "Access-Control-Expose-Headers": ["X-Total"], "Vary": ["Origin"]}
        (seen,) = up.requests
        assert (seen.method, seen.header("Access-Control-Request-Method")) == ("OPTIONS", "PUT")


@pytest.mark.valgrind
def test_preflight_is_answered_before_auth_and_auth_errors_carry_cors_headers(tmp_path):
    # probe-a stands in for an auth plugin that answers 401 in its access phase
    auth = {"probe-a": {"tag": "auth", "answer_in": "access", "answer_status": 401}}
    with plugin_gateway(tmp_path, "cors", {"origins": [APP]}, before=[auth],
                        plugin_dirs=[SPEC_PLUGINS]) as (gw, up):
        r = preflight(gw)
        assert r.status == 204
        assert r.headers_named("Access-Control-Allow-Origin") == [APP]
        r = gw.get("/echo", headers=[("Origin", APP)])
        assert r.status == 401
        assert r.body == b"answered by auth in access"
        assert cors_of(r) == {"Access-Control-Allow-Origin": [APP], "Vary": ["Origin"]}
        assert up.requests == []


# ---- config errors -------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - cors: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (cors)" % path


ORIGIN_RULE = r"must match ^(\*|null|[A-Za-z][-+.A-Za-z0-9]*://[^/?#, ]+)$"
TOKEN_RULE = "must match ^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"


@pytest.mark.parametrize("yaml,message", [
    ("{}", ': must set at least one of "origins", "origin_patterns"'),
    ('{origins: ["https://app.example.com/"]}', ".origins[0]: " + ORIGIN_RULE),
    ('{origins: ["app.example.com"]}', ".origins[0]: " + ORIGIN_RULE),
    ('{origins: ["https://a.test, https://b.test"]}', ".origins[0]: " + ORIGIN_RULE),
    ('{origin_patterns: ["https://(a|b"]}',
     ': origin_patterns[0]: invalid pattern "https://(a|b": Unmatched ( or \\('),
    ('{origin_patterns: [""]}', ".origin_patterns[0]: must be at least 1 character"),
    ('{origins: ["*"], methods: []}', ".methods: must have at least 1 item"),
    ('{origins: ["*"], methods: ["GET POST"]}', ".methods[0]: " + TOKEN_RULE),
    ('{origins: ["*"], headers: ["X-A: b"]}', ".headers[0]: " + TOKEN_RULE),
    ('{origins: ["*"], expose_headers: "X-Total"}', ".expose_headers: expected array, got string"),
    ('{origins: ["*"], max_age: soon}', '.max_age: invalid duration "soon"'),
    ('{origins: ["*"], credentials: 1}', ".credentials: expected boolean, got integer"),
    ('{origins: ["*"], preflight_continue: "no"}', ".preflight_continue: expected boolean, got string"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]
