"""Assertions several specs share: the gateway's error body, and what the
upstream saw of the client's request."""

import json
import re

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")

# Headers the gateway adds on the way to the upstream (or may send itself:
# Connection for its keep-alive, Content-Length for the buffered body). Host is
# compared on its own because a proxy may move it to the front.
GATEWAY_ADDED = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id",
                 "connection", "content-length", "host"}

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
              "upgrade", "proxy-authorization"}


def gateway_error(resp, status, code, type_, close=False):
    """resp is an error the gateway generated itself; returns the error object."""
    assert resp.status == status, resp
    assert resp.header("Content-Type") == "application/json", resp
    body = json.loads(resp.body)
    assert list(body) == ["error"], body
    err = body["error"]
    assert sorted(err) == ["code", "message", "request_id", "type"], err
    assert (err["code"], err["type"]) == (code, type_), err
    assert isinstance(err["message"], str) and err["message"] != "", err
    assert resp.headers_named("X-Request-Id") == [err["request_id"]], resp
    if close:
        assert resp.header("Connection") == "close", resp
    return err


def echo(resp):
    """The mock upstream's echo of the request, from a 200 response."""
    assert resp.status == 200, resp
    return json.loads(resp.body)


def forwarded(echo_body):
    """The client's headers as the upstream got them, minus what the gateway adds."""
    return [(n, v) for n, v in echo_body["headers"] if n.lower() not in GATEWAY_ADDED]


def values(echo_body, name):
    name = name.lower()
    return [v for n, v in echo_body["headers"] if n.lower() == name]


def without_hop_by_hop(headers):
    """headers minus hop-by-hop ones, including those a Connection header names."""
    named = set()
    for n, v in headers:
        if n.lower() == "connection":
            named |= {t.strip().lower() for t in v.split(",") if t.strip()}
    drop = HOP_BY_HOP | named
    return [(n, v) for n, v in headers if n.lower() not in drop]
