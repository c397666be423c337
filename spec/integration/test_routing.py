"""Route matching as a client sees it: which upstream answers which request.

Each route gets its own mock upstream, named after the route, so the
X-Upstream response header says which route matched.
"""

import pytest

import expect
from configs import route


def which(gw, target, method="GET", headers=(), host="sluice.test"):
    r = gw.request(method, target, headers, host=host)
    if r.status != 200:
        return r.status
    return r.header("X-Upstream")


@pytest.fixture
def mocks(upstream_factory):
    made = {}

    def get(name):
        if name not in made:
            made[name] = upstream_factory(name)
        return made[name]
    return get


def test_exact_beats_prefix_and_prefix_covers_its_bare_path(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("prefix", mocks("prefix"), ["/api/*"]),
        route("exact", mocks("exact"), ["/api/users"]),
    ]})
    assert which(gw, "/api/users") == "exact"
    assert which(gw, "/api/users?limit=5") == "exact"
    assert which(gw, "/api/users/7") == "prefix"
    assert which(gw, "/api/") == "prefix"
    assert which(gw, "/api") == "prefix"
    assert which(gw, "/apix") == 404
    assert which(gw, "/") == 404


def test_longest_prefix_wins_whatever_the_order(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("short", mocks("short"), ["/api/*"]),
        route("long", mocks("long"), ["/api/v2/*"]),
    ]})
    assert which(gw, "/api/v2/items") == "long"
    assert which(gw, "/api/v2") == "long"
    assert which(gw, "/api/v2x") == "short"
    assert which(gw, "/api/v1/items") == "short"


def test_prefix_beats_regex_and_regex_beats_pathless(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("any", mocks("any")),
        route("regex", mocks("regex"), ["~ ^/api/[0-9]+$", "~ ^/u/[0-9]+$"]),
        route("prefix", mocks("prefix"), ["/api/*"]),
        route("exact", mocks("exact"), ["/u/0"]),
    ]})
    assert which(gw, "/api/12") == "prefix"
    assert which(gw, "/u/12") == "regex"
    assert which(gw, "/u/0") == "exact"
    assert which(gw, "/u/x") == "any"
    assert which(gw, "/elsewhere") == "any"


def test_regexes_keep_declaration_order(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("first", mocks("first"), ["~ ^/r/[a-z]+$"]),
        route("second", mocks("second"), ["~ ^/r/.*$"]),
    ]})
    assert which(gw, "/r/abc") == "first"
    assert which(gw, "/r/ABC") == "second"


def test_hosts_case_port_and_wildcard(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("api", mocks("api"), hosts=["api.test"]),
        route("wild", mocks("wild"), hosts=["*.example.com"]),
        route("any", mocks("any")),
    ]})
    assert which(gw, "/", host="api.test") == "api"
    assert which(gw, "/", host="API.Test") == "api"
    assert which(gw, "/", host="api.test:8080") == "api"
    assert which(gw, "/", host="a.example.com") == "wild"
    assert which(gw, "/", host="x.y.EXAMPLE.com:443") == "wild"
    assert which(gw, "/", host="example.com") == "any"
    assert which(gw, "/", host="api.test.evil") == "any"
    assert which(gw, "/", host="notexample.com") == "any"


def test_methods(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("writes", mocks("writes"), ["/items"], methods=["POST", "PUT"]),
        route("any", mocks("any"), ["/*"]),
    ]})
    assert which(gw, "/items", "POST") == "writes"
    assert which(gw, "/items", "PUT") == "writes"
    assert which(gw, "/items", "GET") == "any"
    assert which(gw, "/items", "DELETE") == "any"


def test_method_mismatch_falls_through_to_next_candidate(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("exact_post", mocks("exact_post"), ["/x"], methods=["POST"]),
        route("prefix", mocks("prefix"), ["/*"]),
    ]})
    assert which(gw, "/x", "POST") == "exact_post"
    assert which(gw, "/x", "GET") == "prefix"


def test_headers_exact_and_regex(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("prod", mocks("prod"), headers={"X-Env": "prod"}),
        route("versioned", mocks("versioned"), headers={"X-Version": "~ ^v[0-9]+$"}),
        route("any", mocks("any")),
    ]})
    assert which(gw, "/", headers=[("X-Env", "prod")]) == "prod"
    assert which(gw, "/", headers=[("x-env", "prod")]) == "prod"
    assert which(gw, "/", headers=[("X-Env", "Prod")]) == "any"
    assert which(gw, "/", headers=[("X-Env", "production")]) == "any"
    assert which(gw, "/", headers=[("X-Version", "v12")]) == "versioned"
    assert which(gw, "/", headers=[("X-Version", "12")]) == "any"
    assert which(gw, "/") == "any"


def test_all_predicates_must_pass(gateway_factory, mocks):
    gw = gateway_factory({"routes": [
        route("strict", mocks("strict"), ["/s/*"], hosts=["api.test"], methods=["GET"],
              headers={"X-Env": "prod"}),
        route("any", mocks("any")),
    ]})
    good = [("X-Env", "prod")]
    assert which(gw, "/s/1", "GET", good, host="api.test") == "strict"
    assert which(gw, "/s/1", "POST", good, host="api.test") == "any"
    assert which(gw, "/s/1", "GET", [], host="api.test") == "any"
    assert which(gw, "/s/1", "GET", good, host="other.test") == "any"
    assert which(gw, "/t/1", "GET", good, host="api.test") == "any"


def test_no_route_is_a_json_404_and_keeps_the_connection(gateway_factory, mocks):
    up = mocks("api")
    gw = gateway_factory({"routes": [route("api", up, ["/api/*"])]})
    with gw.conn() as c:
        r = c.request("GET", "/nope")
        err = expect.gateway_error(r, 404, "route_not_found", "not_found_error")
        assert expect.REQUEST_ID.match(err["request_id"])
        r = c.request("GET", "/nope", [("X-Request-Id", "client-chosen-1")])
        err = expect.gateway_error(r, 404, "route_not_found", "not_found_error")
        assert err["request_id"] == "client-chosen-1"
        r = c.request("GET", "/api/ok")
        assert (r.status, r.header("X-Upstream")) == (200, "api")
    assert up.count() == 1


def test_matching_uses_the_normalised_path_upstream_gets_the_raw_target(gateway_factory, mocks):
    api, admin = mocks("api"), mocks("admin")
    gw = gateway_factory({"routes": [
        route("api", api, ["/api/*"]),
        route("admin", admin, ["/admin"]),
    ]})
    cases = [
        ("/api/../admin", "admin"),
        ("/api/%2e%2e/admin", "admin"),
        ("/api/%2E%2E/admin?x=1", "admin"),
        ("/api/./x", "api"),
        ("//api//x", "api"),
        ("/%61pi/x", "api"),
        ("/api/a%2Fb", "api"),
        ("/admin/", 404),
        ("/admin/x/..", 404),
    ]
    for target, expected in cases:
        r = gw.get(target)
        if expected == 404:
            expect.gateway_error(r, 404, "route_not_found", "not_found_error")
            continue
        assert r.header("X-Upstream") == expected, target
        assert expect.echo(r)["target"] == target


def test_dot_segments_cannot_escape_a_prefix(gateway_factory, mocks):
    api = mocks("api")
    gw = gateway_factory({"routes": [route("api", api, ["/api/*"])]})
    expect.gateway_error(gw.get("/api/../admin"), 404, "route_not_found", "not_found_error")
    expect.gateway_error(gw.get("/api/%2e%2e/admin"), 404, "route_not_found", "not_found_error")
    assert api.count() == 0
