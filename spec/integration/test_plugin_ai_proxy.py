"""ai-proxy: one OpenAI-compatible API over OpenAI, Anthropic, Gemini,
OpenAI-compatible servers and the built-in mock provider, with failover.

The providers are spec/helpers/mock_llm.py servers: each speaks one
provider's wire format exactly and answers deterministically, so every
expected body below is written out in full."""

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import expect
import mock_llm
import raw
from mock_llm import CREATED, MockLLM
from scale import scaled

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
MODELS = "/v1/models"
JSON_CT = [("Content-Type", "application/json")]

OA_KEY = mock_llm.DEFAULT_KEYS["openai"]
AN_KEY = mock_llm.DEFAULT_KEYS["anthropic"]
GE_KEY = mock_llm.DEFAULT_KEYS["gemini"]

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "find things",
                                            "parameters": {"type": "object",
                                                           "properties": {"q": {"type": "string"}}}}}]


# ---- helpers -----------------------------------------------------------------------------

@pytest.fixture
def llm_factory():
    made = []

    def make(kind, **kw):
        m = MockLLM(kind, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()
    for m in made:
        assert m.errors == [], m.errors


def target(llm, model, **kw):
    """A target entry for a MockLLM (or {"provider": "mock"} when llm is None)."""
    if llm is None:
        return dict({"provider": "mock", "model": model}, **kw)
    t = {"provider": llm.kind, "model": model, "base_url": llm.url}
    if "api_keys" not in kw and "api_key" not in kw:
        t["api_key"] = mock_llm.DEFAULT_KEYS[llm.kind]
    t.update(kw)
    return t


def ai_config(models, **opts):
    conf = {"models": models}
    conf.update(opts)
    return {"routes": [{"name": "llm", "match": {"paths": ["/v1/*"]}, "plugins": [{"ai-proxy": conf}]}]}


def one_model(*targets, alias="chat", strategy=None, **opts):
    m = {"targets": list(targets)}
    if strategy:
        m["strategy"] = strategy
    return ai_config({alias: m}, **opts)


def post(gw, path, body, headers=()):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return gw.post(path, data, list(JSON_CT) + list(headers))


def chat_body(text="hello there", model="chat", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)


def events(resp):
    """The data fields of an SSE body, JSON-decoded except [DONE]."""
    out = []
    for _name, data in mock_llm.sse_events(bytes(resp.body)):
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def content_of(evs):
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in evs
                   if isinstance(e, dict) and e.get("choices"))


def request_id(resp):
    (rid,) = resp.headers_named("X-Request-Id")
    return rid


def oa_chunk(n, model, delta, finish=None, usage=True):
    """A chunk as the OpenAI mock sends it (usage: the request had include_usage)."""
    c = {"id": "chatcmpl-mock-%d" % n, "object": "chat.completion.chunk", "created": CREATED, "model": model,
         "system_fingerprint": "fp_mock",
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage:
        c["usage"] = None
    return c


def xl_chunk(rid, created, delta, finish=None, alias="chat", usage=False):
    """A chunk as the translation library writes it for Anthropic and Gemini streams."""
    c = {"id": "chatcmpl-" + rid, "object": "chat.completion.chunk", "created": created, "model": alias,
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        c["usage"] = None
    return c


def usage_obj(prompt, completion, cached=0):
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}, "completion_tokens_details": {"reasoning_tokens": 0}}


def between(t0, value, t1):
    assert t0 <= value <= t1, (t0, value, t1)


def answered_by(resp, provider, model):
    assert (resp.header("X-Sluice-Provider"), resp.header("X-Sluice-Model")) == (provider, model), resp


def assert_no_secret(gw, *secrets):
    err = gw.stderr()
    for s in secrets:
        assert s not in err, "a provider key appears in the gateway's log"


# ---- the mock provider, and what needs no provider -----------------------------------------

def test_mock_provider_answers_without_network(gateway_factory):
    gw = gateway_factory(one_model(target(None, "mock-1")))
    t0 = int(time.time())
    r = post(gw, CHAT, chat_body("hello there"))
    t1 = int(time.time())
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    answered_by(r, "mock", "mock-1")
    body = r.json()
    between(t0, body["created"], t1)
    assert body == {"id": "chatcmpl-" + request_id(r), "object": "chat.completion", "created": body["created"],
                    "model": "mock-1",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "mock reply to: hello there"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}


