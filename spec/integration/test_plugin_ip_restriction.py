"""ip-restriction: allow/deny CIDR lists by client address, deny winning,
trusted proxies and X-Forwarded-For, IPv4 and IPv6, and config errors.

The loopback network gives the specs more than one client address: a
connection bound to 127.0.0.2 reaches a gateway on 127.0.0.1 from that
address. Addresses behind a proxy come from the documentation ranges
(198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
"""

import socket
import subprocess
import textwrap

import pytest

import expect
import raw
from plugin_harness import plugin_gateway
from scale import scaled

DEFAULT_MESSAGE = "your IP address is not allowed"


def get_from(gw, source_ip, target="/echo", headers=()):
    with gw.conn(source_ip=source_ip) as c:
        return c.request("GET", target, headers)


def forbidden(resp, message=DEFAULT_MESSAGE):
    err = expect.gateway_error(resp, 403, "ip_forbidden", "permission_error")
    assert err["message"] == message


def xff(*values):
    return [("X-Forwarded-For", v) for v in values]


# ---- allow / deny ------------------------------------------------------------------

@pytest.mark.valgrind
def test_allow_list_lets_only_its_addresses_through(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", {"allow": ["127.0.0.1/32", "10.0.0.0/8"]}) as (gw, up):
        assert get_from(gw, "127.0.0.1", "/echo/in").status == 200
        forbidden(get_from(gw, "127.0.0.2", "/echo/out"))
        assert [r.path for r in up.requests] == ["/echo/in"]


def test_deny_list_alone_lets_everyone_else_through(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", {"deny": ["127.0.0.2"]}) as (gw, up):
        assert get_from(gw, "127.0.0.1").status == 200
        assert get_from(gw, "127.0.0.3").status == 200
        forbidden(get_from(gw, "127.0.0.2", "/echo/denied"))
        assert [r.path for r in up.requests] == ["/echo", "/echo"]


def test_deny_wins_over_allow(tmp_path):
    conf = {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.2/32"]}
    with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
        assert get_from(gw, "127.0.0.1").status == 200
        forbidden(get_from(gw, "127.0.0.2"))
        assert len(up.requests) == 1


def test_host_bits_below_the_prefix_are_ignored(tmp_path):
    # "127.0.0.77/24" is read as 127.0.0.0/24, as nginx and others do.
    with plugin_gateway(tmp_path, "ip-restriction", {"allow": ["127.0.0.77/24"]}) as (gw, up):
        assert get_from(gw, "127.0.0.200").status == 200
        forbidden(get_from(gw, "127.0.1.1"))


def test_message_option(tmp_path):
    conf = {"allow": ["10.0.0.0/8"], "message": "office network only"}
    with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
        r = gw.get("/echo", headers=[("X-Request-Id", "ipr-msg-1")])
        err = expect.gateway_error(r, 403, "ip_forbidden", "permission_error")
        assert err == {"type": "permission_error", "code": "ip_forbidden",
                       "message": "office network only", "request_id": "ipr-msg-1"}
        assert up.requests == []


def test_x_forwarded_for_is_ignored_without_trusted_proxies(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", {"allow": ["198.51.100.0/24"]}) as (gw, up):
        forbidden(gw.get("/echo", headers=xff("198.51.100.7")))
        assert up.requests == []


# ---- trusted proxies -------------------------------------------------------------------

TRUSTED = {"allow": ["198.51.100.0/24", "2001:db8:1::/48"], "trusted_proxies": ["127.0.0.1/32"]}


def test_behind_a_trusted_proxy_the_forwarded_client_counts(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", TRUSTED) as (gw, up):
        assert gw.get("/echo/a", headers=xff("198.51.100.7")).status == 200
        forbidden(gw.get("/echo/b", headers=xff("203.0.113.9")))
        # the peer itself is not on the allow list: with no X-Forwarded-For it is the client
        forbidden(gw.get("/echo/c"))
        assert [r.path for r in up.requests] == ["/echo/a"]


def test_the_walk_starts_from_the_right_so_clients_cannot_spoof(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", TRUSTED) as (gw, up):
        # 198.51.100.7 was written by the client; the trusted peer appended 203.0.113.9
        forbidden(gw.get("/echo", headers=xff("198.51.100.7, 203.0.113.9")))
        assert up.requests == []


@pytest.mark.valgrind
def test_trusted_hops_are_skipped(tmp_path):
    conf = dict(TRUSTED, trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"])
    with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
        assert gw.get("/echo/1", headers=xff("203.0.113.9, 198.51.100.7, 10.1.1.1, 10.2.2.2")).status == 200
        forbidden(gw.get("/echo/2", headers=xff("198.51.100.7, 203.0.113.9, 10.1.1.1")))
        # several X-Forwarded-For headers are one list, in arrival order
        assert gw.get("/echo/3", headers=xff("203.0.113.9, 198.51.100.7", "10.1.1.1")).status == 200
        forbidden(gw.get("/echo/4", headers=xff("198.51.100.7", "203.0.113.9", "10.1.1.1")))
        assert [r.path for r in up.requests] == ["/echo/1", "/echo/3"]


def test_when_every_hop_is_trusted_the_leftmost_is_the_client(tmp_path):
    conf = {"allow": ["10.9.0.0/16"], "trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"]}
    with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
        assert gw.get("/echo/1", headers=xff("10.9.1.1, 10.1.1.1")).status == 200
        forbidden(gw.get("/echo/2", headers=xff("10.1.1.1, 10.9.1.1")))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", TRUSTED) as (gw, up):
        forbidden(get_from(gw, "127.0.0.2", headers=xff("198.51.100.7")))
        assert up.requests == []


@pytest.mark.parametrize("entry,status", [
    ("2001:db8:1::7", 200),
    ("[2001:db8:1::7]", 200),
    ("[2001:db8:1::7]:4433", 200),
    ("198.51.100.7:5555", 200),
    ("  198.51.100.7\t", 200),
    ("::ffff:198.51.100.7", 200),
    ("2001:db8:2::7", 403),
    ("203.0.113.9:80", 403),
])
def test_forwarded_address_forms(tmp_path, entry, status):
    with plugin_gateway(tmp_path, "ip-restriction", TRUSTED) as (gw, up):
        r = gw.get("/echo", headers=xff(entry))
        if status == 403:
            forbidden(r)
        else:
            assert r.status == 200


@pytest.mark.parametrize("value", ["unknown", "198.51.100.7.1", "[198.51.100.7]", "2001:db8:1::7:80x",
                                   "198.51.100.7:", "_hidden"])
def test_an_unreadable_forwarded_client_is_refused(tmp_path, value):
    # Fail closed: even a deny-only list cannot show that the client is fine.
    for conf in (TRUSTED, {"deny": ["203.0.113.0/24"], "trusted_proxies": ["127.0.0.1/32"]}):
        with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
            forbidden(gw.get("/echo", headers=xff(value)))
            assert up.requests == []


def test_empty_forwarded_slots_are_skipped(tmp_path):
    with plugin_gateway(tmp_path, "ip-restriction", TRUSTED) as (gw, up):
        assert gw.get("/echo", headers=xff("198.51.100.7, ,")).status == 200


def test_ipv6_cidr_does_not_match_ipv4(tmp_path):
    conf = {"deny": ["::/0"], "trusted_proxies": ["127.0.0.1/32"]}
    with plugin_gateway(tmp_path, "ip-restriction", conf) as (gw, up):
        assert gw.get("/echo", headers=xff("198.51.100.7")).status == 200
        forbidden(gw.get("/echo", headers=xff("2001:db8::1")))


# ---- a real IPv6 peer ---------------------------------------------------------------------

def get_over_ipv6(port, target="/echo"):
    sock = socket.create_connection(("::1", port), timeout=scaled(5))
    # raw.Conn only dials IPv4; hand it the IPv6 socket to parse the answer.
    c = raw.Conn.__new__(raw.Conn)
    c.timeout, c.sock, c.buf, c.eof = scaled(5), sock, bytearray(), False
    with c:
        c.send(raw.build_request("GET", target))
        return c.read_response()


@pytest.mark.parametrize("conf,v6_status", [
    ({"allow": ["::1/128"]}, 200),
    ({"deny": ["::1"]}, 403),
    ({"allow": ["127.0.0.0/8"]}, 403),
])
def test_ipv6_peer(tmp_path, conf, v6_status):
    with plugin_gateway(tmp_path, "ip-restriction", conf,
                        listen=["127.0.0.1:@PORT@", "[::1]:@PORT_V6@"]) as (gw, up):
        r = get_over_ipv6(gw.ports["V6"])
        if v6_status == 403:
            forbidden(r)
        else:
            assert r.status == 200


# ---- config errors ---------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - ip-restriction: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (ip-restriction)" % path


@pytest.mark.parametrize("yaml,message", [
    ('{allow: ["10.0.0.0/8", "10.0.0.300/8"]}', ': allow[1]: invalid CIDR "10.0.0.300/8"'),
    ('{deny: ["10.0.0.0/33"]}', ': deny[0]: invalid CIDR "10.0.0.0/33"'),
    ('{deny: ["2001:db8::/129"]}', ': deny[0]: invalid CIDR "2001:db8::/129"'),
    ('{deny: ["example.com"]}', ': deny[0]: invalid CIDR "example.com"'),
    ('{deny: ["10.0.0.0/"]}', ': deny[0]: invalid CIDR "10.0.0.0/"'),
    ('{deny: [" 10.0.0.1"]}', ': deny[0]: invalid CIDR " 10.0.0.1"'),
    ('{deny: ["10.0.0.1"], trusted_proxies: ["10.0.0.0/8", "proxy"]}',
     ': trusted_proxies[1]: invalid CIDR "proxy"'),
    ("{}", ': must set at least one of "allow", "deny"'),
    ("{allow: []}", ".allow: must have at least 1 item"),
    ("{allow: 10.0.0.0/8}", ".allow: expected array, got string"),
    ("{deny: [10]}", ".deny[0]: expected string, got integer"),
    ('{deny: ["10.0.0.1"], message: ""}', ".message: must be at least 1 character"),
    ('{deny: ["10.0.0.1"], mode: strict}', ".mode: unknown field"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]


def test_good_config_passes_check(sluice_bin, tmp_path):
    proc, _ = check(sluice_bin, tmp_path,
                    '{allow: ["10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.0/120", "127.0.0.1"],'
                    ' deny: ["0.0.0.0/0"], trusted_proxies: ["::1"]}')
    assert (proc.returncode, proc.stderr) == (0, "")
