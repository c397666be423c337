"""Small builders for the configs most specs need: one route to one upstream."""

import copy


def target_url(t):
    """A MockUpstream, a URL string, or a {url, weight} dict -> config form."""
    if isinstance(t, dict):
        return {k: target_url(v) if k == "url" else v for k, v in t.items()}
    return getattr(t, "url", t)


def upstream(*targets, **opts):
    up = {"targets": [target_url(t) for t in targets]}
    up.update(copy.deepcopy(opts))
    return up


def proxy(*targets, route=None, up=None, server=None, paths=None, **top):
    """One route "main" (all paths, or `paths`) to one upstream "backend"."""
    r = {"name": "main"}
    if paths is not None:
        r["match"] = {"paths": list(paths)}
    r["upstream"] = "backend"
    r.update(copy.deepcopy(route or {}))
    cfg = {"upstreams": {"backend": upstream(*targets, **(up or {}))}, "routes": [r]}
    if server:
        cfg["server"] = dict(server)
    cfg.update(copy.deepcopy(top))
    return cfg


def route(name, upstream_ref, paths=None, **match):
    """A route; upstream_ref is an upstream name, a URL, or a MockUpstream
    (an inline URL). Extra keyword args go under match (hosts, methods, headers)."""
    m = dict(match)
    if paths is not None:
        m["paths"] = list(paths)
    r = {"name": name}
    if m:
        r["match"] = m
    r["upstream"] = target_url(upstream_ref)
    return r