@pytest.mark.valgrind
def test_mock_provider_streams_word_chunks(gateway_factory):
    gw = gateway_factory(one_model(target(None, "mock-1")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/event-stream"
    assert r.header("Transfer-Encoding") == "chunked"
    answered_by(r, "mock", "mock-1")
    rid = request_id(r)
    evs = events(r)
    created = evs[0]["created"]

    def ch(delta, finish=None):
        return {"id": "chatcmpl-" + rid, "object": "chat.completion.chunk", "created": created, "model": "mock-1",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None}

    assert evs == [ch({"role": "assistant", "content": ""}), ch({"content": "mock"}), ch({"content": " reply"}),
                   ch({"content": " to:"}), ch({"content": " hi"}), ch({"content": " you"}), ch({}, "stop"),
                   "[DONE]"]


def test_mock_provider_options_and_usage_chunk(gateway_factory):
    gw = gateway_factory(one_model(target(None, "m"), mock={"reply": "one two three four five", "chunk_words": 2,
                                                            "latency": "50ms"}))
    r = post(gw, CHAT, chat_body("a b c", stream=True, stream_options={"include_usage": True}))
    assert r.status == 200, r
    evs = events(r)
    pieces = [e["choices"][0]["delta"].get("content") for e in evs[1:-3]]
    assert pieces == ["one two", " three four", " five"]
    assert evs[-3]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert evs[-2]["choices"] == []
    assert evs[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert evs[-1] == "[DONE]"
    r = post(gw, CHAT, chat_body("a b c"))
    assert r.json()["choices"][0]["message"]["content"] == "one two three four five"
    assert r.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_mock_usage_counts_every_message(gateway_factory):
    gw = gateway_factory(one_model(target(None, "m")))
    body = {"model": "chat", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "first question"}, {"type": "text", "text": "here"}]},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second one"}]}
    r = post(gw, CHAT, body)
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: second one"
    assert r.json()["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


@pytest.mark.valgrind
def test_mock_embeddings_are_deterministic(gateway_factory):
    import hashlib
    gw = gateway_factory(one_model(target(None, "emb-1"), alias="emb"))
    r = post(gw, EMBED, {"model": "emb", "input": ["hello world", "x"]})
    assert r.status == 200, r
    answered_by(r, "mock", "emb-1")

    def vec(text, dims=8):
        return [(b - 128) / 128 for b in hashlib.sha256(text.encode()).digest()[:dims]]

    assert r.json() == {"object": "list", "model": "emb-1",
                        "data": [{"object": "embedding", "index": 0, "embedding": vec("hello world")},
                                 {"object": "embedding", "index": 1, "embedding": vec("x")}],
                        "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    r = post(gw, EMBED, {"model": "emb", "input": "abc", "dimensions": 3})
    assert r.json()["data"][0]["embedding"] == vec("abc", 3)
    r = post(gw, EMBED, {"model": "emb", "input": [1, 2]})
    assert r.status == 400
    assert r.json() == {"error": {"message": "input[0] must be a string", "type": "invalid_request_error",
                                  "param": None, "code": None}}


def test_models_lists_the_aliases(gateway_factory):
    gw = gateway_factory(ai_config({"fast": {"targets": [target(None, "a")]},
                                    "smart": {"targets": [target(None, "b")]}}))
    r = gw.get(MODELS)
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.json() == {"object": "list", "data": [
        {"id": "fast", "object": "model", "created": 0, "owned_by": "sluice"},
        {"id": "smart", "object": "model", "created": 0, "owned_by": "sluice"}]}


def test_unknown_alias_is_404_model_not_found(gateway_factory):
    gw = gateway_factory(one_model(target(None, "m")))
    r = post(gw, CHAT, chat_body(model="gpt-9"))
    err = expect.gateway_error(r, 404, "model_not_found", "not_found_error")
    assert err["message"] == 'the model "gpt-9" does not exist'
    r = post(gw, EMBED, {"model": "nope", "input": "x"})
    expect.gateway_error(r, 404, "model_not_found", "not_found_error")


@pytest.mark.parametrize("body, code, message", [
    (b'{"model": "chat", ', "invalid_json",
     "the request body is not valid JSON: string or '}' expected near end of file (line 1, column 18)"),
    (b'[1, 2]', "invalid_request", "the request body must be a JSON object"),
    (b'{"messages": []}', "missing_model", "you must provide a model parameter (a string)"),
    (b'{"model": 7, "messages": []}', "missing_model", "you must provide a model parameter (a string)"),
    (b'{"model": "chat", "messages": "hi"}', "invalid_request", "messages must be an array"),
    (b'', "invalid_json", "the request body is not valid JSON: '[' or '{' expected near end of file (line 1, column 0)"),
])
def test_bad_request_bodies(gateway_factory, body, code, message):
    gw = gateway_factory(one_model(target(None, "m")))
    r = post(gw, CHAT, body)
    err = expect.gateway_error(r, 400, code, "invalid_request_error")
    assert err["message"] == message


def test_embeddings_need_input(gateway_factory):
    gw = gateway_factory(one_model(target(None, "m")))
    r = post(gw, EMBED, {"model": "chat"})
    err = expect.gateway_error(r, 400, "invalid_request", "invalid_request_error")
    assert err["message"] == "input is required"


@pytest.mark.parametrize("method, path", [("GET", CHAT), ("POST", MODELS), ("POST", "/v1/completions"),
                                          ("GET", "/v1/files")])
def test_other_urls_are_404(gateway_factory, method, path):
    gw = gateway_factory(one_model(target(None, "m")))
    r = gw.request(method, path, JSON_CT, b"{}" if method == "POST" else None)
    err = expect.gateway_error(r, 404, "unknown_url", "not_found_error")
    assert err["message"] == "Invalid URL (%s %s)" % (method, path)


# ---- OpenAI (and the OpenAI-format providers) -----------------------------------------------

def oa_completion(n, model, content, prompt, completion):
    return {"id": "chatcmpl-mock-%d" % n, "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            "system_fingerprint": "fp_mock"}


@pytest.mark.valgrind
def test_openai_non_streaming_relays_the_answer_unchanged(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(oa, "gpt-4o-mini")))
    r = post(gw, CHAT, chat_body("hello there", temperature=0.5, some_future_field={"x": [1, None]}))
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    answered_by(r, "openai", "gpt-4o-mini")
    assert r.json() == oa_completion(1, "gpt-4o-mini", "mock reply to: hello there", 2, 5)
    (q,) = oa.requests
    assert (q.method, q.path) == ("POST", "/v1/chat/completions")
    assert q.header("Authorization") == "Bearer " + OA_KEY
    assert q.header("Content-Type") == "application/json"
    # Everything the client sent goes on; only the model is the target's.
    assert q.json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}],
                      "temperature": 0.5, "some_future_field": {"x": [1, None]}}
    assert_no_secret(gw, OA_KEY)


