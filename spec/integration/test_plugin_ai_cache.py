"""ai-cache: an exact-match cache of chat completions in front of ai-proxy.

The provider is a spec/helpers/mock_llm.py OpenAI server, so every spec can
tell how many requests really reached the provider (llm.count()). Answers
are stored in the log phase, after the client has its last byte; the gateway
runs one worker, which finishes a request's log phase before it reads the
next request, so a second request always sees what the first one stored.

Entries are chat.completion JSON texts; a hit is replayed as a stream to a
streaming request. The expected streams below are written out byte for byte."""

import hashlib
import json
import subprocess
import textwrap
import time

import pytest

from mock_llm import CREATED, MockLLM
from redis import RedisServer
from scale import scaled

CHAT = "/v1/chat/completions"
JSON_CT = [("Content-Type", "application/json")]
MODEL = "gpt-up"
DEFAULT_FIELDS = ["model", "messages", "tools", "tool_choice", "temperature", "top_p", "max_tokens", "stop",
                  "response_format", "seed"]


# ---- helpers -----------------------------------------------------------------------------

@pytest.fixture
def llm():
    m = MockLLM("openai")
    yield m
    m.stop()
    assert m.errors == [], m.errors


def config(llm, cache=None, redis=None, route="llm"):
    conf = {"routes": [{"name": route, "match": {"paths": ["/v1/*"]}, "plugins": [
        {"ai-cache": dict(cache or {})},
        {"ai-proxy": {"models": {"chat": {"targets": [
            {"provider": "openai", "model": MODEL, "base_url": llm.url, "api_key": llm.api_key}]}}}}]}]}
    if redis is not None:
        conf["redis"] = {"url": redis.url, "command_timeout": "500ms", "connect_timeout": "200ms"}
    return conf


def chat_body(text="hello there", **kw):
    return dict({"model": "chat", "messages": [{"role": "user", "content": text}]}, **kw)


def post(gw, body, headers=()):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return gw.post(CHAT, data, list(JSON_CT) + list(headers))


def cache_state(resp):
    return resp.header("X-Sluice-Cache")


def completion(text, n=1, prompt=2):
    """The OpenAI mock's chat.completion for a one-message request."""
    reply = "mock reply to: " + text
    return {"id": "chatcmpl-mock-%d" % n, "object": "chat.completion", "created": CREATED, "model": MODEL,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(reply.split()),
                      "total_tokens": prompt + len(reply.split())}}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def replay(id_, model, choices_content, finish="stop", usage=None, role_content=""):
    """The exact SSE bytes ai-cache replays for a one-choice entry (usage:
    None = the client did not ask for it, else the usage object or "null")."""
    base = '{"id":%s,"object":"chat.completion.chunk","created":%d,"model":%s,"choices":' % (
        json.dumps(id_), CREATED, json.dumps(model))
    tail = "" if usage is None else ',"usage":null'

    def chunk(delta, fin="null"):
        return "data: " + base + '[{"index":0,"delta":%s,"finish_reason":%s}]' % (delta, fin) + tail + "}\n\n"

    out = chunk('{"role":"assistant","content":%s}' % json.dumps(role_content))
    out += chunk('{"content":%s}' % json.dumps(choices_content))
    out += chunk("{}", json.dumps(finish))
    if usage is not None:
        out += "data: " + base + '[],"usage":' + (usage if isinstance(usage, str) else compact(usage)) + "}\n\n"
    return (out + "data: [DONE]\n\n").encode()


