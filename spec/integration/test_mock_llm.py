"""Self-tests of the mock LLM providers (no sluice binary needed).

Expected bodies are written out here rather than taken from mock_llm, so a
mistake in the mock's wire format cannot hide behind the same mistake in the
test.
"""

import base64
import http.client
import json
import struct
import time

import pytest

import mock_llm
import raw
from mock_llm import MockLLM

OA = {"Authorization": "Bearer sk-mock-openai"}
AN = {"x-api-key": "sk-ant-mock", "anthropic-version": "2023-06-01"}
GE = {"x-goog-api-key": "mock-gemini-key"}
JSON_CT = {"Content-Type": "application/json"}

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
GEN = "/v1beta/models/gemini-2.0-flash:generateContent"
SSE = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"

OA_TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}]
AN_TOOLS = [{"name": "lookup", "input_schema": {"type": "object"}}]
GE_TOOLS = [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}]


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


def oa_body(text="hello there", **kw):
    return dict({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}, **kw)


def an_body(text="hello there", **kw):
    return dict({"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}, **kw)


def ge_body(text="hello there", **kw):
    return dict({"contents": [{"role": "user", "parts": [{"text": text}]}]}, **kw)


def call(llm, method, path, body=None, headers=None):
    """(status, response headers as a dict with lower-case names, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", llm.port, timeout=5)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = dict(JSON_CT if data is not None else {}, **(headers or {}))
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def post(llm, path, body, headers):
    return call(llm, "POST", path, body, headers)


def stream(llm, path, body, headers, conn=None):
    """Sends one request on a raw connection and reads the chunked answer:
    (head, [(seconds since the request, chunk payload)], complete)."""
    c = conn or raw.Conn(llm.port)
    data = json.dumps(body).encode()
    t0 = time.monotonic()
    c.send(raw.build_request("POST", path, dict(JSON_CT, **headers), data, host="llm.test"))
    head = c.read_head()
    chunks = []
    complete = False
    try:
        while True:
            payload = c.read_chunk(head)
            if not payload:
                complete = True
                break
            chunks.append((time.monotonic() - t0, payload))
    except raw.IncompleteResponse:
        pass
    if conn is None:
        c.close()
    return head, chunks, complete


def payloads(chunks):
    return [p for _, p in chunks]


def sse_json(events):
    """Parsed data of OpenAI/Gemini data-only events (each must be compact JSON)."""
    out = []
    for ev in events:
        assert ev.startswith(b"data: ")
        text = ev[len(b"data: "):].rstrip(b"\r\n")
        out.append(json.loads(text))
    return out


# -- counting and reply rules -------------------------------------------------------------

def test_words_counts_whitespace_separated():
    assert mock_llm.words("") == 0
    assert mock_llm.words("  a  b\tc\nd ") == 4


OA_CONVERSATION = {"model": "gpt-4o", "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "What is"},
                                 {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                 {"type": "text", "text": "the weather?"}]},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "sunny and warm"},
    {"role": "assistant", "content": "It is sunny."},
    {"role": "user", "content": "thanks a lot"},
]}
AN_CONVERSATION = {"model": "claude-x", "max_tokens": 50, "system": [{"type": "text", "text": "Be kind."}],
                   "tools": AN_TOOLS, "messages": [
    {"role": "user", "content": "please call tool now"},
    {"role": "assistant", "content": [{"type": "text", "text": "Calling."},
                                      {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "x"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42 degrees"}]},
]}
GE_CONVERSATION = {"systemInstruction": {"parts": [{"text": "Answer in French."}]}, "contents": [
    {"role": "user", "parts": [{"text": "Bonjour"}]},
    {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "x"}}}]},
    {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"r": "a b c"}}}]},
    {"parts": [{"text": "merci beaucoup"}]},
]}


def test_prompt_tokens_count_texts_the_model_reads():
    # system 3 + user 2+2 + assistant 3 + user 3; tool call and tool result not counted
    assert mock_llm.prompt_tokens("openai", OA_CONVERSATION) == 13
    # system 2 + user 4 + assistant text 1; tool_use and tool_result not counted
    assert mock_llm.prompt_tokens("anthropic", AN_CONVERSATION) == 7
    # systemInstruction 3 + 1 + 2 (a content without role is the user's)
    assert mock_llm.prompt_tokens("gemini", GE_CONVERSATION) == 6


def test_prompt_tokens_survive_malformed_bodies():
    assert mock_llm.prompt_tokens("openai", None) == 0
    assert mock_llm.prompt_tokens("openai", {"messages": "nope"}) == 0
    assert mock_llm.prompt_tokens("openai", {"messages": [1, None, {"role": "user", "content": 5}]}) == 0
    assert mock_llm.prompt_tokens("anthropic", {"system": 7, "messages": [{"role": "user", "content": [1, {}]}]}) == 0
    assert mock_llm.prompt_tokens("gemini", {"contents": [{"parts": "x"}, {"parts": [{"text": 3}]}]}) == 0


def test_expected_reply_text():
    r = mock_llm.expected_reply("openai", OA_CONVERSATION)
    assert (r.text, r.tool_name, r.tool_args, r.query) == ("mock reply to: thanks a lot", None, None, "thanks a lot")
    assert (r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish) == (13, 6, 19, "stop")
    assert mock_llm.usage("openai", OA_CONVERSATION) == (13, 6)
    assert mock_llm.usage("openai", OA_CONVERSATION, reply_text="just four words here") == (13, 4)


def test_expected_reply_after_a_tool_result_is_text():
    # The last user turn with text asks for a tool, but the conversation ends
    # with the tool result: answering with another call would loop forever.
    r = mock_llm.expected_reply("anthropic", AN_CONVERSATION)
    assert (r.text, r.tool_name, r.finish) == ("mock reply to: please call tool now", None, "end_turn")
    r = mock_llm.expected_reply("gemini", GE_CONVERSATION)
    assert (r.text, r.finish, r.completion_tokens) == ("mock reply to: merci beaucoup", "STOP", 5)


def test_expected_reply_tool_call_per_kind():
    r = mock_llm.expected_reply("openai", oa_body("please call tool x", tools=OA_TOOLS))
    assert (r.text, r.tool_name, r.tool_args) == (None, "lookup", '{"q": "please call tool x"}')
    assert (r.prompt_tokens, r.completion_tokens, r.finish) == (4, 5, "tool_calls")
    r = mock_llm.expected_reply("anthropic", an_body("call tool", tools=AN_TOOLS))
    assert (r.tool_name, r.tool_args, r.completion_tokens, r.finish) == ("lookup", '{"q": "call tool"}', 3, "tool_use")
    r = mock_llm.expected_reply("gemini", ge_body("call tool", tools=GE_TOOLS))
    assert (r.tool_name, r.tool_args, r.finish) == ("lookup", '{"q": "call tool"}', "STOP")
    # No tools: the trigger phrase is just text.
    assert mock_llm.expected_reply("openai", oa_body("call tool")).text == "mock reply to: call tool"
    # Trigger phrase is case-sensitive.
    assert mock_llm.expected_reply("openai", oa_body("Call Tool", tools=OA_TOOLS)).tool_name is None


def test_expected_reply_max_tokens_cuts_after_words():
    r = mock_llm.expected_reply("openai", oa_body("a b c", max_tokens=4))
    assert (r.text, r.completion_tokens, r.finish) == ("mock reply to: a", 4, "length")
    r = mock_llm.expected_reply("openai", oa_body("a b c", max_completion_tokens=6, max_tokens=2))
    assert (r.text, r.finish) == ("mock reply to: a b c", "stop")
    r = mock_llm.expected_reply("anthropic", an_body("a b c", max_tokens=3))
    assert (r.text, r.finish) == ("mock reply to:", "max_tokens")
    r = mock_llm.expected_reply("gemini", ge_body("a", generationConfig={"maxOutputTokens": 0}))
    assert (r.text, r.completion_tokens, r.finish) == ("", 0, "MAX_TOKENS")


def test_word_pieces_and_fragments():
    assert mock_llm.word_pieces("mock reply  to: x ") == ["mock", " reply", "  to:", " x "]
    assert mock_llm.word_pieces("") == []
    assert mock_llm.word_pieces("  ") == ["  "]
    assert mock_llm.word_pieces(" lead") == [" lead"]
    assert mock_llm.arg_fragments('{"q": "call tool"}') == ['{"q": ', '"call ', 'tool"}']
    assert mock_llm.arg_fragments("") == []


def test_sse_events_parser():
    assert mock_llm.sse_events(b"event: a\ndata: {}\n\ndata: [DONE]\n\n") == [("a", "{}"), (None, "[DONE]")]
    assert mock_llm.sse_events("data: x\r\n\r\ndata:y\r\ndata: z\r\n\r\n") == [(None, "x"), (None, "y\nz")]


def test_embedding_vector_is_deterministic():
    v = mock_llm.embedding_for("hello")
    assert len(v) == 8
    assert v == mock_llm.embedding_for("hello")
    assert v != mock_llm.embedding_for("hello!")
    assert all(-1 <= x < 1 and x * 128 == int(x * 128) for x in v)
    assert len(mock_llm.embedding_for("hello", 20)) == 20


def test_error_bodies():
    assert mock_llm.error_body("openai", 503) == {"error": {
        "message": "The server is overloaded or not ready yet.", "type": "server_error", "param": None, "code": None}}
    assert mock_llm.error_body("openai", 429, code="insufficient_quota") == {"error": {
        "message": mock_llm.OPENAI_QUOTA_MESSAGE, "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}}
    assert mock_llm.error_body("openai", 502) == {"error": {
        "message": "Request failed.", "type": "server_error", "param": None, "code": None}}
    assert mock_llm.error_body("anthropic", 529) == {
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert mock_llm.error_body("anthropic", 503) == {
        "type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    assert mock_llm.error_body("anthropic", 418, message="teapot") == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "teapot"}}
    assert mock_llm.error_body("gemini", 503) == {"error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}
    assert mock_llm.error_body("gemini", 429, retry_after=2) == {"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}}
    with pytest.raises(ValueError):
        mock_llm.error_body("cohere", 500)


# -- construction and script validation ----------------------------------------------------

def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        MockLLM("cohere")


@pytest.mark.parametrize("kind, step", [
    ("openai", "503"),
    ("openai", {"stauts": 503}),
    ("openai", {"status": "503"}),
    ("openai", {"status": 99}),
    ("openai", {"status": True}),
    ("openai", {"delay_ms": -1}),
    ("openai", {"retry_after": 1}),
    ("openai", {"drop": "sometimes"}),
    ("openai", {"after_chunks": 2}),
    ("openai", {"drop": "before_content", "after_chunks": 2}),
    ("openai", {"mid_stream_error": 1}),
    ("openai", {"status": 503, "drop": "after_content"}),
    ("openai", {"status": 429, "first_token_delay_ms": 5}),
    ("openai", {"status": 500, "headers": "x: y"}),
    ("anthropic", {"status": 429, "code": "insufficient_quota"}),
])
def test_bad_script_steps_are_refused(llm_factory, kind, step):
    llm = llm_factory(kind)
    with pytest.raises(ValueError):
        llm.script({"status": 500}, step)
    assert llm.pending_steps() == 0     # nothing of a refused script is queued


# -- OpenAI ----------------------------------------------------------------------------------

def test_openai_chat_completion(llm_factory):
    llm = llm_factory("openai")
    status, hdrs, body = post(llm, CHAT, OA_CONVERSATION, OA)
    assert status == 200
    assert hdrs["content-type"] == "application/json"
    assert json.loads(body) == {
        "id": "chatcmpl-mock-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "mock reply to: thanks a lot"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 13, "completion_tokens": 6, "total_tokens": 19},
        "system_fingerprint": "fp_mock"}
    assert body.startswith(b'{"id":"chatcmpl-mock-1","object":"chat.completion",')
    req = llm.requests[-1]
    assert (req.method, req.path, req.json) == ("POST", CHAT, OA_CONVERSATION)
    assert req.header("authorization") == "Bearer sk-mock-openai"
    assert req.reply.text == "mock reply to: thanks a lot"
    assert req.step is None
    # ids count replies
    status, _, body = post(llm, CHAT, oa_body(), OA)
    assert (status, json.loads(body)["id"], llm.replies) == (200, "chatcmpl-mock-2", 2)


def test_openai_reply_text_and_max_tokens(llm_factory):
    llm = llm_factory("openai")
    llm.reply_text = "one two three"
    _, _, body = post(llm, CHAT, oa_body(max_tokens=2), OA)
    doc = json.loads(body)
    assert doc["choices"][0]["message"]["content"] == "one two"
    assert doc["choices"][0]["finish_reason"] == "length"
    assert doc["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_openai_cached_tokens(llm_factory):
    llm = llm_factory("openai")
    llm.cached_tokens = 1
    _, _, body = post(llm, CHAT, oa_body(), OA)
    assert json.loads(body)["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7,
                                         "prompt_tokens_details": {"cached_tokens": 1}}


def oa_chunk(n, delta, finish=None, **extra):
    c = {"id": "chatcmpl-mock-%d" % n, "object": "chat.completion.chunk", "created": 1700000000,
         "model": "gpt-4o", "system_fingerprint": "fp_mock",
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    c.update(extra)
    return c


def test_openai_stream_without_usage(llm_factory):
    llm = llm_factory("openai")
    head, chunks, complete = stream(llm, CHAT, oa_body("hi  you", stream=True), OA)
    assert (head.status, complete) == (200, True)
    assert head.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert head.header("Transfer-Encoding") == "chunked"
    events = payloads(chunks)
    assert events[0] == (b'data: {"id":"chatcmpl-mock-1","object":"chat.completion.chunk","created":1700000000,'
                         b'"model":"gpt-4o","system_fingerprint":"fp_mock","choices":[{"index":0,"delta":'
                         b'{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n')
    assert events[-1] == b"data: [DONE]\n\n"
    assert all(e.endswith(b"\n\n") and e.count(b"\n\n") == 1 for e in events)
    assert sse_json(events[:-1]) == [
        oa_chunk(1, {"role": "assistant", "content": ""}),
        oa_chunk(1, {"content": "mock"}),
        oa_chunk(1, {"content": " reply"}),
        oa_chunk(1, {"content": " to:"}),
        oa_chunk(1, {"content": " hi"}),
        oa_chunk(1, {"content": "  you"}),
        oa_chunk(1, {}, "stop"),
    ]


def test_openai_stream_include_usage(llm_factory):
    llm = llm_factory("openai")
    body = oa_body("hi", stream=True, stream_options={"include_usage": True})
    head, chunks, complete = stream(llm, CHAT, body, OA)
    assert (head.status, complete) == (200, True)
    events = payloads(chunks)
    assert events[-1] == b"data: [DONE]\n\n"
    assert sse_json(events[:-1]) == [
        oa_chunk(1, {"role": "assistant", "content": ""}, usage=None),
        oa_chunk(1, {"content": "mock"}, usage=None),
        oa_chunk(1, {"content": " reply"}, usage=None),
        oa_chunk(1, {"content": " to:"}, usage=None),
        oa_chunk(1, {"content": " hi"}, usage=None),
        oa_chunk(1, {}, "stop", usage=None),
        dict(oa_chunk(1, {}), choices=[], usage={"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}),
    ]
    assert b'"usage":null' in events[0]


def test_openai_tool_call(llm_factory):
    llm = llm_factory("openai")
    _, _, body = post(llm, CHAT, oa_body("call tool now", tools=OA_TOOLS), OA)
    doc = json.loads(body)
    assert doc["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{
            "id": "call_mock_1", "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "call tool now"}'}}]}}]
    assert doc["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_openai_tool_call_stream(llm_factory):
    llm = llm_factory("openai")
    head, chunks, complete = stream(llm, CHAT, oa_body("call tool", tools=OA_TOOLS, stream=True), OA)
    assert (head.status, complete) == (200, True)
    events = payloads(chunks)
    assert events[-1] == b"data: [DONE]\n\n"

    def frag(text):
        return oa_chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": text}}]})
    assert sse_json(events[:-1]) == [
        oa_chunk(1, {"role": "assistant", "content": None}),
        oa_chunk(1, {"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                                      "function": {"name": "lookup", "arguments": ""}}]}),
        frag('{"q": '), frag('"call '), frag('tool"}'),
        oa_chunk(1, {}, "tool_calls"),
    ]


def test_openai_embeddings(llm_factory):
    llm = llm_factory("openai")
    status, hdrs, body = post(llm, "/v1/embeddings", {"model": "text-embedding-3-small",
                                                      "input": ["hello world", "x"]}, OA)
    assert status == 200
    assert json.loads(body) == {"object": "list", "model": "text-embedding-3-small", "data": [
        {"object": "embedding", "index": 0, "embedding": mock_llm.embedding_for("hello world")},
        {"object": "embedding", "index": 1, "embedding": mock_llm.embedding_for("x")}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    status, _, body = post(llm, "/v1/embeddings", {"model": "m", "input": "hi", "dimensions": 3,
                                                   "encoding_format": "base64"}, OA)
    doc = json.loads(body)
    assert status == 200
    vec = list(struct.unpack("<3f", base64.b64decode(doc["data"][0]["embedding"])))
    assert vec == mock_llm.embedding_for("hi", 3)
    assert doc["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    status, _, body = post(llm, "/v1/embeddings", {"model": "m", "input": [1, 2]}, OA)
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert llm.replies == 0     # embeddings are not replies


def test_openai_models(llm_factory):
    llm = llm_factory("openai")
    llm.models = ["a", "b"]
    status, _, body = call(llm, "GET", "/v1/models", headers=OA)
    assert status == 200
    assert json.loads(body) == {"object": "list", "data": [
        {"id": "a", "object": "model", "created": 1700000000, "owned_by": "mock"},
        {"id": "b", "object": "model", "created": 1700000000, "owned_by": "mock"}]}


def test_openai_auth(llm_factory):
    llm = llm_factory("openai")
    status, _, body = post(llm, CHAT, oa_body(), {"Authorization": "Bearer sk-wrong-key-1234"})
    assert status == 401
    assert json.loads(body) == {"error": {
        "message": "Incorrect API key provided: sk-**********1234. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    status, _, body = post(llm, CHAT, oa_body(), {})
    assert status == 401
    assert json.loads(body)["error"]["code"] is None
    assert json.loads(body)["error"]["message"].startswith("You didn't provide an API key.")
    status, _, _ = post(llm, CHAT, oa_body(), {"Authorization": "Basic c2stbW9jay1vcGVuYWk="})
    assert status == 401
    status, _, _ = post(llm, CHAT, oa_body(), {"Authorization": "bearer sk-mock-openai"})
    assert status == 200
    # api_key None: no check at all
    llm.api_key = None
    assert post(llm, CHAT, oa_body(), {})[0] == 200


def test_openai_bad_requests(llm_factory):
    llm = llm_factory("openai")
    status, _, body = post(llm, CHAT, b"{not json", OA)
    err = json.loads(body)["error"]
    assert (status, err["type"], err["code"]) == (400, "invalid_request_error", None)
    assert err["message"].startswith("We could not parse the JSON body of your request.")
    assert llm.requests[-1].json is None
    status, _, body = post(llm, CHAT, {"model": "gpt-4o"}, OA)
    assert (status, json.loads(body)) == (400, {"error": {
        "message": "Missing required parameter: 'messages'.", "type": "invalid_request_error",
        "param": "messages", "code": "missing_required_parameter"}})
    status, _, body = post(llm, CHAT, {"messages": []}, OA)
    assert (status, json.loads(body)["error"]["message"]) == (400, "you must provide a model parameter")
    status, _, body = post(llm, CHAT, [1, 2], OA)
    assert status == 400
    status, _, body = post(llm, CHAT, {"model": "m", "messages": {"role": "user"}}, OA)
    assert (status, json.loads(body)["error"]["code"]) == (400, "invalid_type")
    status, _, body = post(llm, "/v1/completions", oa_body(), OA)
    assert (status, json.loads(body)) == (404, {"error": {
        "message": "Invalid URL (POST /v1/completions)", "type": "invalid_request_error", "param": None,
        "code": None}})
    status, _, body = call(llm, "GET", CHAT, headers=OA)
    assert (status, json.loads(body)["error"]["message"]) == (404, "Invalid URL (GET /v1/chat/completions)")
    # A conversation of junk is still answered (nothing to count, no user text).
    status, _, body = post(llm, CHAT, {"model": "m", "messages": [7, {"role": "user", "content": {"x": 1}}]}, OA)
    doc = json.loads(body)
    assert (status, doc["choices"][0]["message"]["content"], doc["usage"]["prompt_tokens"]) == \
        (200, "mock reply to: ", 0)


# -- Anthropic -------------------------------------------------------------------------------

def test_anthropic_message(llm_factory):
    llm = llm_factory("anthropic")
    status, hdrs, body = post(llm, MESSAGES, AN_CONVERSATION, AN)
    assert status == 200
    assert hdrs["content-type"] == "application/json"
    assert json.loads(body) == {
        "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "mock reply to: please call tool now"}],
        "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 7}}


def test_anthropic_tool_use(llm_factory):
    llm = llm_factory("anthropic")
    _, _, body = post(llm, MESSAGES, an_body("call tool", tools=AN_TOOLS), AN)
    assert json.loads(body) == {
        "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "lookup", "input": {"q": "call tool"}}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 2, "output_tokens": 3}}


def test_anthropic_cache_tokens(llm_factory):
    llm = llm_factory("anthropic")
    llm.cached_tokens, llm.cache_creation_tokens = 3, 1
    _, _, body = post(llm, MESSAGES, an_body("one two three four five"), AN)
    # input_tokens leaves out cache reads and writes: 5 - 3 - 1
    assert json.loads(body)["usage"] == {"input_tokens": 1, "output_tokens": 8,
                                         "cache_creation_input_tokens": 1, "cache_read_input_tokens": 3}


def an_event(obj):
    return b"event: " + obj["type"].encode() + b"\ndata: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


AN_START = {"type": "message_start", "message": {
    "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}}
AN_PING = {"type": "ping"}


def an_text(text):
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


def test_anthropic_stream(llm_factory):
    llm = llm_factory("anthropic")
    head, chunks, complete = stream(llm, MESSAGES, an_body("hi", stream=True), AN)
    assert (head.status, complete) == (200, True)
    assert head.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert payloads(chunks) == [an_event(e) for e in [
        AN_START, AN_PING,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        an_text("mock"), an_text(" reply"), an_text(" to:"), an_text(" hi"),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 4}},
        {"type": "message_stop"}]]
    assert b"[DONE]" not in b"".join(payloads(chunks))


def test_anthropic_tool_use_stream(llm_factory):
    llm = llm_factory("anthropic")
    head, chunks, complete = stream(llm, MESSAGES, an_body("call tool", tools=AN_TOOLS, stream=True), AN)
    assert (head.status, complete) == (200, True)

    def part(text):
        return {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": text}}
    start = json.loads(json.dumps(AN_START))
    start["message"]["usage"]["input_tokens"] = 2
    assert payloads(chunks) == [an_event(e) for e in [
        start, AN_PING,
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": "lookup", "input": {}}},
        part('{"q": '), part('"call '), part('tool"}'),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 3}},
        {"type": "message_stop"}]]


def test_anthropic_auth_and_version(llm_factory):
    llm = llm_factory("anthropic")
    status, _, body = post(llm, MESSAGES, an_body(), {"x-api-key": "nope", "anthropic-version": "2023-06-01"})
    assert (status, json.loads(body)) == (401, {"type": "error", "error": {
        "type": "authentication_error", "message": "invalid x-api-key"}})
    status, _, body = post(llm, MESSAGES, an_body(), {"anthropic-version": "2023-06-01"})
    assert status == 401
    status, _, _ = post(llm, MESSAGES, an_body(), {"Authorization": "Bearer sk-ant-mock",
                                                   "anthropic-version": "2023-06-01"})
    assert status == 401
    status, _, body = post(llm, MESSAGES, an_body(), {"x-api-key": "sk-ant-mock"})
    assert (status, json.loads(body)) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "anthropic-version: header is required"}})
    status, _, body = post(llm, MESSAGES, an_body(), {"x-api-key": "sk-ant-mock", "anthropic-version": "1999"})
    assert (status, json.loads(body)["error"]["message"]) == (400, "anthropic-version: invalid version 1999")


def test_anthropic_bad_requests(llm_factory):
    llm = llm_factory("anthropic")
    body = an_body()
    del body["max_tokens"]
    status, _, resp = post(llm, MESSAGES, body, AN)
    assert (status, json.loads(resp)) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Field required"}})
    status, _, resp = post(llm, MESSAGES, an_body(max_tokens="10"), AN)
    assert (status, json.loads(resp)["error"]["message"]) == (400, "max_tokens: Input should be a valid integer")
    status, _, resp = post(llm, MESSAGES, b"[", AN)
    assert (status, json.loads(resp)["error"]["type"]) == (400, "invalid_request_error")
    status, _, resp = post(llm, MESSAGES, dict(an_body(), model=5), AN)
    assert (status, json.loads(resp)["error"]["message"]) == (400, "model: Input should be a valid string")
    status, _, resp = post(llm, "/v1/complete", an_body(), AN)
    assert (status, json.loads(resp)) == (404, {"type": "error", "error": {
        "type": "not_found_error", "message": "Not found"}})


# -- Gemini ----------------------------------------------------------------------------------

def test_gemini_generate_content(llm_factory):
    llm = llm_factory("gemini")
    status, hdrs, body = post(llm, GEN, GE_CONVERSATION, GE)
    assert status == 200
    assert hdrs["content-type"] == "application/json; charset=UTF-8"
    assert body.startswith(b'{\n  "candidates": [')
    assert json.loads(body) == {
        "candidates": [{"content": {"parts": [{"text": "mock reply to: merci beaucoup"}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 5, "totalTokenCount": 11},
        "modelVersion": "gemini-2.0-flash", "responseId": "mock-1"}


def test_gemini_function_call_and_cache(llm_factory):
    llm = llm_factory("gemini")
    llm.cached_tokens = 1
    _, _, body = post(llm, GEN, ge_body("call tool", tools=GE_TOOLS), GE)
    assert json.loads(body) == {
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "lookup", "args": {"q": "call tool"}}}],
                                    "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5,
                          "cachedContentTokenCount": 1},
        "modelVersion": "gemini-2.0-flash", "responseId": "mock-1"}


def ge_frame(text, count, prompt=2, finish=None, n=1):
    cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": count,
                              "totalTokenCount": prompt + count},
            "modelVersion": "gemini-2.0-flash", "responseId": "mock-%d" % n}


def test_gemini_stream_sse(llm_factory):
    llm = llm_factory("gemini")
    head, chunks, complete = stream(llm, SSE, ge_body("hi there", generationConfig={"maxOutputTokens": 4}), GE)
    assert (head.status, complete) == (200, True)
    assert head.header("Content-Type") == "text/event-stream"
    events = payloads(chunks)
    assert all(e.startswith(b"data: {") and e.endswith(b"}\r\n\r\n") for e in events)
    assert sse_json(events) == [ge_frame("mock", 1), ge_frame(" reply", 2), ge_frame(" to:", 3),
                                ge_frame(" hi", 4, finish="MAX_TOKENS")]


def test_gemini_stream_function_call(llm_factory):
    llm = llm_factory("gemini")
    head, chunks, complete = stream(llm, SSE, ge_body("call tool", tools=GE_TOOLS), GE)
    assert (head.status, complete) == (200, True)
    assert sse_json(payloads(chunks)) == [{
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "lookup", "args": {"q": "call tool"}}}],
                                    "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5},
        "modelVersion": "gemini-2.0-flash", "responseId": "mock-1"}]


def test_gemini_stream_without_sse_is_a_json_array(llm_factory):
    llm = llm_factory("gemini")
    path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    head, chunks, complete = stream(llm, path, ge_body("x"), GE)
    assert (head.status, complete) == (200, True)
    assert head.header("Content-Type") == "application/json; charset=UTF-8"
    body = b"".join(payloads(chunks))
    assert payloads(chunks)[0].startswith(b"[{")
    assert payloads(chunks)[1].startswith(b",\r\n{")
    assert payloads(chunks)[-1] == b"]"
    assert json.loads(body) == [ge_frame("mock", 1, prompt=1), ge_frame(" reply", 2, prompt=1),
                                ge_frame(" to:", 3, prompt=1), ge_frame(" x", 4, prompt=1, finish="STOP")]


def test_gemini_auth(llm_factory):
    llm = llm_factory("gemini")
    status, _, body = post(llm, GEN, ge_body(), {"x-goog-api-key": "bad"})
    assert (status, json.loads(body)) == (400, {"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                     "message": "API key not valid. Please pass a valid API key."}]}})
    status, _, body = post(llm, GEN, ge_body(), {})
    assert (status, json.loads(body)["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert post(llm, GEN + "?key=mock-gemini-key", ge_body(), {})[0] == 200
    assert post(llm, GEN + "?key=wrong", ge_body(), {})[0] == 400


def test_gemini_bad_requests(llm_factory):
    llm = llm_factory("gemini")
    status, _, body = post(llm, GEN, {"contents": []}, GE)
    assert (status, json.loads(body)) == (400, {"error": {
        "code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n",
        "status": "INVALID_ARGUMENT"}})
    assert post(llm, GEN, b"nope", GE)[0] == 400
    status, _, body = post(llm, "/v1beta/models/x:countTokens", ge_body(), GE)
    assert (status, json.loads(body)["error"]["status"]) == (404, "NOT_FOUND")
    assert call(llm, "GET", GEN, headers=GE)[0] == 404


# -- failure scripting -----------------------------------------------------------------------

@pytest.mark.parametrize("kind, path, body, headers, expected", [
    ("openai", CHAT, oa_body(), OA, {"error": {"message": "The server is overloaded or not ready yet.",
                                               "type": "server_error", "param": None, "code": None}}),
    ("anthropic", MESSAGES, an_body(), AN, {"type": "error", "error": {"type": "api_error",
                                                                      "message": "Internal server error"}}),
    ("gemini", GEN, ge_body(), GE, {"error": {"code": 503, "status": "UNAVAILABLE",
                                              "message": "The model is overloaded. Please try again later."}}),
])
def test_script_status_then_back_to_normal(llm_factory, kind, path, body, headers, expected):
    llm = llm_factory(kind)
    llm.script({"status": 503}, {"status": 503})
    assert llm.pending_steps() == 2
    for _ in range(2):
        status, _, resp = post(llm, path, body, headers)
        assert (status, json.loads(resp)) == (503, expected)
    status, _, resp = post(llm, path, body, headers)
    assert status == 200
    assert llm.pending_steps() == 0
    assert [r.step for r in llm.requests] == [{"status": 503}, {"status": 503}, None]
    assert llm.replies == 1


def test_script_rate_limit_hints(llm_factory):
    llm = llm_factory("openai")
    llm.script({"status": 429, "retry_after": 1}, {"status": 429, "retry_after_ms": 200},
               {"status": 429, "headers": [("x-ms-retry-after-ms", "150")]})
    status, hdrs, body = post(llm, CHAT, oa_body(), OA)
    assert (status, hdrs["retry-after"], "retry-after-ms" in hdrs) == (429, "1", False)
    assert json.loads(body) == {"error": {"message": "Rate limit reached for requests. Please try again later.",
                                          "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    status, hdrs, _ = post(llm, CHAT, oa_body(), OA)
    assert (status, hdrs["retry-after-ms"], "retry-after" in hdrs) == (429, "200", False)
    status, hdrs, _ = post(llm, CHAT, oa_body(), OA)
    assert (status, hdrs["x-ms-retry-after-ms"]) == (429, "150")
    # the raw head carries the names exactly as scripted
    llm.script({"status": 429, "retry_after": 3})
    with raw.Conn(llm.port) as c:
        resp = c.request("POST", CHAT, dict(OA, **JSON_CT), json.dumps(oa_body()))
    assert b"\r\nretry-after: 3\r\n" in bytes(resp.raw)


def test_script_insufficient_quota(llm_factory):
    llm = llm_factory("openai")
    llm.script({"status": 429, "code": "insufficient_quota"})
    status, _, body = post(llm, CHAT, oa_body(), OA)
    assert (status, json.loads(body)) == (429, {"error": {
        "message": "You exceeded your current quota, please check your plan and billing details. For more "
                   "information on this error, read the docs: "
                   "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})


def test_script_anthropic_overloaded_and_rate_limit(llm_factory):
    llm = llm_factory("anthropic")
    llm.script({"status": 529}, {"status": 429, "retry_after": 2})
    status, _, body = post(llm, MESSAGES, an_body(), AN)
    assert (status, json.loads(body)) == (529, {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})
    status, hdrs, body = post(llm, MESSAGES, an_body(), AN)
    assert (status, hdrs["retry-after"], json.loads(body)["error"]["type"]) == (429, "2", "rate_limit_error")


def test_script_gemini_retry_info(llm_factory):
    llm = llm_factory("gemini")
    llm.script({"status": 429, "retry_after": 5, "message": "Quota exceeded."})
    status, hdrs, body = post(llm, GEN, ge_body(), GE)
    assert (status, hdrs["retry-after"]) == (429, "5")
    assert json.loads(body) == {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED",
                                          "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                       "retryDelay": "5s"}]}}


def test_script_error_beats_auth(llm_factory):
    # An overloaded provider answers 503 before it looks at the key.
    llm = llm_factory("openai")
    llm.script({"status": 503})
    assert post(llm, CHAT, oa_body(), {})[0] == 503
    assert post(llm, CHAT, oa_body(), {})[0] == 401


def test_script_delay_and_latency(llm_factory):
    llm = llm_factory("openai")
    llm.script({"delay_ms": 300})
    t0 = time.monotonic()
    assert post(llm, CHAT, oa_body(), OA)[0] == 200
    assert time.monotonic() - t0 >= 0.3
    llm.latency_ms = 200
    llm.script({"delay_ms": 100, "status": 500})
    t0 = time.monotonic()
    assert post(llm, CHAT, oa_body(), OA)[0] == 500
    assert time.monotonic() - t0 >= 0.3
    llm.latency_ms = 0
    t0 = time.monotonic()
    assert post(llm, CHAT, oa_body(), OA)[0] == 200
    assert time.monotonic() - t0 < 0.2


def test_script_drop_before_head(llm_factory):
    llm = llm_factory("anthropic")
    llm.script({"drop": "before_head"})
    with raw.Conn(llm.port) as c:
        c.send(raw.build_request("POST", MESSAGES, dict(AN, **JSON_CT), json.dumps(an_body())))
        with pytest.raises(raw.IncompleteResponse) as info:
            c.read_head()
        assert bytes(info.value.partial.raw) == b""
    assert llm.replies == 0
    assert post(llm, MESSAGES, an_body(), AN)[0] == 200


@pytest.mark.parametrize("kind, path, body, headers, preamble", [
    ("openai", CHAT, oa_body(stream=True), OA, 1),
    ("anthropic", MESSAGES, an_body(stream=True), AN, 2),
    ("gemini", SSE, ge_body(), GE, 0),
])
def test_script_drop_before_content(llm_factory, kind, path, body, headers, preamble):
    llm = llm_factory(kind)
    _, normal, _ = stream(llm, path, body, headers)
    llm.script({"drop": "before_content"})
    head, chunks, complete = stream(llm, path, body, headers)
    assert (head.status, complete) == (200, False)
    # The same preamble as a normal stream of the next reply, and nothing after.
    expected = [p.replace(b"mock-1", b"mock-2").replace(b"mock_1", b"mock_2") for p in payloads(normal)[:preamble]]
    assert payloads(chunks) == expected


@pytest.mark.parametrize("kind, path, body, headers, preamble, per_unit", [
    ("openai", CHAT, oa_body("a b c", stream=True), OA, 1, [1, 1]),
    ("anthropic", MESSAGES, an_body("a b c", stream=True), AN, 2, [2, 1]),   # block start rides with 1st delta
    ("gemini", SSE, ge_body("a b c"), GE, 0, [1, 1]),
])
def test_script_drop_after_content(llm_factory, kind, path, body, headers, preamble, per_unit):
    llm = llm_factory(kind)
    llm.script({"drop": "after_content", "after_chunks": 2})
    head, chunks, complete = stream(llm, path, body, headers)
    assert (head.status, complete) == (200, False)
    assert len(chunks) == preamble + sum(per_unit)
    text = b"".join(payloads(chunks)[preamble:])
    assert b"mock" in text and b" reply" in text and b" to:" not in text
    # default after_chunks is 1
    llm.script({"drop": "after_content"})
    _, chunks, complete = stream(llm, path, body, headers)
    assert (len(chunks), complete) == (preamble + per_unit[0], False)


def test_script_drop_non_streaming(llm_factory):
    llm = llm_factory("openai")
    llm.script({"drop": "before_content"}, {"drop": "after_content"})
    with raw.Conn(llm.port) as c:
        with pytest.raises(raw.IncompleteResponse) as info:
            c.request("POST", CHAT, dict(OA, **JSON_CT), json.dumps(oa_body()))
        assert info.value.partial.status == 200
        assert bytes(info.value.partial.body) == b""
    with raw.Conn(llm.port) as c:
        with pytest.raises(raw.IncompleteResponse) as info:
            c.request("POST", CHAT, dict(OA, **JSON_CT), json.dumps(oa_body()))
        partial = info.value.partial
    _, _, whole = post(llm, CHAT, oa_body(), OA)
    whole = whole.replace(b"chatcmpl-mock-3", b"chatcmpl-mock-2")
    assert (partial.status, int(partial.header("Content-Length"))) == (200, len(whole))
    assert bytes(partial.body) == whole[:len(whole) // 2]


def test_script_mid_stream_error_openai(llm_factory):
    llm = llm_factory("openai")
    llm.script({"mid_stream_error": True, "after_chunks": 2})
    head, chunks, complete = stream(llm, CHAT, oa_body(stream=True), OA)
    assert (head.status, complete) == (200, True)
    events = payloads(chunks)
    assert len(events) == 4
    assert sse_json(events[1:3]) == [oa_chunk(1, {"content": "mock"}), oa_chunk(1, {"content": " reply"})]
    assert events[3] == (b'data: {"error":{"message":"The server had an error while processing your request. '
                         b'Sorry about that!","type":"server_error","param":null,"code":null}}\n\n')


def test_script_mid_stream_error_anthropic(llm_factory):
    llm = llm_factory("anthropic")
    llm.script({"mid_stream_error": True})
    head, chunks, complete = stream(llm, MESSAGES, an_body(stream=True), AN)
    assert (head.status, complete) == (200, True)
    events = payloads(chunks)
    assert [mock_llm.sse_events(e)[0][0] for e in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "error"]
    assert events[-1] == (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                          b'"message":"Overloaded"}}\n\n')


def test_script_mid_stream_error_gemini(llm_factory):
    llm = llm_factory("gemini")
    llm.script({"mid_stream_error": True})
    head, chunks, complete = stream(llm, SSE, ge_body(), GE)
    assert (head.status, complete) == (200, True)
    events = payloads(chunks)
    assert sse_json(events) == [ge_frame("mock", 1), {"error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]
    assert events[-1].endswith(b"}\r\n\r\n")


def test_script_mid_stream_error_non_streaming_answers_normally(llm_factory):
    llm = llm_factory("openai")
    llm.script({"mid_stream_error": True})
    assert post(llm, CHAT, oa_body(), OA)[0] == 200
    assert llm.pending_steps() == 0


@pytest.mark.parametrize("kind, path, body, headers, preamble", [
    ("openai", CHAT, oa_body(stream=True), OA, 1),
    ("anthropic", MESSAGES, an_body(stream=True), AN, 2),
])
def test_script_first_token_delay(llm_factory, kind, path, body, headers, preamble):
    llm = llm_factory(kind)
    llm.script({"first_token_delay_ms": 500})
    head, chunks, complete = stream(llm, path, body, headers)
    assert (head.status, complete) == (200, True)
    assert all(t < 0.4 for t, _ in chunks[:preamble])
    assert chunks[preamble][0] >= 0.5
    assert len(chunks) == len(stream(llm, path, body, headers)[1])


def test_script_first_token_delay_gemini_and_non_streaming(llm_factory):
    llm = llm_factory("gemini")
    llm.script({"first_token_delay_ms": 300}, {"first_token_delay_ms": 300})
    _, chunks, _ = stream(llm, SSE, ge_body(), GE)
    assert chunks[0][0] >= 0.3
    t0 = time.monotonic()
    assert post(llm, GEN, ge_body(), GE)[0] == 200
    assert time.monotonic() - t0 >= 0.3


def test_chunk_delay_paces_content(llm_factory):
    llm = llm_factory("openai")
    llm.chunk_delay_ms = 100
    _, chunks, complete = stream(llm, CHAT, oa_body("x", stream=True), OA)
    # role, 4 words, finish, [DONE]: three gaps of 100 ms between the four
    # words. Seen from the receiving end a gap can shrink a little (the first
    # word may arrive late), so the bound says "paced", not "to the ms".
    assert (len(chunks), complete) == (7, True)
    assert chunks[4][0] - chunks[1][0] >= 0.25


def test_set_status_until_cleared(llm_factory):
    llm = llm_factory("anthropic")
    llm.set_status(529)
    llm.script({"status": 500})
    assert post(llm, MESSAGES, an_body(), AN)[0] == 500
    assert post(llm, MESSAGES, an_body(), AN)[0] == 529
    assert post(llm, MESSAGES, an_body(), AN)[0] == 529
    llm.set_status(None)
    assert post(llm, MESSAGES, an_body(), AN)[0] == 200


def test_health_checks_do_not_consume_steps(llm_factory):
    llm = llm_factory("openai")
    llm.script({"status": 503})
    status, _, body = call(llm, "GET", "/health")
    assert (status, body) == (200, b'{"healthy":true}')
    assert llm.pending_steps() == 1
    assert post(llm, CHAT, oa_body(), OA)[0] == 503


def test_clear_script(llm_factory):
    llm = llm_factory("openai")
    llm.script({"status": 503}, {"status": 500})
    llm.clear_script()
    assert llm.pending_steps() == 0
    assert post(llm, CHAT, oa_body(), OA)[0] == 200


def test_extra_headers_on_every_answer(llm_factory):
    llm = llm_factory("openai")
    llm.extra_headers = [("x-ratelimit-remaining-requests", "99"), ("x-ratelimit-reset-requests", "120ms")]
    _, hdrs, _ = post(llm, CHAT, oa_body(), OA)
    assert (hdrs["x-ratelimit-remaining-requests"], hdrs["x-ratelimit-reset-requests"]) == ("99", "120ms")
    head, _, _ = stream(llm, CHAT, oa_body(stream=True), OA)
    assert head.header("x-ratelimit-remaining-requests") == "99"
    llm.script({"status": 429})
    _, hdrs, _ = post(llm, CHAT, oa_body(), OA)
    assert hdrs["x-ratelimit-reset-requests"] == "120ms"


def test_keep_alive_across_stream_and_plain(llm_factory):
    llm = llm_factory("openai")
    with raw.Conn(llm.port) as c:
        head, chunks, complete = stream(llm, CHAT, oa_body(stream=True), OA, conn=c)
        assert (head.status, complete, len(chunks)) == (200, True, 8)    # role, 5 words, finish, [DONE]
        resp = c.request("POST", CHAT, dict(OA, **JSON_CT), json.dumps(oa_body()))
        assert (resp.status, resp.json()["id"]) == (200, "chatcmpl-mock-2")
    assert llm.connections == 1


def test_tls(llm_factory, certs):
    llm = llm_factory("openai", tls=certs.server_context())
    assert llm.url == "https://127.0.0.1:%d" % llm.port
    ctx = certs.client_context()
    c = http.client.HTTPSConnection("127.0.0.1", llm.port, timeout=5, context=ctx)
    c.request("POST", CHAT, body=json.dumps(oa_body()), headers=dict(OA, **JSON_CT))
    r = c.getresponse()
    assert (r.status, json.loads(r.read())["choices"][0]["message"]["content"]) == (200, "mock reply to: hello there")
    c.close()


def test_requests_are_logged_with_parsed_json(llm_factory):
    llm = llm_factory("gemini")
    post(llm, GEN, ge_body("a"), GE)
    post(llm, GEN, b"\xff\xfe", GE)
    assert [r.json for r in llm.requests] == [ge_body("a"), None]
    assert llm.requests[0].reply.text == "mock reply to: a"
    assert llm.requests[1].reply is None
    llm.reset()
    assert llm.requests == []
    post(llm, GEN, ge_body("b"), GE)
    assert llm.requests[0].json == ge_body("b")
    assert llm.expected(ge_body("b")).text == "mock reply to: b"