@pytest.mark.valgrind
def test_openai_stream_without_usage_request(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(oa, "gpt-4o-mini")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/event-stream"
    answered_by(r, "openai", "gpt-4o-mini")
    # Usage is asked for upstream (for metering) ...
    assert oa.requests[0].json["stream_options"] == {"include_usage": True}
    # ... but its extra chunk does not reach a client that did not ask.
    m = "gpt-4o-mini"
    assert events(r) == [oa_chunk(1, m, {"role": "assistant", "content": ""}), oa_chunk(1, m, {"content": "mock"}),
                         oa_chunk(1, m, {"content": " reply"}), oa_chunk(1, m, {"content": " to:"}),
                         oa_chunk(1, m, {"content": " hi"}), oa_chunk(1, m, {"content": " you"}),
                         oa_chunk(1, m, {}, "stop"), "[DONE]"]


def test_openai_stream_with_usage_request(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(oa, "gpt-4o-mini")))
    r = post(gw, CHAT, chat_body("hi you", stream=True, stream_options={"include_usage": True}))
    assert r.status == 200, r
    evs = events(r)
    assert content_of(evs) == "mock reply to: hi you"
    assert evs[-2] == {"id": "chatcmpl-mock-1", "object": "chat.completion.chunk", "created": CREATED,
                       "model": "gpt-4o-mini", "system_fingerprint": "fp_mock", "choices": [],
                       "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}
    assert evs[-1] == "[DONE]"
    # The stream is relayed byte for byte.
    expected = b"".join(b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
                        for e in evs[:-1]) + b"data: [DONE]\n\n"
    assert bytes(r.body) == expected


def test_openai_tool_calls_both_ways(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(oa, "gpt-4o")))
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS))
    assert r.status == 200, r
    msg = r.json()["choices"][0]
    assert msg == {"index": 0, "logprobs": None, "finish_reason": "tool_calls",
                   "message": {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_mock_1", "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "please call tool now"}'}}]}}
    follow = {"model": "chat", "tools": TOOLS, "messages": [
        {"role": "user", "content": "please call tool now"},
        {"role": "assistant", "content": None, "tool_calls": msg["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_mock_1", "content": "found it"}]}
    r = post(gw, CHAT, follow)
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "mock reply to: please call tool now"}
    assert oa.requests[1].json["messages"] == follow["messages"]
    # streamed: the call's head and its argument fragments, in order
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS, stream=True))
    evs = events(r)
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in evs
             if isinstance(e, dict) and e["choices"] and "tool_calls" in e["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "call_mock_3", "type": "function",
                        "function": {"name": "lookup", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls[1:]) == '{"q": "please call tool now"}'
    assert evs[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_embeddings(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(oa, "text-embedding-3-small"), alias="emb"))
    r = post(gw, EMBED, {"model": "emb", "input": ["one two", "three"]})
    assert r.status == 200, r
    answered_by(r, "openai", "text-embedding-3-small")
    assert r.json() == {"object": "list", "model": "text-embedding-3-small",
                        "data": [{"object": "embedding", "index": 0, "embedding": mock_llm.embedding_for("one two")},
                                 {"object": "embedding", "index": 1, "embedding": mock_llm.embedding_for("three")}],
                        "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    assert (oa.requests[0].path, oa.requests[0].json) == (
        "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["one two", "three"]})


def test_embeddings_skip_providers_without_them(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(an, "claude-x"), target(oa, "text-embedding-3-small"), alias="emb"))
    r = post(gw, EMBED, {"model": "emb", "input": "x"})
    assert r.status == 200, r
    answered_by(r, "openai", "text-embedding-3-small")
    assert an.requests == []
    gw2 = gateway_factory(one_model(target(an, "claude-x"), alias="emb"))
    r = post(gw2, EMBED, {"model": "emb", "input": "x"})
    err = expect.gateway_error(r, 400, "unsupported_request", "invalid_request_error")
    assert err["message"] == ('model "emb" cannot serve this request: anthropic claude-x: '
                              'provider anthropic has no embeddings endpoint')


def test_openai_compatible_and_azure_urls(gateway_factory, llm_factory):
    oa = llm_factory("openai")
    oa.api_key = None
    gw = gateway_factory(ai_config({
        "local": {"targets": [{"provider": "openai-compatible", "model": "llama3", "base_url": oa.url}]},
        "local-v1": {"targets": [{"provider": "openai-compatible", "model": "llama3", "base_url": oa.url + "/v1/"}]},
        "az": {"targets": [{"provider": "azure-openai", "model": "my-deploy", "base_url": oa.url,
                            "api_key": "az-key-1"}]},
        "az-ver": {"targets": [{"provider": "azure-openai", "model": "my-deploy", "base_url": oa.url,
                                "api_key": "az-key-1", "api_version": "2025-01-01"}]}}))
    assert post(gw, CHAT, chat_body(model="local")).status == 200
    assert post(gw, CHAT, chat_body(model="local-v1")).status == 200
    r = post(gw, CHAT, chat_body(model="az"))
    r2 = post(gw, CHAT, chat_body(model="az-ver"))
    # The OpenAI mock serves only /v1/...: Azure's path gets its 404, relayed.
    assert (r.status, r2.status) == (404, 404)
    answered_by(r, "azure-openai", "my-deploy")
    got = [(q.target, q.header("Authorization"), q.header("api-key")) for q in oa.requests]
    assert got == [("/v1/chat/completions", None, None), ("/v1/chat/completions", None, None),
                   ("/openai/deployments/my-deploy/chat/completions?api-version=2024-06-01", None, "az-key-1"),
                   ("/openai/deployments/my-deploy/chat/completions?api-version=2025-01-01", None, "az-key-1")]
    assert r.json() == {"error": {"message": "Invalid URL (POST /openai/deployments/my-deploy/chat/completions)",
                                  "type": "invalid_request_error", "param": None, "code": None}}


# ---- Anthropic --------------------------------------------------------------------------------

def test_anthropic_non_streaming_is_translated(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    gw = gateway_factory(one_model(target(an, "claude-3-5-haiku-latest")))
    t0 = int(time.time())
    r = post(gw, CHAT, {"model": "chat", "messages": [{"role": "system", "content": "be brief"},
                                                      {"role": "user", "content": "hello there"}],
                        "temperature": 0.2, "unknown_field": 1})
    t1 = int(time.time())
    assert r.status == 200, r
    answered_by(r, "anthropic", "claude-3-5-haiku-latest")
    body = r.json()
    between(t0, body["created"], t1)
    assert body == {"id": "msg_mock_1", "object": "chat.completion", "created": body["created"], "model": "chat",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "mock reply to: hello there"},
                                 "finish_reason": "stop"}],
                    "usage": usage_obj(4, 5)}
    (q,) = an.requests
    assert (q.method, q.path) == ("POST", "/v1/messages")
    assert (q.header("x-api-key"), q.header("anthropic-version")) == (AN_KEY, "2023-06-01")
    assert q.header("Authorization") is None
    assert q.json == {"model": "claude-3-5-haiku-latest", "max_tokens": 1024, "system": "be brief",
                      "messages": [{"role": "user", "content": "hello there"}], "temperature": 0.2}
    assert_no_secret(gw, AN_KEY)


