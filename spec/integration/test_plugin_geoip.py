"""geoip: country/continent/ASN lookups in MaxMind databases written at test
time (spec/helpers/geoip_db.py), the allow/deny lists, `unknown`, the
upstream headers, reloads that pick up a replaced database, and config
errors.

The specs' client is 127.0.0.1, which is a trusted proxy in most configs
here, so the address that counts is the one in X-Forwarded-For.
"""

import os
import subprocess
import textwrap

import pytest

import expect
from geoip_db import Net, write_db
from plugin_harness import plugin_gateway
from scale import scaled

SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")

DE = "198.51.100.7"         # DE, EU, AS64500
US = "203.0.113.9"          # US, NA, AS64501
JP = "192.0.2.33"           # JP, AS, no ASN
FR = "2001:db8:1::5"        # FR, EU, AS64502
BR = "2001:db8:2::5"        # BR, SA, AS64503
CA = "2001:db8:3::5"        # registered_country CA only, NA
ASN_ONLY = "100.64.1.1"     # AS64504, no country or continent
NOWHERE = "10.1.1.1"        # not in the database

NETWORKS = [
    Net("198.51.100.0/24", country="DE", continent="EU", asn=64500, asn_org="Example DE"),
    Net("203.0.113.0/24", country="US", continent="NA", asn=64501, asn_org="Example US"),
    Net("192.0.2.0/24", country="JP", continent="AS"),
    Net("2001:db8:1::/48", country="FR", continent="EU", asn=64502, asn_org="Exemple FR"),
    Net("2001:db8:2::/48", country="BR", continent="SA", asn=64503),
    Net("2001:db8:3::/48", registered_country="CA", continent="NA"),
    Net("100.64.0.0/10", asn=64504, asn_org="Only ASN"),
]


@pytest.fixture
def db(tmp_path):
    return str(write_db(tmp_path / "country.mmdb", NETWORKS))


def conf(db, **kw):
    c = {"database": db, "trusted_proxies": ["127.0.0.1/32"]}
    c.update(kw)
    return c


def via(ip, *extra):
    return [("X-Forwarded-For", ip)] + list(extra)


def geo_headers(resp):
    echo = expect.echo(resp)
    return {name: expect.values(echo, name) for name in ("X-Geo-Country", "X-Geo-Continent", "X-Geo-ASN")}


def forbidden(resp, message):
    err = expect.gateway_error(resp, 403, "geo_forbidden", "permission_error")
    assert err["message"] == message


# ---- lookups and headers -----------------------------------------------------------

@pytest.mark.parametrize("ip,country,continent,asn", [
    (DE, "DE", "EU", "64500"),
    (US, "US", "NA", "64501"),
    (JP, "JP", "AS", None),
    (FR, "FR", "EU", "64502"),
    (BR, "BR", "SA", "64503"),
    (CA, "CA", "NA", None),            # from registered_country
    (ASN_ONLY, None, None, "64504"),
    ("::ffff:" + DE, "DE", "EU", "64500"),
    ("[" + FR + "]:443", "FR", "EU", "64502"),
])
def test_upstream_gets_what_the_database_knows(tmp_path, db, ip, country, continent, asn):
    with plugin_gateway(tmp_path, "geoip", conf(db)) as (gw, up):
        got = geo_headers(gw.get("/echo", headers=via(ip)))
        assert got == {"X-Geo-Country": [country] if country else [],
                       "X-Geo-Continent": [continent] if continent else [],
                       "X-Geo-ASN": [asn] if asn else []}


def test_client_sent_geo_headers_are_replaced_or_removed(tmp_path, db):
    spoof = [("X-Geo-Country", "XX"), ("X-Geo-Continent", "XX"), ("X-Geo-ASN", "1")]
    with plugin_gateway(tmp_path, "geoip", conf(db)) as (gw, up):
        assert geo_headers(gw.get("/echo", headers=via(DE, *spoof))) == {
            "X-Geo-Country": ["DE"], "X-Geo-Continent": ["EU"], "X-Geo-ASN": ["64500"]}
        assert geo_headers(gw.get("/echo", headers=via(NOWHERE, *spoof))) == {
            "X-Geo-Country": [], "X-Geo-Continent": [], "X-Geo-ASN": []}


def test_headers_false_sends_nothing_and_leaves_client_headers_alone(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, headers=False)) as (gw, up):
        assert geo_headers(gw.get("/echo", headers=via(DE, ("X-Geo-Country", "XX")))) == {
            "X-Geo-Country": ["XX"], "X-Geo-Continent": [], "X-Geo-ASN": []}


def test_later_plugins_read_the_result_from_the_context(tmp_path, db):
    after = [{"probe-a": {"tag": "a", "read_ctx": "geo.country"}},
             {"probe-b": {"tag": "b", "read_ctx": "geo.asn_org"}}]
    with plugin_gateway(tmp_path, "geoip", conf(db), after=after[:1], plugin_dirs=[SPEC_PLUGINS]) as (gw, up):
        assert expect.values(expect.echo(gw.get("/echo", headers=via(FR))), "X-Ctx") == ["FR"]
        assert expect.values(expect.echo(gw.get("/echo", headers=via(NOWHERE))), "X-Ctx") == ["(none)"]
    with plugin_gateway(tmp_path, "geoip", conf(db), after=after[1:], plugin_dirs=[SPEC_PLUGINS]) as (gw, up):
        assert expect.values(expect.echo(gw.get("/echo", headers=via(FR))), "X-Ctx") == ["Exemple FR"]