def key_hex(body, route="llm", fields=DEFAULT_FIELDS):
    picked = {f: body[f] for f in fields if f in body}
    text = route + "\n" + json.dumps(picked, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


# ---- miss, hit, bypass -------------------------------------------------------------------

@pytest.mark.valgrind
def test_miss_then_hit_answers_the_stored_completion(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    first = post(gw, chat_body())
    assert first.status == 200
    assert cache_state(first) == "MISS"
    assert first.header("X-Sluice-Provider") == "openai"
    assert first.json() == completion("hello there")
    second = post(gw, chat_body())
    assert second.status == 200
    assert cache_state(second) == "HIT"
    assert second.header("Content-Type") == "application/json"
    assert bytes(second.body) == bytes(first.body)
    assert second.header("X-Sluice-Provider") is None
    assert llm.count() == 1


def test_fields_outside_the_key_and_their_order_do_not_matter(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    assert cache_state(post(gw, chat_body(temperature=0.5, user="u1"))) == "MISS"
    reordered = '{"temperature":0.5,"messages":[{"content":"hello there","role":"user"}],"model":"chat","user":"u2"}'
    hit = post(gw, reordered)
    assert (hit.status, cache_state(hit)) == (200, "HIT")
    assert hit.json() == completion("hello there")
    assert llm.count() == 1


@pytest.mark.parametrize("change", [
    {"temperature": 0.7}, {"top_p": 0.5}, {"max_tokens": 100}, {"stop": ["x"]}, {"seed": 3},
    {"response_format": {"type": "json_object"}}, {"model": "other"},
    {"messages": [{"role": "user", "content": "hello you"}]},
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]},
])
def test_different_parameters_are_different_keys(gateway_factory, llm, change):
    gw = gateway_factory(config(llm))
    assert cache_state(post(gw, chat_body(temperature=0.5))) == "MISS"
    other = dict(chat_body(temperature=0.5), **change)
    r = post(gw, other)
    assert cache_state(r) == "MISS"
    # model "other" is no alias: ai-proxy refuses it before the provider.
    assert llm.count() == (1 if change.get("model") == "other" else 2)
    assert cache_state(post(gw, chat_body(temperature=0.5))) == "HIT"


def test_tools_and_tool_choice_are_in_the_key(gateway_factory, llm):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    gw = gateway_factory(config(llm))
    assert cache_state(post(gw, chat_body())) == "MISS"
    assert cache_state(post(gw, chat_body(tools=tools))) == "MISS"
    assert cache_state(post(gw, chat_body(tools=tools, tool_choice="none"))) == "MISS"
    assert cache_state(post(gw, chat_body(tools=tools))) == "HIT"
    assert llm.count() == 3


def test_key_fields_choose_what_makes_requests_the_same(gateway_factory, llm):
    gw = gateway_factory(config(llm, {"key_fields": ["model", "messages"]}))
    assert cache_state(post(gw, chat_body(temperature=0.1))) == "MISS"
    hit = post(gw, chat_body(temperature=0.9, seed=4))
    assert cache_state(hit) == "HIT"
    assert hit.json() == completion("hello there")
    assert llm.count() == 1


def test_bypass_header_skips_lookup_and_store(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    r = post(gw, chat_body(), [("X-Sluice-Cache-Bypass", "1")])
    assert (r.status, cache_state(r)) == (200, "BYPASS")
    assert cache_state(post(gw, chat_body())) == "MISS"      # the bypassed answer was not stored
    r = post(gw, chat_body(), [("X-Sluice-Cache-Bypass", "1")])
    assert cache_state(r) == "BYPASS"                         # nor looked up
    assert r.json() == completion("hello there", n=3)
    # Only the value 1 bypasses.
    assert cache_state(post(gw, chat_body(), [("X-Sluice-Cache-Bypass", "yes")])) == "HIT"
    assert cache_state(post(gw, chat_body())) == "HIT"
    assert llm.count() == 3


def test_bypass_header_name_is_configurable(gateway_factory, llm):
    gw = gateway_factory(config(llm, {"bypass_header": "X-No-Cache"}))
    assert cache_state(post(gw, chat_body(), [("X-No-Cache", "1")])) == "BYPASS"
    assert cache_state(post(gw, chat_body(), [("X-Sluice-Cache-Bypass", "1")])) == "MISS"
    assert cache_state(post(gw, chat_body(), [("X-Sluice-Cache-Bypass", "1")])) == "HIT"
    assert llm.count() == 2


def test_entries_expire_after_ttl(gateway_factory, llm):
    gw = gateway_factory(config(llm, {"ttl": "1s"}))
    assert cache_state(post(gw, chat_body())) == "MISS"
    assert llm.count() == 1
    # Hits until the entry expires; the first miss after that asks the
    # provider again and stores the new answer.
    wait_for(lambda: cache_state(post(gw, chat_body())) == "MISS", "the entry to expire")
    assert llm.count() == 2


# ---- streams ----------------------------------------------------------------------------

def test_stream_request_replays_a_cached_non_stream_answer(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    assert cache_state(post(gw, chat_body())) == "MISS"
    r = post(gw, chat_body(stream=True))
    assert (r.status, cache_state(r)) == (200, "HIT")
    assert r.header("Content-Type") == "text/event-stream"
    assert bytes(r.body) == replay("chatcmpl-mock-1", MODEL, "mock reply to: hello there")
    r = post(gw, chat_body(stream=True, stream_options={"include_usage": True}))
    assert cache_state(r) == "HIT"
    assert bytes(r.body) == replay("chatcmpl-mock-1", MODEL, "mock reply to: hello there",
                                   usage={"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    assert llm.count() == 1


@pytest.mark.valgrind
def test_stream_answer_is_rebuilt_and_replayed(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    first = post(gw, chat_body(stream=True))
    assert (first.status, cache_state(first)) == (200, "MISS")
    assert first.header("Content-Type").startswith("text/event-stream")
    r = post(gw, chat_body(stream=True))
    assert (r.status, cache_state(r)) == (200, "HIT")
    assert bytes(r.body) == replay("chatcmpl-mock-1", MODEL, "mock reply to: hello there")
    # The client did not ask for usage; the entry has it from ai-proxy's count.
    r = post(gw, chat_body(stream=True, stream_options={"include_usage": True}))
    assert bytes(r.body) == replay("chatcmpl-mock-1", MODEL, "mock reply to: hello there",
                                   usage={"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    r = post(gw, chat_body())
    assert (r.status, cache_state(r), r.header("Content-Type")) == (200, "HIT", "application/json")
    assert r.json() == {"id": "chatcmpl-mock-1", "object": "chat.completion", "created": CREATED, "model": MODEL,
                        "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": "mock reply to: hello there"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}
    assert llm.count() == 1


def test_stream_with_usage_keeps_the_streams_usage(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    body = chat_body("one two three", stream=True, stream_options={"include_usage": True})
    assert cache_state(post(gw, body)) == "MISS"
    r = post(gw, chat_body("one two three"))
    assert cache_state(r) == "HIT"
    assert r.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert llm.count() == 1


def test_cache_streams_false_leaves_streams_alone(gateway_factory, llm):
    gw = gateway_factory(config(llm, {"cache_streams": False}))
    assert cache_state(post(gw, chat_body(stream=True))) == "BYPASS"
    assert cache_state(post(gw, chat_body())) == "MISS"       # the stream was not stored
    r = post(gw, chat_body(stream=True))
    assert cache_state(r) == "BYPASS"                         # nor served from the cache
    assert cache_state(post(gw, chat_body())) == "HIT"
    assert llm.count() == 3


# ---- what is not stored ----------------------------------------------------------------------

def test_provider_errors_are_not_stored(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    llm.script({"status": 400, "message": "bad request"})
    r = post(gw, chat_body())
    assert (r.status, cache_state(r)) == (400, "MISS")
    r = post(gw, chat_body())
    assert (r.status, cache_state(r)) == (200, "MISS")
    assert cache_state(post(gw, chat_body())) == "HIT"
    assert llm.count() == 2


def test_a_stream_cut_by_an_error_is_not_stored(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    llm.script({"mid_stream_error": True, "after_chunks": 2})
    r = post(gw, chat_body(stream=True))
    assert (r.status, cache_state(r)) == (200, "MISS")
    assert b'"error"' in bytes(r.body)
    r = post(gw, chat_body(stream=True))
    assert cache_state(r) == "MISS"
    assert cache_state(post(gw, chat_body(stream=True))) == "HIT"
    assert llm.count() == 2


def test_answers_over_max_entry_bytes_are_not_stored(gateway_factory, llm):
    gw = gateway_factory(config(llm, {"max_entry_bytes": 64}))
    assert cache_state(post(gw, chat_body())) == "MISS"
    r = post(gw, chat_body())
    assert (r.status, cache_state(r)) == (200, "MISS")
    assert r.json() == completion("hello there", n=2)
    assert llm.count() == 2


def test_other_requests_pass_untouched(gateway_factory, llm):
    gw = gateway_factory(config(llm))
    r = gw.get("/v1/models")
    assert (r.status, cache_state(r)) == (200, None)
    r = post(gw, "{not json")
    assert (r.status, cache_state(r)) == (400, None)
    assert r.json()["error"]["code"] == "invalid_json"
    r = gw.post("/v1/embeddings", json.dumps({"model": "chat", "input": "x"}), JSON_CT)
    assert cache_state(r) is None
    r = post(gw, "[1, 2]")
    assert (r.status, cache_state(r)) == (400, None)
    assert llm.count() == 1                                    # the embeddings request


# ---- redis ---------------------------------------------------------------------------------------

@pytest.fixture
def redis(tmp_path):
    with RedisServer(tmp_path) as r:
        yield r


def redis_node(gateway_factory, llm, redis, cache):
    gw = gateway_factory(config(llm, dict({"policy": "redis"}, **cache), redis=redis))
    line = "redis %s:%d: connected" % (redis.host, redis.port)
    wait_for(lambda: line in gw.stderr(), "the worker to connect to Redis")
    return gw


@pytest.mark.valgrind
def test_redis_policy_shares_entries_between_nodes(gateway_factory, llm, redis):
    a = redis_node(gateway_factory, llm, redis, {"ttl": "1h"})
    b = redis_node(gateway_factory, llm, redis, {"ttl": "1h"})
    first = post(a, chat_body())
    assert (first.status, cache_state(first)) == (200, "MISS")
    key = "ai-cache:" + key_hex(chat_body())
    # The SET leaves with the log phase; its reply is not waited for.
    wait_for(lambda: redis.command("EXISTS", key) == 1, "the entry in Redis")
    assert redis.command("GET", key) == bytes(first.body)
    assert 0 < redis.command("PTTL", key) <= 3600 * 1000
    hit = post(b, chat_body(stream=True))
    assert (hit.status, cache_state(hit)) == (200, "HIT")
    assert bytes(hit.body) == replay("chatcmpl-mock-1", MODEL, "mock reply to: hello there")
    hit = post(b, chat_body())
    assert bytes(hit.body) == bytes(first.body)
    assert llm.count() == 1


def test_redis_down_answers_without_the_cache(gateway_factory, llm, redis):
    gw = redis_node(gateway_factory, llm, redis, {})
    redis.kill()
    r = post(gw, chat_body())
    assert (r.status, cache_state(r)) == (200, "MISS")
    assert r.json() == completion("hello there")
    r = post(gw, chat_body())
    assert (r.status, cache_state(r)) == (200, "MISS")
    assert llm.count() == 2


# ---- config ----------------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent(text))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


def test_schema_errors(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            match: {paths: ["/v1/*"]}
            plugins:
              - ai-cache:
                  ttl: soon
                  policy: memcached
                  max_entry_bytes: 2m
                  key_fields: []
                  bypass_header: "bad header"
                  cache_streams: "yes"
                  colour: red
              - ai-proxy:
                  models: {chat: {targets: [{provider: mock, model: m}]}}
        """)
    assert proc.returncode == 1
    w = "%s:6: routes[0].plugins[0] (ai-cache)" % path
    assert proc.stderr.splitlines() == [
        w + '.ttl: invalid duration "soon"',
        w + '.policy: must be one of "local", "redis"',
        w + ".max_entry_bytes: must be <= 1m",
        w + ".key_fields: must have at least 1 item",
        w + ".bypass_header: must match ^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
        w + ".cache_streams: expected boolean, got string",
        w + ".colour: unknown field"]


def test_redis_policy_needs_a_redis_section(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            match: {paths: ["/v1/*"]}
            plugins:
              - ai-cache: {policy: redis}
              - ai-proxy:
                  models: {chat: {targets: [{provider: mock, model: m}]}}
        """)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "%s:6: routes[0].plugins[0] (ai-cache): policy: redis needs a top-level redis: section" % path]