def test_anthropic_cache_usage_arithmetic_and_max_tokens(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    an.cached_tokens = 3
    an.cache_creation_tokens = 2
    gw = gateway_factory(one_model(target(an, "claude-x"), default_max_tokens=77))
    text = "one two three four five six seven"
    r = post(gw, CHAT, chat_body(text))
    assert an.requests[0].json["max_tokens"] == 77
    # input_tokens 2 + cache reads 3 + cache writes 2
    assert r.json()["usage"] == usage_obj(7, 10, cached=3)
    r = post(gw, CHAT, chat_body(text, max_tokens=5))
    assert an.requests[1].json["max_tokens"] == 5
    assert r.json()["choices"][0] == {"index": 0, "finish_reason": "length",
                                      "message": {"role": "assistant", "content": "mock reply to: one two"}}
    r = post(gw, CHAT, chat_body(text, stream=True, stream_options={"include_usage": True}))
    evs = events(r)
    assert evs[-2]["choices"] == []
    assert evs[-2]["usage"] == usage_obj(7, 10, cached=3)


@pytest.mark.valgrind
def test_anthropic_stream_is_translated(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    gw = gateway_factory(one_model(target(an, "claude-x")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/event-stream"
    answered_by(r, "anthropic", "claude-x")
    assert an.requests[0].json["stream"] is True
    rid = request_id(r)
    evs = events(r)
    created = evs[0]["created"]

    def ch(delta, finish=None):
        return xl_chunk(rid, created, delta, finish)

    assert evs == [ch({"role": "assistant", "content": ""}), ch({"content": "mock"}), ch({"content": " reply"}),
                   ch({"content": " to:"}), ch({"content": " hi"}), ch({"content": " you"}), ch({}, "stop"),
                   "[DONE]"]


def test_anthropic_tool_calls_both_ways(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    gw = gateway_factory(one_model(target(an, "claude-x")))
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS))
    assert r.status == 200, r
    choice = r.json()["choices"][0]
    assert choice == {"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_mock_1", "type": "function",
             "function": {"name": "lookup", "arguments": '{"q":"please call tool now"}'}}]}}
    assert an.requests[0].json["tools"] == [{"name": "lookup", "description": "find things", "input_schema": {
        "type": "object", "properties": {"q": {"type": "string"}}}}]
    follow = {"model": "chat", "tools": TOOLS, "messages": [
        {"role": "user", "content": "please call tool now"},
        {"role": "assistant", "content": None, "tool_calls": choice["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "toolu_mock_1", "content": "found it"}]}
    r = post(gw, CHAT, follow)
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "mock reply to: please call tool now"}
    assert an.requests[1].json["messages"] == [
        {"role": "user", "content": "please call tool now"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "lookup",
                                           "input": {"q": "please call tool now"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "found it"}]}]
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS, stream=True))
    evs = events(r)
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in evs
             if isinstance(e, dict) and e["choices"] and "tool_calls" in e["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "toolu_mock_3", "type": "function",
                        "function": {"name": "lookup", "arguments": ""}}
    args = [c["function"]["arguments"] for c in calls[1:]]
    assert args == mock_llm.arg_fragments('{"q": "please call tool now"}')
    assert evs[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert evs[-1] == "[DONE]"


# ---- Gemini -----------------------------------------------------------------------------------

def test_gemini_non_streaming_is_translated(gateway_factory, llm_factory):
    ge = llm_factory("gemini")
    gw = gateway_factory(one_model(target(ge, "gemini-1.5-flash")))
    r = post(gw, CHAT, {"model": "chat", "messages": [{"role": "system", "content": "be brief"},
                                                      {"role": "user", "content": "hello there"}],
                        "max_tokens": 50})
    assert r.status == 200, r
    answered_by(r, "gemini", "gemini-1.5-flash")
    body = r.json()
    assert body == {"id": "chatcmpl-" + request_id(r), "object": "chat.completion", "created": body["created"],
                    "model": "chat",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "mock reply to: hello there"},
                                 "finish_reason": "stop"}],
                    "usage": usage_obj(4, 5)}
    (q,) = ge.requests
    assert q.target == "/v1beta/models/gemini-1.5-flash:generateContent"
    assert q.header("x-goog-api-key") == GE_KEY
    assert q.json == {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
                      "systemInstruction": {"parts": [{"text": "be brief"}]},
                      "generationConfig": {"maxOutputTokens": 50}}
    assert_no_secret(gw, GE_KEY)


@pytest.mark.valgrind
def test_gemini_stream_is_translated(gateway_factory, llm_factory):
    ge = llm_factory("gemini")
    ge.cached_tokens = 1
    gw = gateway_factory(one_model(target(ge, "gemini-1.5-flash")))
    r = post(gw, CHAT, chat_body("hi you", stream=True, stream_options={"include_usage": True}))
    assert r.status == 200, r
    assert ge.requests[0].target == "/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse"
    rid = request_id(r)
    evs = events(r)
    created = evs[0]["created"]

    def ch(delta, finish=None):
        return xl_chunk(rid, created, delta, finish, usage=True)

    usage_chunk = {"id": "chatcmpl-" + rid, "object": "chat.completion.chunk", "created": created, "model": "chat",
                   "choices": [], "usage": usage_obj(2, 5, cached=1)}
    assert evs == [ch({"role": "assistant", "content": ""}), ch({"content": "mock"}), ch({"content": " reply"}),
                   ch({"content": " to:"}), ch({"content": " hi"}), ch({"content": " you"}), ch({}, "stop"),
                   usage_chunk, "[DONE]"]


def test_gemini_tool_calls(gateway_factory, llm_factory):
    ge = llm_factory("gemini")
    gw = gateway_factory(one_model(target(ge, "gemini-1.5-flash")))
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS))
    assert r.status == 200, r
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert (call["type"], call["function"]) == ("function", {"name": "lookup",
                                                             "arguments": '{"q":"please call tool now"}'})
    assert ge.requests[0].json["tools"] == [{"functionDeclarations": [{
        "name": "lookup", "description": "find things",
        "parametersJsonSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]
    follow = {"model": "chat", "tools": TOOLS, "messages": [
        {"role": "user", "content": "please call tool now"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "found it"}]}
    r = post(gw, CHAT, follow)
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "mock reply to: please call tool now"}
    r = post(gw, CHAT, chat_body("please call tool now", tools=TOOLS, stream=True))
    evs = events(r)
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in evs
             if isinstance(e, dict) and e["choices"] and "tool_calls" in e["choices"][0]["delta"]]
    assert len(calls) == 1
    assert calls[0]["function"] == {"name": "lookup", "arguments": '{"q":"please call tool now"}'}
    assert evs[-2]["choices"][0]["finish_reason"] == "tool_calls"


# ---- failover ---------------------------------------------------------------------------------

def two_openai(llm_factory, **kw):
    a = llm_factory("openai", name="primary")
    b = llm_factory("openai", name="secondary")
    return a, b, one_model(target(a, "gpt-a"), target(b, "gpt-b"), **kw)


def clean_stream_from(resp, model, n):
    """resp's events equal a clean OpenAI mock stream of "mock reply to: hi you" (reply n)."""
    assert events(resp) == [oa_chunk(n, model, {"role": "assistant", "content": ""}),
                            oa_chunk(n, model, {"content": "mock"}), oa_chunk(n, model, {"content": " reply"}),
                            oa_chunk(n, model, {"content": " to:"}), oa_chunk(n, model, {"content": " hi"}),
                            oa_chunk(n, model, {"content": " you"}), oa_chunk(n, model, {}, "stop"), "[DONE]"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_failover_on_server_errors(gateway_factory, llm_factory, status):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"status": status})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 200, r
    answered_by(r, "openai", "gpt-b")
    assert r.json() == oa_completion(1, "gpt-b", "mock reply to: hello there", 2, 5)
    assert (a.count(), b.count()) == (1, 1)
    assert "ai-proxy: model \"chat\": openai gpt-a failed (HTTP %d); trying the next target" % status in gw.stderr()


@pytest.mark.valgrind
def test_failover_is_invisible_in_streams(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"status": 503})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    answered_by(r, "openai", "gpt-b")
    clean_stream_from(r, "gpt-b", 1)