def test_separate_asn_database(tmp_path, db):
    asn_db = str(write_db(tmp_path / "asn.mmdb", [Net("198.51.100.0/24", asn=65000, asn_org="Other")],
                          database_type="GeoLite2-ASN"))
    with plugin_gateway(tmp_path, "geoip", conf(db, asn_database=asn_db)) as (gw, up):
        assert geo_headers(gw.get("/echo", headers=via(DE))) == {
            "X-Geo-Country": ["DE"], "X-Geo-Continent": ["EU"], "X-Geo-ASN": ["65000"]}
        # the ASN comes only from asn_database once it is set
        assert geo_headers(gw.get("/echo", headers=via(US)))["X-Geo-ASN"] == []


def test_without_trusted_proxies_the_peer_is_looked_up(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", {"database": db, "unknown": "deny"}) as (gw, up):
        forbidden(gw.get("/echo", headers=via(DE)), "the location of your IP address is unknown")
        assert up.requests == []


def test_ipv6_client_in_an_ipv4_database_is_unknown(tmp_path):
    v4 = str(write_db(tmp_path / "v4.mmdb", [Net("198.51.100.0/24", country="DE", continent="EU")],
                      ip_version=4))
    with plugin_gateway(tmp_path, "geoip", conf(v4)) as (gw, up):
        assert geo_headers(gw.get("/echo", headers=via(DE)))["X-Geo-Country"] == ["DE"]
        assert geo_headers(gw.get("/echo", headers=via(FR)))["X-Geo-Country"] == []
    with plugin_gateway(tmp_path, "geoip", conf(v4, unknown="deny")) as (gw, up):
        forbidden(gw.get("/echo", headers=via(FR)), "the location of your IP address is unknown")


# ---- allow / deny ---------------------------------------------------------------------------

def statuses(gw, *ips):
    return [gw.get("/echo", headers=via(ip)).status for ip in ips]


def test_allow_countries(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, allow_countries=["DE", "fr"])) as (gw, up):
        assert statuses(gw, DE, FR) == [200, 200]
        forbidden(gw.get("/echo", headers=via(US)), "requests from country US are not allowed")
        assert len(up.requests) == 2


def test_deny_countries(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, deny_countries=["US", "BR"])) as (gw, up):
        assert statuses(gw, DE, FR, JP, NOWHERE) == [200, 200, 200, 200]
        forbidden(gw.get("/echo", headers=via(US)), "requests from country US are not allowed")
        forbidden(gw.get("/echo", headers=via(BR)), "requests from country BR are not allowed")


def test_allow_continents(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, allow_continents=["EU", "NA"])) as (gw, up):
        assert statuses(gw, DE, US, FR, CA) == [200, 200, 200, 200]
        forbidden(gw.get("/echo", headers=via(JP)), "requests from continent AS are not allowed")


def test_deny_continents(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, deny_continents=["SA"])) as (gw, up):
        assert statuses(gw, DE, JP) == [200, 200]
        forbidden(gw.get("/echo", headers=via(BR)), "requests from continent SA are not allowed")


def test_allow_asns(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, allow_asns=[64500, 64502])) as (gw, up):
        assert statuses(gw, DE, FR, JP) == [200, 200, 200]   # JP has no ASN: unknown is allowed
        forbidden(gw.get("/echo", headers=via(US)), "requests from AS64501 are not allowed")


def test_deny_asns(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, deny_asns=[64503, 64504])) as (gw, up):
        assert statuses(gw, DE, US) == [200, 200]
        forbidden(gw.get("/echo", headers=via(BR)), "requests from AS64503 are not allowed")
        forbidden(gw.get("/echo", headers=via(ASN_ONLY)), "requests from AS64504 are not allowed")


@pytest.mark.valgrind
def test_deny_wins_and_every_allow_list_must_agree(tmp_path, db):
    c = conf(db, allow_continents=["EU"], deny_countries=["FR"], allow_asns=[64500, 64502])
    with plugin_gateway(tmp_path, "geoip", c) as (gw, up):
        assert statuses(gw, DE) == [200]
        forbidden(gw.get("/echo", headers=via(FR)), "requests from country FR are not allowed")
        forbidden(gw.get("/echo", headers=via(US)), "requests from continent NA are not allowed")


# ---- unknown ---------------------------------------------------------------------------------

def test_unknown_allow_is_the_default(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, allow_countries=["DE"])) as (gw, up):
        assert statuses(gw, NOWHERE, ASN_ONLY) == [200, 200]


