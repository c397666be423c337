"""ai-cost (plugins/ai-cost): the cost of AI requests per consumer and
tenant, budgets that refuse requests once spent, and a usage report.

Requests go through key-auth (consumers alice and bob of tenant acme, carol
without a tenant), ai-cost, then ai-proxy's built-in mock provider, whose
usage is deterministic: prompt tokens = the words of every message,
completion tokens = the words of "mock reply to: <last user message>". With
the prices below (USD per million tokens, which is micro-dollars per token)
every cost is written out exactly.

Budget specs send max_tokens so the estimate is known: ceil(characters of
the messages / 4) at the input price plus max_tokens at the output price."""

import calendar
import json
import subprocess
import textwrap
import time

import pytest

import expect
import mock_llm
from ports import dead_port
from redis import RedisServer
from scale import scaled

CHAT = "/v1/chat/completions"
JSON_CT = [("Content-Type", "application/json")]
KEYS = {"alice": "alice-key", "bob": "bob-key", "carol": "carol-key", "ops": "ops-key"}
PRICES = {"mock-1": {"input": 2, "output": 10, "cached_input": 1}}

CONSUMERS = [
    {"name": "alice", "tenant": "acme", "credentials": {"key-auth": [{"key": KEYS["alice"]}]}},
    {"name": "bob", "tenant": "acme", "credentials": {"key-auth": [{"key": KEYS["bob"]}]}},
    {"name": "carol", "credentials": {"key-auth": [{"key": KEYS["carol"]}]}},
    {"name": "ops", "credentials": {"key-auth": [{"key": KEYS["ops"]}]}},
]


def models(target=None):
    return {"chat": {"targets": [target or {"provider": "mock", "model": "mock-1"}]},
            "free": {"targets": [{"provider": "mock", "model": "mock-free"}]}}


def config(cost, target=None, report_cost=None, redis=None):
    report = dict(report_cost or {}, report=True)
    c = {"consumers": CONSUMERS,
         "routes": [
             {"name": "llm", "match": {"paths": ["/v1/*"]},
              "plugins": [{"key-auth": {}}, {"ai-cost": cost},
                          {"ai-proxy": {"models": models(target)}}]},
             {"name": "report", "match": {"paths": ["/ai-cost/report"]},
              "plugins": [{"key-auth": {}}, {"ai-cost": report}]}]}
    if redis is not None:
        c["redis"] = {"url": redis.url, "command_timeout": "500ms", "connect_timeout": "500ms"}
    return c


def chat(gw, who, text="hello there", model="chat", **kw):
    body = dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)
    return gw.post(CHAT, json.dumps(body), JSON_CT + [("X-Api-Key", KEYS[who])])


def ok(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


def report(gw):
    r = gw.get("/ai-cost/report", [("X-Api-Key", KEYS["ops"])])
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    return json.loads(r.body)


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def stats(requests, prompt, completion, cached, micro):
    return {"requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "cached_tokens": cached, "cost_usd": micro / 1e6, "cost_micro_usd": micro}


def day(models_):
    """A day's entry: the sum of its models, then each model."""
    total = {k: sum(m[k] for m in models_.values()) for k in
             ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_micro_usd")}
    total["cost_usd"] = total["cost_micro_usd"] / 1e6
    return dict(total, models=models_)


def seconds_to_midnight(t):
    tm = time.gmtime(t)
    return 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec)


def seconds_to_month_end(t):
    tm = time.gmtime(t)
    days = calendar.monthrange(tm.tm_year, tm.tm_mon)[1]
    return seconds_to_midnight(t) + (days - tm.tm_mday) * 86400


def refused(resp, message, seconds_left):
    """A 429 budget answer; Retry-After lies between the period's end seen
    before and after the request (a bound, not a timing)."""
    before, after = seconds_left
    err = expect.gateway_error(resp, 429, "budget_exceeded", "rate_limit_error")
    assert err["message"] == message
    assert after <= int(resp.header("Retry-After")) <= before


# ---- exact costs ----------------------------------------------------------------------------

# "hello there": prompt 2 tokens; reply "mock reply to: hello there": 5 tokens.
# cost = 2 x 2 + 5 x 10 = 54 micro-dollars.
HELLO = stats(1, 2, 5, 0, 54)


@pytest.mark.valgrind
def test_cost_of_a_request_per_consumer_and_tenant(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES}))
    body = ok(chat(gw, "alice"))
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert report(gw) == {"consumers": {"alice": {today(): day({"mock-1": HELLO})}},
                          "tenants": {"acme": {today(): day({"mock-1": HELLO})}}}