def test_anthropic_529_fails_over_to_gemini(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    ge = llm_factory("gemini")
    gw = gateway_factory(one_model(target(an, "claude-x"), target(ge, "gemini-1.5-flash")))
    an.script({"status": 529})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 200, r
    answered_by(r, "gemini", "gemini-1.5-flash")
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: hello there"


def test_429_waits_for_retry_after_within_the_cap(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, retry_after_cap="2s")
    gw = gateway_factory(cfg)
    a.script({"status": 429, "retry_after": 1})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 200, r
    answered_by(r, "openai", "gpt-a")
    assert (a.count(), b.count()) == (2, 0)
    a.script({"status": 429, "retry_after_ms": 100})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-a")
    assert (a.count(), b.count()) == (4, 0)
    # The same target is waited for once per request, then the next one.
    a.script({"status": 503, "retry_after_ms": 50}, {"status": 503, "retry_after_ms": 50})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-b")
    assert (a.count(), b.count()) == (6, 1)


def test_429_beyond_the_cap_fails_over_at_once(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, retry_after_cap="500ms")
    gw = gateway_factory(cfg)
    a.script({"status": 429, "retry_after": 1})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-b")
    assert (a.count(), b.count()) == (1, 1)
    # A cap of 0 never waits, not even for a zero wait.
    a2, b2, cfg2 = two_openai(llm_factory, retry_after_cap=0)
    gw2 = gateway_factory(cfg2)
    a2.script({"status": 429, "retry_after_ms": 0})
    answered_by(post(gw2, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert (a2.count(), b2.count()) == (1, 1)


def test_insufficient_quota_is_not_retried(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"status": 429, "code": "insufficient_quota"})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 429, r
    answered_by(r, "openai", "gpt-a")
    assert r.json() == {"error": {"message": mock_llm.OPENAI_QUOTA_MESSAGE, "type": "insufficient_quota",
                                  "param": None, "code": "insufficient_quota"}}
    assert (a.count(), b.count()) == (1, 0)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_no_failover_on_client_errors(gateway_factory, llm_factory, status):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"status": status, "message": "that is not right"})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == status, r
    answered_by(r, "openai", "gpt-a")
    assert r.json()["error"]["message"] == "that is not right"
    assert (a.count(), b.count()) == (1, 0)


def test_no_failover_on_401_and_no_key_in_the_answer(gateway_factory, llm_factory):
    a = llm_factory("openai", name="primary")
    b = llm_factory("openai", name="secondary")
    secret = "sk-wrong-key-0123456789abcdef"
    gw = gateway_factory(one_model(target(a, "gpt-a", api_key=secret), target(b, "gpt-b")))
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 401, r
    answered_by(r, "openai", "gpt-a")
    assert r.json() == {"error": {"message": "provider openai refused the gateway's credentials for model gpt-a "
                                             "(HTTP 401)", "type": "invalid_request_error", "param": None,
                                  "code": "invalid_api_key"}}
    assert (a.count(), b.count()) == (1, 0)
    assert secret[-4:] not in bytes(r.body).decode()
    assert 'ai-proxy: model "chat": openai gpt-a answered HTTP 401; not retried' in gw.stderr()
    assert_no_secret(gw, secret)


def test_anthropic_400_is_translated_and_not_retried(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(an, "claude-x"), target(oa, "gpt-b")))
    an.script({"status": 400, "message": "messages: too long"})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 400, r
    assert r.json() == {"error": {"message": "messages: too long", "type": "invalid_request_error", "param": None,
                                  "code": "invalid_request_error"}}
    assert oa.count() == 0


@pytest.mark.valgrind
def test_key_rotation_on_429(gateway_factory, llm_factory):
    a = llm_factory("openai", name="primary")
    a.api_key = None
    b = llm_factory("openai", name="secondary")
    gw = gateway_factory(one_model(target(a, "gpt-a", api_keys=["key-one", "key-two", "key-three"]),
                                   target(b, "gpt-b"), retry_after_cap=0))
    a.script({"status": 429})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-a")
    assert [q.header("Authorization") for q in a.requests] == ["Bearer key-one", "Bearer key-two"]
    # The next request starts with the key that worked.
    post(gw, CHAT, chat_body("hello there"))
    assert a.requests[2].header("Authorization") == "Bearer key-two"
    # Every key limited: then the next target.
    a.script({"status": 429}, {"status": 429}, {"status": 429})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-b")
    assert [q.header("Authorization") for q in a.requests[3:]] == ["Bearer key-two", "Bearer key-three",
                                                                   "Bearer key-one"]
    assert_no_secret(gw, "key-one", "key-two", "key-three")


