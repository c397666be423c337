"""TLS on the listener and to upstreams (certificates made at test time)."""

import pytest

import expect
import tls
from configs import proxy
from mock_upstream import MockUpstream


@pytest.fixture
def tls_upstream(certs):
    m = MockUpstream("secure", tls=certs.server_context())
    yield m
    m.stop()


def test_tls_listener_serves_https(gateway_factory, upstream, certs):
    cfg = proxy(upstream)
    cfg["listen"] = [{"addr": "127.0.0.1:@PORT@", "tls": {"cert": str(certs.cert), "key": str(certs.key)}}]
    gw = gateway_factory(cfg, client_tls=certs.client_context(), server_hostname="localhost")
    assert gw.url == "https://127.0.0.1:%d" % gw.port
    with gw.conn() as c:
        for i in range(3):
            e = expect.echo(c.request("GET", "/echo/%d" % i, host="localhost"))
            assert e["target"] == "/echo/%d" % i
            assert expect.values(e, "X-Forwarded-Proto") == ["https"]
    assert upstream.count() == 3


def _tls_opts(**kw):
    return {"tls": kw}


def test_upstream_tls_verified_with_test_ca(gateway_factory, tls_upstream, certs):
    gw = gateway_factory(proxy(tls_upstream, up=_tls_opts(verify=True, ca_file=str(certs.ca_cert))))
    r = gw.get("/echo/tls")
    assert (r.status, r.header("X-Upstream")) == (200, "secure")
    assert expect.echo(r)["target"] == "/echo/tls"


def test_upstream_tls_sends_configured_sni(gateway_factory, tls_upstream, certs):
    gw = gateway_factory(proxy(tls_upstream, up=_tls_opts(verify=True, ca_file=str(certs.ca_cert),
                                                          sni="upstream.test")))
    for i in range(3):
        assert gw.get("/echo/%d" % i).status == 200
    assert len(tls_upstream.sni_names) >= 1
    assert set(tls_upstream.sni_names) == {"upstream.test"}


def test_upstream_cert_for_another_name_is_502(gateway_factory, tmp_path):
    other = tls.make_certs(tmp_path / "other", name="other.test", local=False)
    with MockUpstream("wrong-name", tls=other.server_context()) as m:
        gw = gateway_factory(proxy(m, up=_tls_opts(verify=True, ca_file=str(other.ca_cert), sni="upstream.test")))
        expect.gateway_error(gw.get("/echo"), 502, "upstream_error", "api_error")
        assert m.count() == 0


def test_upstream_cert_from_unknown_ca_is_502(gateway_factory, tls_upstream, tmp_path):
    stranger = tls.make_certs(tmp_path / "stranger", ca_name="some other CA")
    gw = gateway_factory(proxy(tls_upstream, up=_tls_opts(verify=True, ca_file=str(stranger.ca_cert))))
    expect.gateway_error(gw.get("/echo"), 502, "upstream_error", "api_error")
    assert tls_upstream.count() == 0


def test_verification_is_on_by_default(gateway_factory, tls_upstream):
    # The test CA is not in the system store.
    gw = gateway_factory(proxy(tls_upstream))
    expect.gateway_error(gw.get("/echo"), 502, "upstream_error", "api_error")
    assert tls_upstream.count() == 0


def test_verify_off_accepts_unknown_ca(gateway_factory, tls_upstream):
    gw = gateway_factory(proxy(tls_upstream, up=_tls_opts(verify=False)))
    r = gw.get("/echo/unverified")
    assert (r.status, r.header("X-Upstream")) == (200, "secure")