def test_totals_add_up_per_consumer_and_per_tenant(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES}))
    ok(chat(gw, "alice"))
    ok(chat(gw, "alice", "one two three four"))   # prompt 4, completion 7: 8 + 70 = 78
    ok(chat(gw, "bob"))
    ok(chat(gw, "carol", "hi"))                   # prompt 1, completion 4: 2 + 40 = 42
    alice = stats(2, 6, 12, 0, 132)
    assert report(gw) == {
        "consumers": {"alice": {today(): day({"mock-1": alice})},
                      "bob": {today(): day({"mock-1": HELLO})},
                      "carol": {today(): day({"mock-1": stats(1, 1, 4, 0, 42)})}},
        "tenants": {"acme": {today(): day({"mock-1": stats(3, 8, 17, 0, 186)})}}}


def test_fractional_prices_round_to_the_nearest_micro_dollar(gateway_factory):
    # 2 x 0.15 + 5 x 0.6 = 3.3 -> 3 micro-dollars
    gw = gateway_factory(config({"prices": {"mock-1": {"input": 0.15, "output": 0.6}}}))
    ok(chat(gw, "carol"))
    assert report(gw)["consumers"] == {"carol": {today(): day({"mock-1": stats(1, 2, 5, 0, 3)})}}


def test_the_alias_is_priced_when_the_model_is_not(gateway_factory):
    gw = gateway_factory(config({"prices": {"chat": {"input": 1, "output": 1}}}))
    ok(chat(gw, "carol"))
    assert report(gw)["consumers"] == {"carol": {today(): day({"mock-1": stats(1, 2, 5, 0, 7)})}}


def test_an_unpriced_model_counts_tokens_and_warns_once(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES}))
    ok(chat(gw, "carol", model="free"))
    ok(chat(gw, "carol", model="free"))
    ok(chat(gw, "carol"))
    assert report(gw)["consumers"] == {"carol": {today(): day({
        "mock-1": HELLO, "mock-free": stats(2, 4, 10, 0, 0)})}}
    warning = 'ai-cost: model "mock-free" has no price; counting its tokens only'
    assert gw.stderr().count(warning) == 1


def test_cached_tokens_use_the_cached_price(gateway_factory):
    # prompt 2 of which 1 cached, completion 5: 1 x 2 + 1 x 1 + 5 x 10 = 53
    llm = mock_llm.MockLLM("openai")
    llm.cached_tokens = 1
    try:
        target = {"provider": "openai-compatible", "model": "mock-1", "base_url": llm.url,
                  "api_key": mock_llm.DEFAULT_KEYS["openai"]}
        gw = gateway_factory(config({"prices": PRICES}, target=target))
        assert ok(chat(gw, "carol"))["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}
        assert report(gw)["consumers"] == {"carol": {today(): day({"mock-1": stats(1, 2, 5, 1, 53)})}}
    finally:
        llm.stop()
    assert llm.errors == []


def test_a_stream_is_counted_when_it_ends(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES}))
    r = chat(gw, "carol", stream=True)
    assert r.status == 200
    assert r.body.endswith(b"data: [DONE]\n\n")
    assert report(gw)["consumers"] == {"carol": {today(): day({"mock-1": HELLO})}}


# ---- budgets --------------------------------------------------------------------------------

@pytest.mark.valgrind
def test_a_request_over_the_budget_is_refused(gateway_factory):
    # estimate: ceil(11 / 4) = 3 x 2 + 10 x 10 = 106 > 100
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 0.0001}]}))
    t0 = time.time()
    r = chat(gw, "alice", max_tokens=10)
    t1 = time.time()
    refused(r, "budget exceeded: daily limit of 0.0001 USD for consumer alice",
            (seconds_to_midnight(t0), seconds_to_midnight(t1)))
    assert report(gw) == {"consumers": {}, "tenants": {}}


def test_named_monthly_tenant_budget_names_itself(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "tenant", "period": "month", "limit_usd": 0.0001, "name": "acme-monthly"}]}))
    t0 = time.time()
    r = chat(gw, "bob", max_tokens=10)
    t1 = time.time()
    refused(r, 'budget "acme-monthly" exceeded: monthly limit of 0.0001 USD for tenant acme',
            (seconds_to_month_end(t0), seconds_to_month_end(t1)))
    # carol has no tenant: a tenant budget does not apply to her
    ok(chat(gw, "carol", max_tokens=10))


def test_reservations_are_released_after_each_request(gateway_factory):
    # limit 200: each request reserves 106 and spends 54; a kept reservation
    # would refuse the second request, released ones refuse only the third
    # (200 - 108 = 92 < 106).
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 0.0002}]}))
    ok(chat(gw, "alice", max_tokens=10))
    ok(chat(gw, "alice", max_tokens=10))
    r = chat(gw, "alice", max_tokens=10)
    expect.gateway_error(r, 429, "budget_exceeded", "rate_limit_error")
    ok(chat(gw, "bob", max_tokens=10))       # every consumer has a budget of their own
    assert report(gw)["consumers"]["alice"] == {today(): day({"mock-1": stats(2, 4, 10, 0, 108)})}