def test_connect_error_fails_over(gateway_factory, llm_factory):
    from ports import dead_port
    b = llm_factory("openai")
    dead = {"provider": "openai", "model": "gpt-dead", "api_key": "k", "base_url": "http://127.0.0.1:%d" % dead_port()}
    gw = gateway_factory(one_model(dead, target(b, "gpt-b")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    answered_by(r, "openai", "gpt-b")
    clean_stream_from(r, "gpt-b", 1)
    # With nothing left: 502 in the gateway's error shape.
    gw2 = gateway_factory(one_model(dead))
    r = post(gw2, CHAT, chat_body("hello there"))
    err = expect.gateway_error(r, 502, "provider_unavailable", "api_error")
    assert err["message"].startswith('no provider of model "chat" answered (last: connect failed')


def test_timeout_before_the_first_byte_fails_over(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, timeouts={"connect": "100ms", "first_token": "300ms"})
    gw = gateway_factory(cfg)
    a.script({"delay_ms": 2000})
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 200, r
    answered_by(r, "openai", "gpt-b")
    assert "openai gpt-a failed (no first token within 400 ms); trying the next target" in gw.stderr()
    a.script({"delay_ms": 2000})
    b.script({"delay_ms": 2000})
    r = post(gw, CHAT, chat_body("hello there"))
    err = expect.gateway_error(r, 504, "provider_timeout", "api_error")
    assert err["message"] == 'no provider of model "chat" answered (last: no first token within 400 ms)'


def test_connect_time_adds_to_the_first_token_deadline(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, timeouts={"connect": "1500ms", "first_token": "100ms"})
    gw = gateway_factory(cfg)
    a.script({"delay_ms": 400})
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-a")


def test_first_token_timeout_in_a_stream_fails_over_unseen(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, timeouts={"connect": "100ms", "first_token": "300ms"})
    gw = gateway_factory(cfg)
    a.script({"first_token_delay_ms": 2000})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    answered_by(r, "openai", "gpt-b")
    clean_stream_from(r, "gpt-b", 1)


def test_drop_before_content_fails_over_unseen(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"drop": "before_content"})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    answered_by(r, "openai", "gpt-b")
    clean_stream_from(r, "gpt-b", 1)
    a.script({"drop": "before_head"})
    r = post(gw, CHAT, chat_body("hello there"))
    answered_by(r, "openai", "gpt-b")


@pytest.mark.valgrind
def test_anthropic_error_event_before_content_fails_over_unseen(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(an, "claude-x"), target(oa, "gpt-b")))
    an.script({"mid_stream_error": True, "after_chunks": 0})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    answered_by(r, "openai", "gpt-b")
    clean_stream_from(r, "gpt-b", 1)


def error_chunk(message, type_="server_error"):
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


@pytest.mark.valgrind
def test_drop_after_content_ends_with_an_error_chunk(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory)
    gw = gateway_factory(cfg)
    a.script({"drop": "after_content", "after_chunks": 2})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    assert r.complete
    answered_by(r, "openai", "gpt-a")
    assert events(r) == [oa_chunk(1, "gpt-a", {"role": "assistant", "content": ""}),
                         oa_chunk(1, "gpt-a", {"content": "mock"}), oa_chunk(1, "gpt-a", {"content": " reply"}),
                         error_chunk("the provider's stream ended early (connection closed)"), "[DONE]"]
    assert b.count() == 0


def test_mid_stream_error_after_content(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    gw = gateway_factory(one_model(target(an, "claude-x")))
    an.script({"mid_stream_error": True, "after_chunks": 1})
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    rid = request_id(r)
    evs = events(r)
    created = evs[0]["created"]
    assert evs == [xl_chunk(rid, created, {"role": "assistant", "content": ""}),
                   xl_chunk(rid, created, {"content": "mock"}), error_chunk("Overloaded"), "[DONE]"]


def test_idle_timeout_after_content(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, timeouts={"idle": "200ms"})
    gw = gateway_factory(cfg)
    a.chunk_delay_ms = 2000
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert events(r) == [oa_chunk(1, "gpt-a", {"role": "assistant", "content": ""}),
                         oa_chunk(1, "gpt-a", {"content": "mock"}),
                         error_chunk("the provider's stream ended early (timeout)", "timeout_error"), "[DONE]"]


def test_breaker_opens_and_skips_the_target(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, breaker={"max_fails": 2, "open_time": "30s"})
    gw = gateway_factory(cfg)
    a.set_status(503)
    for _ in range(2):
        answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert a.count() == 2
    assert "ai-proxy: openai gpt-a: circuit opened for 30000 ms" in gw.stderr()
    for _ in range(3):
        answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert a.count() == 2


def test_breaker_half_opens_after_open_time(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, breaker={"max_fails": 1, "open_time": "300ms"})
    gw = gateway_factory(cfg)
    a.script({"status": 503})
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert a.count() == 1
    time.sleep(scaled(0.5))
    # Half open: tried again; it works, so the circuit closes.
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-a")
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-a")
    assert a.count() == 3


def test_all_targets_open_is_503(gateway_factory, llm_factory):
    a = llm_factory("openai")
    gw = gateway_factory(one_model(target(a, "gpt-a"), breaker={"max_fails": 1}))
    a.set_status(503)
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 503
    assert r.json() == {"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error",
                                  "param": None, "code": None}}
    r = post(gw, CHAT, chat_body("hello there"))
    err = expect.gateway_error(r, 503, "no_available_provider", "api_error")
    assert err["message"] == 'every provider of model "chat" is failing; try again later'
    assert a.count() == 1


def test_breaker_can_be_turned_off(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, breaker={"max_fails": 0})
    gw = gateway_factory(cfg)
    a.set_status(503)
    for _ in range(4):
        answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert a.count() == 4


def test_untranslatable_request_skips_the_target(gateway_factory, llm_factory):
    an = llm_factory("anthropic")
    oa = llm_factory("openai")
    gw = gateway_factory(one_model(target(an, "claude-x"), target(oa, "gpt-b")))
    r = post(gw, CHAT, chat_body("hello there", n=2))
    answered_by(r, "openai", "gpt-b")
    assert an.count() == 0
    gw2 = gateway_factory(one_model(target(an, "claude-x")))
    r = post(gw2, CHAT, chat_body("hello there", n=2))
    err = expect.gateway_error(r, 400, "unsupported_request", "invalid_request_error")
    assert err["message"] == 'model "chat" cannot serve this request: anthropic claude-x: n must be 1 for this provider'


# ---- strategies -------------------------------------------------------------------------------

