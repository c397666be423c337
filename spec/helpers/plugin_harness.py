"""Test one plugin black-box in a few lines: a mock upstream, and sluice with
one route that runs the plugin in front of it.

    from plugin_harness import plugin_gateway

    def test_my_plugin(tmp_path):
        with plugin_gateway(tmp_path, "my-plugin", {"limit": 2},
                            plugin_dirs=["/where/my-plugin.lua/lives"]) as (gw, upstream):
            assert gw.get("/x").status == 200
            assert upstream.requests[0].header("X-Added") == "yes"

The gateway is stopped at the end of the block and the test fails if it
crashed, exited non-zero or (under ASan or valgrind) reported an error.
Requests go through gw.get / gw.post / gw.request (see gateway.py); the mock
upstream answers /echo/... with what it received (see mock_upstream.py).
"""

import contextlib

from configs import proxy
from gateway import Gateway
from mock_upstream import MockUpstream


@contextlib.contextmanager
def plugin_gateway(tmp_path, plugin, conf=None, *, plugin_dirs=(), before=(), after=(),
                   route=None, **top):
    """before/after: more plugins (one-key dicts) around the one under test."""
    upstream = MockUpstream("upstream")
    chain = list(before) + [{plugin: conf or {}}] + list(after)
    r = {"plugins": chain}
    r.update(route or {})
    cfg = proxy(upstream, route=r, **top)
    if plugin_dirs:
        cfg["plugin_dirs"] = [str(d) for d in plugin_dirs]
    gw = None
    try:
        gw = Gateway(cfg, tmp_path)
        yield gw, upstream
    finally:
        problems = gw.finish() if gw else []
        upstream.stop()
        if problems:
            raise AssertionError("\n".join(problems))