def test_the_tenant_budget_is_shared_by_its_consumers(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 1},
        {"scope": "tenant", "period": "day", "limit_usd": 0.0002}]}))
    ok(chat(gw, "alice", max_tokens=10))
    ok(chat(gw, "bob", max_tokens=10))
    r = chat(gw, "alice", max_tokens=10)
    err = expect.gateway_error(r, 429, "budget_exceeded", "rate_limit_error")
    assert err["message"] == "budget exceeded: daily limit of 0.0002 USD for tenant acme"


def test_estimate_uses_estimate_max_tokens_default_without_max_tokens(gateway_factory):
    # default 10: the same 106 as max_tokens 10, over a limit of 105; with
    # default 9 the estimate is 96 and fits
    for default, status in ((10, 429), (9, 200)):
        gw = gateway_factory(config({"prices": PRICES, "estimate_max_tokens_default": default,
                                     "budgets": [{"scope": "consumer", "period": "day",
                                                  "limit_usd": 0.000105}]}))
        assert chat(gw, "alice").status == status
        gw.stop()


def test_a_failed_provider_spends_nothing_and_releases_the_reservation(gateway_factory):
    target = {"provider": "openai-compatible", "model": "mock-1",
              "base_url": "http://127.0.0.1:%d" % dead_port()}
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 0.00011}]}, target=target))
    for _ in range(3):   # each would be refused if the one before kept its 106
        expect.gateway_error(chat(gw, "alice", max_tokens=10), 502, "provider_unavailable",
                             "api_error")
    assert report(gw) == {"consumers": {}, "tenants": {}}


def test_requests_without_a_consumer_are_not_budgeted(gateway_factory):
    c = config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 0}]})
    c["routes"][0]["plugins"] = c["routes"][0]["plugins"][1:]   # no key-auth
    gw = gateway_factory(c)
    assert gw.post(CHAT, json.dumps({"model": "chat", "messages": [
        {"role": "user", "content": "hi"}]}), JSON_CT).status == 200
    assert report(gw) == {"consumers": {}, "tenants": {}}


def test_a_zero_budget_refuses_everything(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "month", "limit_usd": 0}]}))
    err = expect.gateway_error(chat(gw, "carol", max_tokens=0), 429, "budget_exceeded",
                               "rate_limit_error")
    assert err["message"] == "budget exceeded: monthly limit of 0 USD for consumer carol"


# ---- the report route ----------------------------------------------------------------------

def test_the_report_answers_get_only(gateway_factory):
    gw = gateway_factory(config({"prices": PRICES}))
    r = gw.post("/ai-cost/report", "{}", JSON_CT + [("X-Api-Key", KEYS["ops"])])
    err = expect.gateway_error(r, 405, "method_not_allowed", "invalid_request_error")
    assert err["message"] == "the cost report answers GET only"
    assert r.header("Allow") == "GET"
    assert gw.get("/ai-cost/report").status == 401