def test_weighted_strategy(gateway_factory, llm_factory):
    a = llm_factory("openai", name="a")
    b = llm_factory("openai", name="b")
    gw = gateway_factory(one_model(target(a, "gpt-a", weight=0), target(b, "gpt-b", weight=5), strategy="weighted"))
    for _ in range(5):
        answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-b")
    assert a.count() == 0
    # weight 0 still serves as a fallback
    b.script({"status": 503})
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-a")
    gw2 = gateway_factory(one_model(target(a, "gpt-a"), target(b, "gpt-b"), strategy="weighted"))
    seen = {post(gw2, CHAT, chat_body("hello there")).header("X-Sluice-Model") for _ in range(40)}
    assert seen == {"gpt-a", "gpt-b"}


def test_lowest_latency_strategy(gateway_factory, llm_factory):
    slow = llm_factory("openai", name="slow")
    fast = llm_factory("openai", name="fast")
    slow.latency_ms = 300
    gw = gateway_factory(one_model(target(slow, "gpt-slow"), target(fast, "gpt-fast"), strategy="lowest_latency"))
    # untried targets go first, so both get measured; then the faster one wins
    got = [post(gw, CHAT, chat_body("hello there")).header("X-Sluice-Model") for _ in range(4)]
    assert got == ["gpt-slow", "gpt-fast", "gpt-fast", "gpt-fast"]
    fast.set_status(503)
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-slow")


def test_mock_latency_counts_against_the_first_token_deadline(gateway_factory):
    gw = gateway_factory(one_model(target(None, "slow-mock"), {"provider": "mock", "model": "other"},
                                   mock={"latency": "1s"}, timeouts={"connect": "50ms", "first_token": "100ms"}))
    r = post(gw, CHAT, chat_body("hello there"))
    err = expect.gateway_error(r, 504, "provider_timeout", "api_error")
    assert err["message"] == 'no provider of model "chat" answered (last: no first token within 150 ms)'


@pytest.mark.valgrind
def test_client_leaving_mid_stream(gateway_factory, llm_factory):
    a = llm_factory("openai")
    a.chunk_delay_ms = 300
    gw = gateway_factory(one_model(target(a, "gpt-a")))
    c = gw.conn()
    c.send(raw.build_request("POST", CHAT, JSON_CT, json.dumps(chat_body("hi you", stream=True))))
    head = c.read_head()
    assert head.status == 200
    first = c.read_chunk(head)
    assert first.startswith(b"data: ")
    c.close()
    time.sleep(scaled(0.2))
    # The worker carries on.
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: hello there"


def test_client_leaving_while_waiting_for_a_retry(gateway_factory, llm_factory):
    a, b, cfg = two_openai(llm_factory, retry_after_cap="1s")
    gw = gateway_factory(cfg)
    a.script({"status": 429, "retry_after": 1})
    c = gw.conn()
    c.send(raw.build_request("POST", CHAT, JSON_CT, json.dumps(chat_body("hello there"))))
    a.wait_for_requests(1)
    c.close()
    time.sleep(scaled(1.3))
    assert (a.count(), b.count()) == (1, 0)
    answered_by(post(gw, CHAT, chat_body("hello there")), "openai", "gpt-a")


# ---- config -----------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, text, env=None):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent(text))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL, env=env)
    return proc, str(path)


def test_schema_errors(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            match: {paths: ["/v1/*"]}
            plugins:
              - ai-proxy:
                  models:
                    chat:
                      strategy: random
                      targets:
                        - {provider: bedrock, model: x, colour: red}
                        - {provider: openai}
                    empty:
                      targets: []
                  timeouts: {connect: -1s, first_token: soon, idle: 0}
                  retry_after_cap: 2m
                  breaker: {max_fails: -1, open_time: 2h}
                  default_max_tokens: 0
                  mock: {chunk_words: 0, latency: 2m, reply: 5}
        """)
    assert proc.returncode == 1
    w = "%s:6: routes[0].plugins[0] (ai-proxy)" % path
    assert proc.stderr.splitlines() == [
        w + '.models.chat.strategy: must be one of "failover", "weighted", "lowest_latency"',
        w + '.models.chat.targets[0].provider: must be one of "openai", "openai-compatible", "azure-openai", '
            '"anthropic", "gemini", "mock"',
        w + ".models.chat.targets[0].colour: unknown field",
        w + ".models.chat.targets[1].model: missing required field",
        w + ".models.empty.targets: must have at least 1 item",
        w + '.timeouts.connect: invalid duration "-1s"',
        w + '.timeouts.first_token: invalid duration "soon"',
        w + ".timeouts.idle: must be >= 1ms",
        w + ".retry_after_cap: must be <= 1m",
        w + ".breaker.max_fails: must be >= 0",
        w + ".breaker.open_time: must be <= 1h",
        w + ".default_max_tokens: must be >= 1",
        w + ".mock.chunk_words: must be >= 1",
        w + ".mock.latency: must be <= 1m",
        w + ".mock.reply: expected string, got integer"]


def test_models_is_required(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            plugins:
              - ai-proxy: {}
        """)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:5: routes[0].plugins[0] (ai-proxy).models: missing required field" % path]
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            plugins:
              - ai-proxy: {models: {}}
        """)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:5: routes[0].plugins[0] (ai-proxy): models: name at least one model" % path]


@pytest.mark.parametrize("entry, error", [
    ("{provider: openai, model: m}", "models.chat.targets[0]: provider openai needs api_key or api_keys"),
    ("{provider: anthropic, model: m}", "models.chat.targets[0]: provider anthropic needs api_key or api_keys"),
    ("{provider: gemini, model: m}", "models.chat.targets[0]: provider gemini needs api_key or api_keys"),
    ("{provider: openai, model: m, api_key: a, api_keys: [b]}",
     "models.chat.targets[0]: set api_key or api_keys, not both"),
    ("{provider: openai-compatible, model: m}", "models.chat.targets[0]: provider openai-compatible needs base_url"),
    ("{provider: azure-openai, model: m, api_key: k}",
     "models.chat.targets[0]: provider azure-openai needs base_url"),
    ("{provider: openai, model: m, api_key: k, api_version: '1'}",
     "models.chat.targets[0].api_version: only azure-openai takes an api_version"),
    ("{provider: gemini, model: 'a/b', api_key: k}",
     'models.chat.targets[0].model: "a/b" may only contain letters, digits and . _ : -'),
    ("{provider: azure-openai, model: 'my dep', api_key: k, base_url: 'https://x'}",
     'models.chat.targets[0].model: "my dep" may only contain letters, digits and . _ : -'),
])
def test_configure_refuses_targets_that_cannot_work(sluice_bin, tmp_path, entry, error):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            plugins:
              - ai-proxy:
                  models:
                    chat:
                      targets:
                        - %s
        """ % entry)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:5: routes[0].plugins[0] (ai-proxy): %s" % (path, error)]