def test_unknown_deny(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, unknown="deny")) as (gw, up):
        assert statuses(gw, DE, JP) == [200, 200]
        forbidden(gw.get("/echo", headers=via(NOWHERE)), "the location of your IP address is unknown")
        # an unreadable forwarded address cannot be located either
        forbidden(gw.get("/echo", headers=via("not-an-ip")), "the location of your IP address is unknown")


def test_unknown_deny_refuses_a_missing_value_an_allow_list_needs(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, unknown="deny", allow_countries=["DE"])) as (gw, up):
        forbidden(gw.get("/echo", headers=via(ASN_ONLY)), "the country of your IP address is unknown")
    with plugin_gateway(tmp_path, "geoip", conf(db, unknown="deny", allow_continents=["AS"])) as (gw, up):
        assert statuses(gw, JP) == [200]
        forbidden(gw.get("/echo", headers=via(ASN_ONLY)), "the continent of your IP address is unknown")
    with plugin_gateway(tmp_path, "geoip", conf(db, unknown="deny", allow_asns=[64500])) as (gw, up):
        forbidden(gw.get("/echo", headers=via(JP)), "the network of your IP address is unknown")
    # deny lists never need a value: what is unknown is not on them
    with plugin_gateway(tmp_path, "geoip", conf(db, unknown="deny", deny_asns=[64501])) as (gw, up):
        assert statuses(gw, JP) == [200]


# ---- reloads ----------------------------------------------------------------------------------

@pytest.mark.valgrind
def test_reload_picks_up_a_replaced_database(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db, deny_countries=["IT"])) as (gw, up):
        assert geo_headers(gw.get("/echo", headers=via(DE)))["X-Geo-Country"] == ["DE"]
        write_db(db, [Net("198.51.100.0/24", country="IT", continent="EU", asn=64999)])
        # the running config keeps the database it opened
        assert geo_headers(gw.get("/echo", headers=via(DE)))["X-Geo-Country"] == ["DE"]
        assert gw.reload().ok
        forbidden(gw.get("/echo", headers=via(DE)), "requests from country IT are not allowed")


def test_a_corrupt_database_fails_the_reload_and_the_old_one_stays(tmp_path, db):
    with plugin_gateway(tmp_path, "geoip", conf(db)) as (gw, up):
        tmp = db + ".new"
        with open(tmp, "wb") as f:
            f.write(b"this is not a maxmind database")
        os.replace(tmp, db)
        res = gw.reload()
        assert not res.ok
        assert ('(geoip): database: cannot open "%s": The MaxMind DB file contains invalid metadata' % db
                in res.output), res.output
        assert geo_headers(gw.get("/echo", headers=via(DE)))["X-Geo-Country"] == ["DE"]


# ---- config errors -------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - geoip: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (geoip)" % path


def test_missing_database_file(sluice_bin, tmp_path):
    missing = tmp_path / "nope.mmdb"
    proc, where = check(sluice_bin, tmp_path, '{database: "%s"}' % missing)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s: database: cannot open "%s": Error opening the specified MaxMind DB file '
        '(No such file or directory)' % (where, missing)]


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_corrupt_database_file(sluice_bin, tmp_path, content):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(content)
    proc, where = check(sluice_bin, tmp_path, '{database: "%s"}' % bad)
    assert proc.returncode == 1
    reason = ("An attempt to read data from the MaxMind DB file failed (Invalid argument)" if not content
              else "The MaxMind DB file contains invalid metadata")
    assert proc.stderr.splitlines() == ['%s: database: cannot open "%s": %s' % (where, bad, reason)]


def test_missing_asn_database_file(sluice_bin, tmp_path, db):
    missing = tmp_path / "asn.mmdb"
    proc, where = check(sluice_bin, tmp_path, '{database: "%s", asn_database: "%s"}' % (db, missing))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s: asn_database: cannot open "%s": Error opening the specified MaxMind DB file '
        '(No such file or directory)' % (where, missing)]


@pytest.mark.parametrize("yaml,message", [
    ("{}", ".database: missing required field"),
    ('{allow_countries: ["DEU"]}', ".allow_countries[0]: must match ^[A-Za-z]{2}$"),
    ('{deny_countries: []}', ".deny_countries: must have at least 1 item"),
    ('{allow_continents: ["EUROPE"]}',
     '.allow_continents[0]: must be one of "AF", "AN", "AS", "EU", "NA", "OC", "SA"'),
    ("{deny_asns: [0]}", ".deny_asns[0]: must be >= 1"),
    ("{allow_asns: [4294967296]}", ".allow_asns[0]: must be <= 4294967295"),
    ('{allow_asns: ["AS1"]}', ".allow_asns[0]: expected integer, got string"),
    ("{unknown: block}", '.unknown: must be one of "allow", "deny"'),
    ('{headers: "true"}', ".headers: expected boolean, got string"),
    ('{trusted_proxies: ["10.0.0.0/40"]}', ': trusted_proxies[0]: invalid CIDR "10.0.0.0/40"'),
])
def test_bad_config(sluice_bin, tmp_path, db, yaml, message):
    if yaml != "{}":
        yaml = '{database: "%s", %s' % (db, yaml[1:])
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]