# ---- config errors ------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml, extra=""):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - ai-cost: %s
        """) % plugin_yaml + extra)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (ai-cost)" % path


@pytest.mark.parametrize("yaml,message", [
    ("{policy: cluster}", '.policy: must be one of "local", "redis"'),
    ("{prices: {m: {input: 1}}}", ".prices.m.output: missing required field"),
    ("{prices: {m: {input: -1, output: 1}}}", ".prices.m.input: must be >= 0"),
    ("{prices: {m: {input: x, output: 1}}}", ".prices.m.input: expected number, got string"),
    ("{budgets: [{scope: team, period: day, limit_usd: 1}]}",
     '.budgets[0].scope: must be one of "consumer", "tenant"'),
    ("{budgets: [{scope: consumer, period: week, limit_usd: 1}]}",
     '.budgets[0].period: must be one of "day", "month"'),
    ("{budgets: [{scope: consumer, period: day}]}", ".budgets[0].limit_usd: missing required field"),
    ("{estimate_max_tokens_default: -1}", ".estimate_max_tokens_default: must be >= 0"),
    ("{report: yes please}", ".report: expected boolean, got string"),
    ("{budget: []}", ".budget: unknown field"),
    ("{budgets: [{scope: consumer, period: day, limit_usd: 1}, "
     "{scope: consumer, period: day, limit_usd: 2}]}",
     ": budgets[1]: a budget for this scope and period is already set"),
    ("{policy: redis}", ": policy: redis needs a top-level redis: section"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert where + message in proc.stderr, proc.stderr


def test_good_config_passes_check(sluice_bin, tmp_path):
    proc, _ = check(sluice_bin, tmp_path, "{prices: {m: {input: 1, output: 2, cached_input: 0.5}}, "
                    "budgets: [{scope: tenant, period: month, limit_usd: 10, name: t}]}")
    assert proc.returncode == 0, proc.stderr


# ---- policy redis: one account for every node ---------------------------------------------

@pytest.fixture
def redis(tmp_path):
    with RedisServer(tmp_path) as r:
        yield r


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def redis_node(gateway_factory, redis, cost, workers=1, target=None):
    c = config(dict(cost, policy="redis"), target=target,
               report_cost={"policy": "redis"}, redis=redis)
    c["workers"] = workers
    gw = gateway_factory(c)
    line = "redis %s:%d: connected" % (redis.host, redis.port)
    wait_for(lambda: gw.stderr().count(line) >= workers, "each worker to connect to Redis")
    return gw


def record(redis, scope, name, period=None):
    return "aic:{%s:%s}:%s" % (scope, name, period or today())


def hash_of(redis, key):
    flat = redis.command("HGETALL", key)
    return {flat[i].decode() if isinstance(flat[i], bytes) else flat[i]:
            int(flat[i + 1]) for i in range(0, len(flat), 2)}


def test_redis_records_costs_and_reports_them(gateway_factory, redis):
    gw = redis_node(gateway_factory, redis, {"prices": PRICES})
    ok(chat(gw, "alice"))
    expected = {"consumers": {"alice": {today(): day({"mock-1": HELLO})}},
                "tenants": {"acme": {today(): day({"mock-1": HELLO})}}}
    wait_for(lambda: report(gw) == expected, "the settlement to reach Redis")
    assert hash_of(redis, record(redis, "consumer", "alice")) == {
        "spent": 54, "m:mock-1:requests": 1, "m:mock-1:prompt_tokens": 2,
        "m:mock-1:completion_tokens": 5, "m:mock-1:cached_tokens": 0, "m:mock-1:cost": 54}
    assert hash_of(redis, record(redis, "tenant", "acme", time.strftime("%Y-%m", time.gmtime()))) \
        == {"spent": 54}


def test_redis_budget_refuses_and_releases(gateway_factory, redis):
    gw = redis_node(gateway_factory, redis, {"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 0.0002}]})
    key = record(redis, "consumer", "alice")
    ok(chat(gw, "alice", max_tokens=10))
    wait_for(lambda: hash_of(redis, key).get("reserved") == 0, "the reservation to be released")
    ok(chat(gw, "alice", max_tokens=10))
    wait_for(lambda: hash_of(redis, key).get("spent") == 108, "the second settlement")
    t0 = time.time()
    r = chat(gw, "alice", max_tokens=10)
    t1 = time.time()
    refused(r, "budget exceeded: daily limit of 0.0002 USD for consumer alice",
            (seconds_to_midnight(t0), seconds_to_midnight(t1)))
    assert hash_of(redis, key)["reserved"] == 0


def test_redis_away_refuses_budgeted_requests_with_503(gateway_factory, redis):
    gw = redis_node(gateway_factory, redis, {"prices": PRICES, "budgets": [
        {"scope": "consumer", "period": "day", "limit_usd": 1}]})
    redis.kill()
    expect.gateway_error(chat(gw, "alice", max_tokens=10), 503, "budget_unavailable", "api_error")
    assert "ai-cost: redis unavailable" in gw.stderr()


def test_two_nodes_under_concurrent_load_never_spend_past_the_budget(gateway_factory, redis):
    # Each request reserves 106 and spends 54; the budget is 1000.
    cost = {"prices": PRICES, "budgets": [{"scope": "tenant", "period": "day", "limit_usd": 0.001}]}
    gws = [redis_node(gateway_factory, redis, cost, workers=2) for _ in range(2)]
    calls = [(lambda gw=gw, who=who: chat(gw, who, max_tokens=10).status)
             for gw in gws for who in ("alice", "bob") for _ in range(10)]
    results = [None] * len(calls)

    def run(i):
        results[i] = calls[i]()

    import threading
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert set(results) <= {200, 429} and 429 in results, results
    admitted = results.count(200)
    key = record(redis, "tenant", "acme")
    wait_for(lambda: hash_of(redis, key).get("reserved") == 0, "every reservation to be released")
    spent = hash_of(redis, key)["spent"]
    assert spent == 54 * admitted
    assert spent <= 1000
    # Sequentially 17 fit (16 x 54 = 864 leaves 136 >= 106; 17 x 54 = 918 leaves 82): concurrency may
    # refuse some that would have fitted, never admit more.
    assert admitted <= 17