@pytest.mark.parametrize("entry, error", [
    ("{provider: openai, model: m, api_key: k, base_url: 'ftp://x'}",
     ".base_url: must match ^https?://[^/?#]+(/[^?#]*)?$"),
    ("{provider: openai, model: m, api_key: k, base_url: 'http://x?q=1'}",
     ".base_url: must match ^https?://[^/?#]+(/[^?#]*)?$"),
    ("{provider: anthropic, model: m, api_keys: []}", ".api_keys: must have at least 1 item"),
    ("{provider: anthropic, model: m, api_key: ''}", ".api_key: must be at least 1 character"),
    ("{provider: mock, model: m, weight: -1}", ".weight: must be >= 0"),
    ("{provider: mock, model: ''}", ".model: must be at least 1 character"),
])
def test_target_field_errors(sluice_bin, tmp_path, entry, error):
    proc, path = check(sluice_bin, tmp_path, """\
        listen: 127.0.0.1:1
        routes:
          - name: llm
            plugins:
              - ai-proxy:
                  models:
                    chat:
                      targets:
                        - %s
        """ % entry)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["%s:5: routes[0].plugins[0] (ai-proxy).models.chat.targets[0]%s"
                                        % (path, error)]


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ai-gateway.yaml"


def test_example_config_loads_and_serves_its_mock_model(sluice_bin, tmp_path, gateway_factory):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run([sluice_bin, "check", "-c", str(EXAMPLE)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL, env=env)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout == "%s: ok\n" % EXAMPLE
    text = EXAMPLE.read_text()
    assert "listen: 127.0.0.1:8080\n" in text
    gw = gateway_factory(text.replace("listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:@PORT@\n")
                         .replace("workers: auto", "workers: 1"))
    r = post(gw, CHAT, chat_body("hello there", model="demo"))
    assert r.status == 200, r
    answered_by(r, "mock", "mock-1")
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: hello there"
    assert [m["id"] for m in gw.get(MODELS).json()["data"]] == ["chat-default", "fast", "local", "azure", "embed",
                                                                "demo"]


# ---- providers that answer nonsense ---------------------------------------------------------------

class FixedServer:
    """Answers every request on a connection with the same bytes, then closes."""

    def __init__(self, answer):
        import socket
        import threading
        self.answer = answer
        self.count = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(scaled(5))
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        piece = c.recv(65536)
                        if not piece:
                            break
                        data += piece
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    while len(rest) < length:
                        piece = c.recv(65536)
                        if not piece:
                            break
                        rest += piece
                    self.count += 1
                    c.sendall(self.answer)
                except OSError:
                    pass

    def stop(self):
        self.sock.close()


@pytest.fixture
def fixed_server():
    made = []

    def make(answer):
        s = FixedServer(answer)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def sse_answer(*events_):
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events_) + b"0\r\n\r\n"
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + body)


def compat(server, model="odd"):
    return {"provider": "openai-compatible", "model": model, "base_url": server.url}


def test_malformed_stream_before_content_fails_over(gateway_factory, fixed_server):
    bad = fixed_server(sse_answer(b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
                                  b"data: {not json\n\n"))
    gw = gateway_factory(one_model(compat(bad), target(None, "mock-1")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    answered_by(r, "mock", "mock-1")
    assert content_of(events(r)) == "mock reply to: hi you"
    assert bad.count == 1
    assert ('openai-compatible odd failed (the provider sent a malformed stream); trying the next target'
            in gw.stderr())


def test_malformed_stream_after_content_ends_with_an_error_chunk(gateway_factory, fixed_server):
    first = b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'
    bad = fixed_server(sse_answer(first, b"data: {not json\n\n"))
    gw = gateway_factory(one_model(compat(bad), target(None, "mock-1")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    assert r.status == 200, r
    answered_by(r, "openai-compatible", "odd")
    assert bytes(r.body) == first + (b'data: {"error":{"message":"the provider sent a malformed stream",'
                                     b'"type":"server_error","param":null,"code":null}}\n\ndata: [DONE]\n\n')


def test_stream_without_an_end_fails_over(gateway_factory, fixed_server):
    # A clean end of the body without [DONE] (or a finish) is not a clean end of the stream.
    bad = fixed_server(sse_answer(b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'))
    gw = gateway_factory(one_model(compat(bad), target(None, "mock-1")))
    r = post(gw, CHAT, chat_body("hi you", stream=True))
    answered_by(r, "mock", "mock-1")


def test_non_json_answer_fails_over(gateway_factory, fixed_server):
    bad = fixed_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                       b"<html/>\r\n")
    gw = gateway_factory(one_model(compat(bad), target(None, "mock-1")))
    answered_by(post(gw, CHAT, chat_body("hello there")), "mock", "mock-1")
    gw2 = gateway_factory(one_model(compat(bad)))
    r = post(gw2, CHAT, chat_body("hello there"))
    err = expect.gateway_error(r, 502, "provider_unavailable", "api_error")
    assert err["message"] == ('no provider of model "chat" answered '
                              '(last: the provider\'s response is not a JSON object)')


def test_untranslatable_anthropic_answer_fails_over(gateway_factory, fixed_server):
    body = b'{"type": "message", "content": "not a list"}'
    bad = fixed_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n%s" % (len(body), body))
    gw = gateway_factory(one_model({"provider": "anthropic", "model": "c", "api_key": "k", "base_url": bad.url},
                                   target(None, "mock-1")))
    answered_by(post(gw, CHAT, chat_body("hello there")), "mock", "mock-1")
    assert "anthropic c failed (the provider's response could not be translated)" in gw.stderr()


def test_error_status_with_a_non_json_body(gateway_factory, fixed_server):
    bad = fixed_server(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 5\r\nConnection: close\r\n\r\nshort")
    gw = gateway_factory(one_model(compat(bad), target(None, "mock-1")))
    r = post(gw, CHAT, chat_body("hello there"))
    assert r.status == 418, r
    answered_by(r, "openai-compatible", "odd")
    assert r.json() == {"error": {"message": "upstream openai returned HTTP 418", "type": "invalid_request_error",
                                  "param": None, "code": None}}
