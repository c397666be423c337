"""Mock LLM providers (OpenAI, Anthropic, Gemini) for the black-box specs.

Each MockLLM is one threaded HTTP/1.1 server on a free port that speaks one
provider's wire format, byte for byte as far as a gateway can tell: endpoints,
auth headers, JSON shapes, SSE framing, error bodies. Answers are
deterministic, so a spec can compute what the client must end up with.

    llm = MockLLM("openai")            # or "anthropic", "gemini"; listening at once
    llm.url, llm.port                  # point sluice at it
    llm.requests[-1].json              # the last request body, parsed (None if not JSON)
    llm.requests[-1].reply             # the Reply it was answered with (None if none)
    llm.requests[-1].step              # the script step it got (None if none)
    llm.expected(body)                 # the Reply this mock gives to body
    llm.stop()

It is a MockUpstream underneath: same Request objects (.method, .path,
.headers, .header(), .body, .raw), TLS (tls=SSLContext or (cert, key)),
.wait_for_requests(), .count(), .reset(), .drop_connections(), /health with
.set_healthy(), and an "X-Upstream: <name>" header on every answer. Only the
provider's paths are served; anything else gets the provider's 404.

Endpoints
    openai     POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models
    anthropic  POST /v1/messages
    gemini     POST /v1beta/models/{model}:generateContent
               POST /v1beta/models/{model}:streamGenerateContent?alt=sse
               (without alt=sse: one JSON array written element by element)

Auth (.api_key, default DEFAULT_KEYS[kind]; None turns the check off)
    openai     Authorization: Bearer <key>. Missing or wrong: 401, code
               invalid_api_key (null when missing), the key masked in the message.
    anthropic  x-api-key: <key> (401 authentication_error), then
               anthropic-version: 2023-06-01 (400 invalid_request_error).
    gemini     x-goog-api-key: <key> or ?key=<key>. As Google does it: a wrong
               key is 400 INVALID_ARGUMENT with an ErrorInfo API_KEY_INVALID
               detail, a missing one 403 PERMISSION_DENIED (Gemini has no 401
               for API keys).

Replies (see expected_reply(), which the server itself uses)
    text        "mock reply to: <text of the last user message that has text>",
                or .reply_text when set.
    tool call   when the request has tools and the *last* message is a user
                message containing "call tool": a call to the first tool with
                arguments {"q": "<that message's text>"} (JSON text
                '{"q": "..."}'). A follow-up with the tool result gets text.
    max tokens  max_completion_tokens / max_tokens / generationConfig.maxOutputTokens
                below the reply's word count cut the text after that many words;
                finish is length / max_tokens / MAX_TOKENS.
    usage       prompt = words (whitespace-separated) of every text the model
                reads: system prompt, text of user and assistant turns; tool
                calls and tool results are not counted. completion = words of
                the reply text, or of the tool arguments JSON text.
                .cached_tokens (and, Anthropic, .cache_creation_tokens) report
                prompt caching: Anthropic input_tokens is then prompt minus
                both; OpenAI prompt_tokens_details.cached_tokens and Gemini
                cachedContentTokenCount appear only when .cached_tokens > 0, the
                Anthropic cache_* fields only when either knob is > 0.
    ids         the n-th reply of this mock: chatcmpl-mock-n / call_mock_n,
                msg_mock_n / toolu_mock_n, Gemini responseId mock-n.
    created     always CREATED (OpenAI).

Streams (chunked, one SSE event per HTTP chunk; the reply cut into words, each
with the whitespace before it)
    openai     data: {...}\\n\\n chunks: a role chunk (delta {"role":"assistant",
               "content":""}, or content null for a tool call), one content
               chunk per word (a tool call: a chunk with id and name, then the
               arguments in ARG_FRAGMENT-character pieces), a finish chunk with
               delta {}, with stream_options.include_usage a chunk with
               "choices": [] and the usage ("usage": null on all others), then
               data: [DONE].
    anthropic  event:/data: pairs: message_start (usage.input_tokens,
               output_tokens 1), ping, content_block_start, one text_delta per
               word (tool: input_json_delta pieces), content_block_stop,
               message_delta (stop_reason, cumulative usage.output_tokens),
               message_stop. No [DONE].
    gemini     data: {...}\\r\\n\\r\\n (CRLF, as Google sends it), one frame per
               word, each with the cumulative usageMetadata; the last also has
               finishReason. A tool call is one frame with functionCall.
    The "preamble" is what comes before any content: the OpenAI role chunk,
    Anthropic message_start + ping; Gemini has none.
    .chunk_delay_ms paces the content chunks.

Failure scripting: llm.script(step, step, ...) queues behaviours, one per
request (health checks excluded), then back to normal. A step is a dict:
    {"status": 503}                    that status with the provider's error body
      + "retry_after": 1               header retry-after: 1 (Gemini 429 also
                                       gets a RetryInfo detail "1s")
      + "retry_after_ms": 200          header retry-after-ms: 200
      + "code": "insufficient_quota"   OpenAI only: the quota-exhausted body
      + "type"/"message"               override the error type (Gemini: status
                                       string) or message
      + "headers": [(name, value)]     extra response headers
    {"status": 529}                    Anthropic: overloaded_error
    A scripted status is answered before auth is checked, as an overloaded
    provider does.
    {"delay_ms": 300}                  wait before the head (adds to .latency_ms)
    {"drop": "before_head"}            close without answering
    {"drop": "before_content"}         200 head + preamble, then close (not
                                       streaming: the head only)
    {"drop": "after_content", "after_chunks": 2}
                                       preamble + 2 content chunks (default 1),
                                       then close (not streaming: half the body)
    {"mid_stream_error": True}         after "after_chunks" content chunks
                                       (default 1), the provider's in-stream
                                       error, then a clean end of the body: OpenAI
                                       data: {"error": ...}, Anthropic event: error
                                       overloaded_error, Gemini data: {"error": ...}
                                       UNAVAILABLE. Not streaming: no effect.
    {"first_token_delay_ms": 500}      head + preamble at once, content after
                                       the delay (not streaming: delays the head)
Unknown keys or values raise ValueError at script() time; .pending_steps()
and .clear_script() inspect and empty the queue. .set_status(s) answers every
request with s (after any scripted steps) until .set_status(None).
.latency_ms (or .set_delay(ms)) delays every answer; .extra_headers
([(name, value)]) go on every answer.

Embeddings: one vector of EMBEDDING_DIMS (or "dimensions") numbers per input
string, embedding_for(text); encoding_format "base64" packs them as
little-endian float32. usage.prompt_tokens = words of all inputs.
Models: .models (ids) listed by GET /v1/models.

Helpers for specs: words(), prompt_tokens(), expected_reply(), usage(),
error_body(), embedding_for(), sse_events(), word_pieces(), arg_fragments().
"""

import base64
import hashlib
import json
import re
import struct
import threading
from collections import deque
from dataclasses import dataclass

from mock_upstream import HEALTH_PATH, MockUpstream

KINDS = ("openai", "anthropic", "gemini")
DEFAULT_KEYS = {"openai": "sk-mock-openai", "anthropic": "sk-ant-mock", "gemini": "mock-gemini-key"}
ANTHROPIC_VERSION = "2023-06-01"
CREATED = 1700000000
ARG_FRAGMENT = 6
REPLY_PREFIX = "mock reply to: "
TOOL_TRIGGER = "call tool"
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")
EMBEDDING_DIMS = 8

_GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")
_WORD = re.compile(r"\s*\S+")


def _compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# -- reading a request body -----------------------------------------------------------------
# Every reader tolerates any JSON: a malformed conversation must give the
# gateway a provider error, never a mock crash.

def _text_of(content):
    """Text of an OpenAI/Anthropic content: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b["text"] for b in content
                if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)]
    return []


def _gemini_text(content):
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return []
    return [p["text"] for p in content["parts"] if isinstance(p, dict) and isinstance(p.get("text"), str)]


def _turns(kind, body):
    """[(role, [texts])] of the conversation, roles as the provider names them."""
    if not isinstance(body, dict):
        return []
    key = "contents" if kind == "gemini" else "messages"
    items = body.get(key)
    if not isinstance(items, list):
        return []
    out = []
    for m in items:
        if not isinstance(m, dict):
            continue
        if kind == "gemini":
            out.append((m.get("role", "user"), _gemini_text(m)))
        else:
            out.append((m.get("role"), _text_of(m.get("content"))))
    return out


def _system_texts(kind, body):
    if not isinstance(body, dict):
        return []
    if kind == "anthropic":
        return _text_of(body.get("system"))
    if kind == "gemini":
        return _gemini_text(body.get("systemInstruction", body.get("system_instruction")))
    return []


_READ_ROLES = {"openai": ("system", "developer", "user", "assistant"),
               "anthropic": ("user", "assistant"),
               "gemini": ("user", "model")}


def words(text):
    """Token count of a text as every mock counts it."""
    return len(text.split())


def prompt_tokens(kind, body):
    """The prompt token count a mock of this kind reports for this request body."""
    texts = list(_system_texts(kind, body))
    for role, t in _turns(kind, body):
        if role in _READ_ROLES[kind]:
            texts += t
    return sum(words(t) for t in texts)


def _last_user(kind, body):
    """(text of the last user turn that has text, whether the conversation ends
    with a user turn that has text)."""
    turns = _turns(kind, body)
    ends_with_user = bool(turns) and turns[-1][0] == "user" and bool(turns[-1][1])
    for role, texts in reversed(turns):
        if role == "user" and texts:
            return " ".join(texts), ends_with_user
    return "", False


def _first_tool(kind, body):
    tools = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    first = tools[0]
    if kind == "openai":
        fn = first.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
    elif kind == "anthropic":
        name = first.get("name")
    else:
        decls = first.get("functionDeclarations", first.get("function_declarations"))
        name = decls[0].get("name") if isinstance(decls, list) and decls and isinstance(decls[0], dict) else None
    return name if isinstance(name, str) else None


def _max_tokens(kind, body):
    if not isinstance(body, dict):
        return None
    if kind == "openai":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
    elif kind == "anthropic":
        limit = body.get("max_tokens")
    else:
        cfg = body.get("generationConfig", body.get("generation_config"))
        limit = cfg.get("maxOutputTokens", cfg.get("max_output_tokens")) if isinstance(cfg, dict) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else None


# -- what the mock answers ------------------------------------------------------------------

_FINISH = {
    "openai": {"stop": "stop", "length": "length", "tool": "tool_calls"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"},
    "gemini": {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP"},
}


@dataclass
class Reply:
    """What a mock answers to one request. Exactly one of text / tool_name is set."""
    text: str | None        # None for a tool call
    tool_name: str | None
    tool_args: str | None   # the arguments as JSON text
    query: str              # the user text the reply is about
    prompt_tokens: int
    completion_tokens: int
    finish: str             # in the provider's words (stop / end_turn / STOP, ...)

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens


def word_pieces(text):
    """The pieces a text is streamed in: one word each with the whitespace
    before it; trailing whitespace rides on the last piece. ''.join() gives
    the text back."""
    pieces = _WORD.findall(text)
    rest = text[sum(len(p) for p in pieces):]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces = [rest]
    return pieces


def arg_fragments(args):
    """The pieces streamed tool arguments come in."""
    return [args[i:i + ARG_FRAGMENT] for i in range(0, len(args), ARG_FRAGMENT)]


def _cut_words(text, limit):
    spans = list(re.finditer(r"\S+", text))
    if len(spans) <= limit:
        return text, False
    return (text[:spans[limit - 1].end()] if limit > 0 else ""), True


def expected_reply(kind, body, reply_text=None):
    """The Reply a mock of this kind gives to this request body (reply_text as
    the mock's .reply_text)."""
    query, ends_with_user = _last_user(kind, body)
    prompt = prompt_tokens(kind, body)
    tool = _first_tool(kind, body)
    if tool is not None and ends_with_user and TOOL_TRIGGER in query:
        args = json.dumps({"q": query})
        return Reply(None, tool, args, query, prompt, words(args), _FINISH[kind]["tool"])
    text = reply_text if reply_text is not None else REPLY_PREFIX + query
    limit = _max_tokens(kind, body)
    cut = False
    if limit is not None:
        text, cut = _cut_words(text, limit)
    return Reply(text, None, None, query, prompt, words(text), _FINISH[kind]["length" if cut else "stop"])


def usage(kind, body, reply_text=None):
    """(prompt tokens, completion tokens) a mock reports for this body."""
    r = expected_reply(kind, body, reply_text)
    return r.prompt_tokens, r.completion_tokens


def embedding_for(text, dims=EMBEDDING_DIMS):
    """The vector /v1/embeddings gives a text: multiples of 1/128 in [-1, 1),
    so the base64 (float32) form decodes to exactly the same numbers."""
    return [(b - 128) / 128 for b in hashlib.shake_256(text.encode()).digest(dims)]


def sse_events(data):
    """[(event name or None, data text)] of an SSE body (LF or CRLF lines)."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode()
    out = []
    for block in re.split(r"\r?\n\r?\n", data):
        if not block.strip():
            continue
        name, lines = None, []
        for line in re.split(r"\r?\n", block):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                lines.append(value)
        out.append((name, "\n".join(lines)))
    return out


# -- error bodies ---------------------------------------------------------------------------

OPENAI_QUOTA_MESSAGE = ("You exceeded your current quota, please check your plan and billing details. For more "
                        "information on this error, read the docs: "
                        "https://platform.openai.com/docs/guides/error-codes/api-errors.")
_OPENAI_ERRORS = {  # status -> (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", None, "Not found."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}
_ANTHROPIC_ERRORS = {  # status -> (type, message)
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_GEMINI_ERRORS = {  # status -> (status string, message)
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


_DEFAULT = object()


def error_body(kind, status, message=None, type=None, code=_DEFAULT, param=None, retry_after=None, details=None):
    """The provider's error JSON (a dict) for a status. type: OpenAI/Anthropic
    error type, Gemini status string; code (the status's usual one unless
    given, None included) and param: OpenAI only; retry_after: Gemini 429 gets
    a RetryInfo detail."""
    if kind == "openai":
        if code == "insufficient_quota":
            d_type, d_msg = "insufficient_quota", OPENAI_QUOTA_MESSAGE
            d_code = code
        else:
            d_type, d_code, d_msg = _OPENAI_ERRORS.get(
                status, ("server_error" if status >= 500 else "invalid_request_error", None, "Request failed."))
            d_code = d_code if code is _DEFAULT else code
        return {"error": {"message": message or d_msg, "type": type or d_type, "param": param, "code": d_code}}
    if kind == "anthropic":
        fallback = ("api_error", "Internal server error") if status >= 500 else \
            ("invalid_request_error", "Invalid request.")
        d_type, d_msg = _ANTHROPIC_ERRORS.get(status, fallback)
        return {"type": "error", "error": {"type": type or d_type, "message": message or d_msg}}
    if kind == "gemini":
        d_status, d_msg = _GEMINI_ERRORS.get(status, ("UNKNOWN", "Unknown error."))
        err = {"code": status, "message": message or d_msg, "status": type or d_status}
        details = list(details or [])
        if status == 429 and retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "%ss" % retry_after})
        if details:
            err["details"] = details
        return {"error": err}
    raise ValueError("unknown kind %r" % kind)


def _masked(key):
    """OpenAI shows a wrong key with its middle starred out."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


GEMINI_BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
GEMINI_NO_KEY_MESSAGE = ("Method doesn't allow unregistered callers (callers without established identity). "
                         "Please use API Key or other form of API consumer identity to call this API.")


def _gemini_bad_key_details():
    return [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": GEMINI_BAD_KEY_MESSAGE}]


# -- script steps ---------------------------------------------------------------------------

_STEP_KEYS = {"status", "retry_after", "retry_after_ms", "code", "type", "message", "headers", "delay_ms",
              "drop", "after_chunks", "mid_stream_error", "first_token_delay_ms"}
_NEEDS_STATUS = ("retry_after", "retry_after_ms", "code", "type", "message")
_DROPS = ("before_head", "before_content", "after_content")


def _check_step(kind, step):
    if not isinstance(step, dict):
        raise ValueError("a script step is a dict, got %r" % (step,))
    unknown = set(step) - _STEP_KEYS
    if unknown:
        raise ValueError("unknown script step keys %s" % sorted(unknown))
    for k in ("status", "delay_ms", "after_chunks", "first_token_delay_ms", "retry_after", "retry_after_ms"):
        if k in step and (not isinstance(step[k], int) or isinstance(step[k], bool) or step[k] < 0):
            raise ValueError("script step %s must be a non-negative int, got %r" % (k, step[k]))
    if "status" in step and not 200 <= step["status"] <= 599:
        raise ValueError("script step status %r out of range" % step["status"])
    for k in _NEEDS_STATUS:
        if k in step and "status" not in step:
            raise ValueError("script step %s needs a status" % k)
    if "code" in step and kind != "openai":
        raise ValueError("script step code is OpenAI only (use type for %s)" % kind)
    if "drop" in step and step["drop"] not in _DROPS:
        raise ValueError("script step drop must be one of %s" % (_DROPS,))
    if "after_chunks" in step and step.get("drop") != "after_content" and not step.get("mid_stream_error"):
        raise ValueError("after_chunks goes with drop=after_content or mid_stream_error")
    if "mid_stream_error" in step and not isinstance(step["mid_stream_error"], bool):
        raise ValueError("mid_stream_error must be True or False")
    if step.get("status", 200) != 200:
        clash = sorted(k for k in ("drop", "after_chunks", "mid_stream_error", "first_token_delay_ms") if k in step)
        if clash:
            raise ValueError("an error status cannot go with %s" % clash)
    if "headers" in step:
        hs = step["headers"]
        if not isinstance(hs, (list, tuple)) or not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in hs):
            raise ValueError("script step headers must be [(name, value)]")
    return dict(step)


# -- the wire formats -----------------------------------------------------------------------

@dataclass
class _Turn:
    """One reply being sent: the Reply plus what the framing needs."""
    n: int                  # the n in the ids
    model: str
    reply: Reply
    include_usage: bool
    cached: int
    cache_creation: int


@dataclass
class _Stream:
    """A streamed answer, as the events (bytes) to send."""
    ctype: str
    preamble: list
    units: list             # per word or argument fragment, a list of events; after_chunks counts these
    tail: list
    error: bytes            # the in-stream error event


class _OpenAI:
    kind = "openai"
    json_type = "application/json"

    def route(self, method, path):
        return {("POST", "/v1/chat/completions"): "chat", ("POST", "/v1/embeddings"): "embeddings",
                ("GET", "/v1/models"): "models"}.get((method, path))

    def not_found(self, req):
        return error_body("openai", 404, message="Invalid URL (%s %s)" % (req.method, req.path))

    def auth_error(self, req, key):
        auth = req.header("authorization")
        if auth is None:
            return 401, error_body("openai", 401, code=None, message=(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."))
        scheme, _, given = auth.partition(" ")
        bearer = scheme.lower() == "bearer"
        if not bearer or given != key:
            return 401, error_body("openai", 401, message=(
                "Incorrect API key provided: %s. You can find your API key at "
                "https://platform.openai.com/account/api-keys." % _masked(given if bearer else auth)))
        return None

    def invalid(self, route, body):
        """(status, error body) for a request the provider would refuse, else None."""
        if body is None:
            return 400, error_body("openai", 400, message=(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                "valid JSON.)"))
        if not isinstance(body, dict):
            return 400, error_body("openai", 400, message="Invalid type for body: expected an object.")
        if not isinstance(body.get("model"), str):
            return 400, error_body("openai", 400, message="you must provide a model parameter")
        field = "messages" if route == "chat" else "input"
        if field not in body:
            return 400, error_body("openai", 400, message="Missing required parameter: '%s'." % field,
                                   param=field, code="missing_required_parameter")
        if route == "chat" and not isinstance(body["messages"], list):
            return 400, error_body("openai", 400, message="Invalid type for 'messages': expected an array.",
                                   param="messages", code="invalid_type")
        if route == "embeddings" and _embedding_inputs(body["input"]) is None:
            return 400, error_body("openai", 400, message=(
                "'$.input' is invalid. Please check the API reference: "
                "https://platform.openai.com/docs/api-reference."))
        return None

    def model(self, body, _path_model):
        return body["model"]

    def streaming(self, body, _req):
        return body.get("stream") is True

    def include_usage(self, body):
        opts = body.get("stream_options")
        return isinstance(opts, dict) and opts.get("include_usage") is True

    def _usage(self, t):
        r = t.reply
        u = {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
             "total_tokens": r.total_tokens}
        if t.cached:
            u["prompt_tokens_details"] = {"cached_tokens": t.cached}
        return u

    def _tool_call(self, t):
        return {"id": "call_mock_%d" % t.n, "type": "function",
                "function": {"name": t.reply.tool_name, "arguments": t.reply.tool_args}}

    def complete(self, t):
        r = t.reply
        if r.tool_name is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [self._tool_call(t)]}
        else:
            message = {"role": "assistant", "content": r.text}
        return {"id": "chatcmpl-mock-%d" % t.n, "object": "chat.completion", "created": CREATED, "model": t.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish}],
                "usage": self._usage(t), "system_fingerprint": "fp_mock"}

    def _chunk(self, t, delta, finish=None, choices=True):
        c = {"id": "chatcmpl-mock-%d" % t.n, "object": "chat.completion.chunk", "created": CREATED,
             "model": t.model, "system_fingerprint": "fp_mock",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
        if t.include_usage:
            c["usage"] = None if choices else self._usage(t)
        return b"data: " + _compact(c) + b"\n\n"

    def stream(self, t, _sse):
        r = t.reply
        if r.tool_name is None:
            preamble = [self._chunk(t, {"role": "assistant", "content": ""})]
            units = [[self._chunk(t, {"content": p})] for p in word_pieces(r.text)]
        else:
            preamble = [self._chunk(t, {"role": "assistant", "content": None})]
            head = {"index": 0, "id": "call_mock_%d" % t.n, "type": "function",
                    "function": {"name": r.tool_name, "arguments": ""}}
            units = [[self._chunk(t, {"tool_calls": [head]})]]
            for i, frag in enumerate(arg_fragments(r.tool_args)):
                ev = self._chunk(t, {"tool_calls": [{"index": 0, "function": {"arguments": frag}}]})
                # The head (id, name) and the first fragment count as one
                # unit: the call's first piece of content.
                if i == 0:
                    units[0].append(ev)
                else:
                    units.append([ev])
        tail = [self._chunk(t, {}, r.finish)]
        if t.include_usage:
            tail.append(self._chunk(t, None, choices=False))
        tail.append(b"data: [DONE]\n\n")
        error = b"data: " + _compact(error_body("openai", 500)) + b"\n\n"
        return _Stream("text/event-stream; charset=utf-8", preamble, units, tail, error)


def _embedding_inputs(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


class _Anthropic:
    kind = "anthropic"
    json_type = "application/json"

    def route(self, method, path):
        return "chat" if (method, path) == ("POST", "/v1/messages") else None

    def not_found(self, req):
        return error_body("anthropic", 404)

    def auth_error(self, req, key):
        if req.header("x-api-key") != key:
            return 401, error_body("anthropic", 401)
        version = req.header("anthropic-version")
        if version is None:
            return 400, error_body("anthropic", 400, message="anthropic-version: header is required")
        if version != ANTHROPIC_VERSION:
            return 400, error_body("anthropic", 400, message="anthropic-version: invalid version %s" % version)
        return None

    def invalid(self, _route, body):
        if body is None:
            return 400, error_body("anthropic", 400, message="Invalid JSON in request body")
        if not isinstance(body, dict):
            return 400, error_body("anthropic", 400, message="Request body must be a JSON object")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return 400, error_body("anthropic", 400, message="%s: Field required" % field)
        if not isinstance(body["model"], str):
            return 400, error_body("anthropic", 400, message="model: Input should be a valid string")
        if not isinstance(body["messages"], list):
            return 400, error_body("anthropic", 400, message="messages: Input should be a valid list")
        if _max_tokens("anthropic", body) is None:
            return 400, error_body("anthropic", 400, message="max_tokens: Input should be a valid integer")
        return None

    def model(self, body, _path_model):
        return body["model"]

    def streaming(self, body, _req):
        return body.get("stream") is True

    def include_usage(self, _body):
        return True

    def _usage(self, t, output):
        r = t.reply
        u = {"input_tokens": max(r.prompt_tokens - t.cached - t.cache_creation, 0), "output_tokens": output}
        if t.cached or t.cache_creation:
            u["cache_creation_input_tokens"] = t.cache_creation
            u["cache_read_input_tokens"] = t.cached
        return u

    def _content(self, t):
        r = t.reply
        if r.tool_name is not None:
            return {"type": "tool_use", "id": "toolu_mock_%d" % t.n, "name": r.tool_name,
                    "input": json.loads(r.tool_args)}
        return {"type": "text", "text": r.text}

    def complete(self, t):
        return {"id": "msg_mock_%d" % t.n, "type": "message", "role": "assistant", "model": t.model,
                "content": [self._content(t)], "stop_reason": t.reply.finish, "stop_sequence": None,
                "usage": self._usage(t, t.reply.completion_tokens)}

    @staticmethod
    def _event(obj):
        return b"event: " + obj["type"].encode() + b"\ndata: " + _compact(obj) + b"\n\n"

    def stream(self, t, _sse):
        r = t.reply
        start = {"type": "message_start", "message": {
            "id": "msg_mock_%d" % t.n, "type": "message", "role": "assistant", "model": t.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": self._usage(t, 1)}}
        preamble = [self._event(start), self._event({"type": "ping"})]
        if r.tool_name is None:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in word_pieces(r.text)]
        else:
            block = {"type": "tool_use", "id": "toolu_mock_%d" % t.n, "name": r.tool_name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": f} for f in arg_fragments(r.tool_args)]
        units = [[self._event({"type": "content_block_delta", "index": 0, "delta": d})] for d in deltas] or [[]]
        # Block start and stop ride with the first and last delta so that
        # after_chunks counts pieces of text, like the other formats.
        units[0].insert(0, self._event({"type": "content_block_start", "index": 0, "content_block": block}))
        units[-1].append(self._event({"type": "content_block_stop", "index": 0}))
        tail = [self._event({"type": "message_delta", "delta": {"stop_reason": r.finish, "stop_sequence": None},
                             "usage": {"output_tokens": r.completion_tokens}}),
                self._event({"type": "message_stop"})]
        error = self._event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return _Stream("text/event-stream; charset=utf-8", preamble, units, tail, error)


class _Gemini:
    kind = "gemini"
    json_type = "application/json; charset=UTF-8"

    def route(self, method, path):
        m = _GEMINI_PATH.match(path)
        if method != "POST" or not m:
            return None
        return "chat"

    def not_found(self, req):
        return error_body("gemini", 404, message="Method not found.")

    def auth_error(self, req, key):
        given = req.header("x-goog-api-key")
        if given is None:
            given = req.qstr("key")
        if given is None:
            return 403, error_body("gemini", 403, message=GEMINI_NO_KEY_MESSAGE)
        if given != key:
            return 400, error_body("gemini", 400, message=GEMINI_BAD_KEY_MESSAGE, details=_gemini_bad_key_details())
        return None

    def invalid(self, _route, body):
        if body is None:
            return 400, error_body("gemini", 400, message="Invalid JSON payload received.")
        if not isinstance(body, dict):
            return 400, error_body("gemini", 400, message="Invalid JSON payload received. Expected an object.")
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return 400, error_body("gemini", 400,
                                   message="* GenerateContentRequest.contents: contents is not specified\n")
        return None

    def model(self, _body, path_model):
        return path_model

    def streaming(self, _body, req):
        return _GEMINI_PATH.match(req.path).group(2) == "streamGenerateContent"

    def include_usage(self, _body):
        return True

    def _usage(self, t, candidates):
        u = {"promptTokenCount": t.reply.prompt_tokens, "candidatesTokenCount": candidates,
             "totalTokenCount": t.reply.prompt_tokens + candidates}
        if t.cached:
            u["cachedContentTokenCount"] = t.cached
        return u

    def _response(self, t, part, finish, candidates):
        cand = {"content": {"parts": [part], "role": "model"}}
        if finish is not None:
            cand["finishReason"] = finish
        cand["index"] = 0
        return {"candidates": [cand], "usageMetadata": self._usage(t, candidates),
                "modelVersion": t.model, "responseId": "mock-%d" % t.n}

    def _part(self, t):
        r = t.reply
        if r.tool_name is not None:
            return {"functionCall": {"name": r.tool_name, "args": json.loads(r.tool_args)}}
        return {"text": r.text}

    def complete(self, t):
        return self._response(t, self._part(t), t.reply.finish, t.reply.completion_tokens)

    def stream(self, t, sse):
        r = t.reply
        frames = []
        if r.tool_name is not None:
            frames.append(self._response(t, self._part(t), r.finish, r.completion_tokens))
        else:
            pieces = word_pieces(r.text) or [""]
            so_far = ""
            for i, p in enumerate(pieces):
                so_far += p
                last = i == len(pieces) - 1
                frames.append(self._response(t, {"text": p}, r.finish if last else None, words(so_far)))
        error = error_body("gemini", 503)
        if sse:
            units = [[b"data: " + _compact(f) + b"\r\n\r\n"] for f in frames]
            return _Stream("text/event-stream", [], units, [], b"data: " + _compact(error) + b"\r\n\r\n")
        # Without alt=sse Google streams one JSON array, element by element.
        units = [[(b"[" if i == 0 else b",\r\n") + _compact(f)] for i, f in enumerate(frames)]
        return _Stream(self.json_type, [], units, [b"]"], b",\r\n" + _compact(error) + b"]")


_FORMATS = {"openai": _OpenAI, "anthropic": _Anthropic, "gemini": _Gemini}


class _RequestLog(list):
    """Parses each request's body as it is logged, so a spec that sees a
    request in .requests always sees its .json too."""

    def append(self, req):
        try:
            req.json = json.loads(req.body) if req.body else None
        except ValueError:
            req.json = None
        req.step = None
        req.reply = None
        super().append(req)


# -- the server -----------------------------------------------------------------------------

class MockLLM(MockUpstream):
    """MockLLM(kind) listens at once on a free port; see the module docstring."""

    def __init__(self, kind, name="llm", tls=None, api_key=None, host="127.0.0.1", port=0):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s, got %r" % (KINDS, kind))
        # Everything a handler reads is set before the base class starts
        # accepting connections.
        self.kind = kind
        self._fmt = _FORMATS[kind]()
        self.api_key = api_key if api_key is not None else DEFAULT_KEYS[kind]
        self.reply_text = None
        self.latency_ms = 0
        self.chunk_delay_ms = 0
        self.cached_tokens = 0
        self.cache_creation_tokens = 0
        self.extra_headers = []
        self.models = list(DEFAULT_MODELS)
        self.replies = 0            # replies built so far (the n in the ids)
        self._steps = deque()
        self._forced = None
        self._llm_lock = threading.Lock()
        self._llm_stop = threading.Event()
        super().__init__(name=name, host=host, port=port, tls=tls)

    # .requests: the base class assigns a plain list; keep it a _RequestLog.
    @property
    def requests(self):
        return self._request_log

    @requests.setter
    def requests(self, value):
        self._request_log = _RequestLog(value)

    def script(self, *steps):
        """Queues failure steps, consumed one per request in arrival order."""
        checked = [_check_step(self.kind, s) for s in steps]
        with self._llm_lock:
            self._steps.extend(checked)

    def pending_steps(self):
        with self._llm_lock:
            return len(self._steps)

    def clear_script(self):
        with self._llm_lock:
            self._steps.clear()

    def set_status(self, status):
        """Answers every request with this status in the provider's error
        format until set_status(None); scripted steps go first."""
        if status is not None:
            _check_step(self.kind, {"status": status})
        with self._llm_lock:
            self._forced = status

    def set_delay(self, ms):
        self.latency_ms = ms

    def expected(self, body):
        """The Reply this mock, as configured now, gives to body."""
        return expected_reply(self.kind, body, self.reply_text)

    def stop(self):
        self._llm_stop.set()
        super().stop()

    # -- internals -----------------------------------------------------------------------

    def _sleep_ms(self, ms):
        if ms > 0:
            self._llm_stop.wait(ms / 1000.0)

    def _next_step(self):
        with self._llm_lock:
            if self._steps:
                return self._steps.popleft()
            return {"status": self._forced} if self._forced is not None else {}

    def _dispatch(self, sock, req):
        if req.path == HEALTH_PATH:
            return super()._dispatch(sock, req)
        try:
            return self._answer(sock, req)
        except Exception as e:
            # A mock bug must show up in .errors (the specs' fixtures check
            # it), not as a thread dying with a traceback nobody reads.
            with self._lock:
                self.errors.append("mock_llm %s %s: %r" % (req.method, req.target, e))
            return False

    def _answer(self, sock, req):
        step = self._next_step()
        req.step = step or None
        self._sleep_ms(self.latency_ms + step.get("delay_ms", 0))
        if step.get("drop") == "before_head":
            return False
        if "status" in step and step["status"] != 200:
            return self._scripted_error(sock, req, step)
        route = self._fmt.route(req.method, req.path)
        if route is None:
            return self._json(sock, req, 404, self._fmt.not_found(req))
        if self.api_key is not None:
            refused = self._fmt.auth_error(req, self.api_key)
            if refused is not None:
                return self._json(sock, req, *refused)
        if route == "models":
            return self._json(sock, req, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "mock"} for m in self.models]}, step)
        body = req.json
        refused = self._fmt.invalid(route, body)
        if refused is not None:
            return self._json(sock, req, *refused)
        if route == "embeddings":
            return self._json(sock, req, 200, self._embeddings(body), step)
        return self._chat(sock, req, body, step)

    def _scripted_error(self, sock, req, step):
        status = step["status"]
        body = error_body(self.kind, status, message=step.get("message"), type=step.get("type"),
                          code=step.get("code", _DEFAULT), retry_after=step.get("retry_after"))
        headers = []
        if "retry_after" in step:
            headers.append(("retry-after", str(step["retry_after"])))
        if "retry_after_ms" in step:
            headers.append(("retry-after-ms", str(step["retry_after_ms"])))
        return self._json(sock, req, status, body, step, headers)

    def _headers(self, step, extra=()):
        return list(extra) + [tuple(h) for h in self.extra_headers] + [tuple(h) for h in step.get("headers", ())]

    def _json(self, sock, req, status, obj, step=None, headers=()):
        """A complete JSON answer; drop steps cut it short."""
        step = step or {}
        if self.kind == "gemini":
            data = json.dumps(obj, indent=2).encode()    # Google pretty-prints its JSON
        else:
            data = _compact(obj)
        hdrs = self._headers(step, headers)
        drop = step.get("drop")
        if status == 200 and drop in ("before_content", "after_content"):
            head = self._head(200, [("Content-Type", self._fmt.json_type), ("Content-Length", str(len(data)))]
                              + hdrs, True)
            self._send(sock, head + (data[:len(data) // 2] if drop == "after_content" else b""))
            return False
        if status == 200:
            self._sleep_ms(step.get("first_token_delay_ms", 0))
        return self._respond(sock, req, status, data, hdrs, self._fmt.json_type)

    def _embeddings(self, body):
        texts = _embedding_inputs(body["input"])
        dims = body.get("dimensions")
        dims = dims if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0 else EMBEDDING_DIMS
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = embedding_for(text, dims)
            if b64:
                vec = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        n = sum(words(t) for t in texts)
        return {"object": "list", "data": data, "model": body["model"],
                "usage": {"prompt_tokens": n, "total_tokens": n}}

    def _chat(self, sock, req, body, step):
        reply = expected_reply(self.kind, body, self.reply_text)
        path_model = None
        if self.kind == "gemini":
            path_model = _GEMINI_PATH.match(req.path).group(1)
        with self._llm_lock:
            self.replies += 1
            n = self.replies
        req.reply = reply
        turn = _Turn(n, self._fmt.model(body, path_model), reply, self._fmt.include_usage(body),
                     self.cached_tokens, self.cache_creation_tokens)
        if not self._fmt.streaming(body, req):
            return self._json(sock, req, 200, self._fmt.complete(turn), step)
        return self._stream(sock, req, self._fmt.stream(turn, req.qstr("alt") == "sse"), step)

    def _chunk(self, sock, data):
        return self._send(sock, b"%x\r\n%s\r\n" % (len(data), data))

    def _stream(self, sock, req, s, step):
        keep = self._keep_alive(req)
        hdrs = [("Content-Type", s.ctype), ("Transfer-Encoding", "chunked"), ("Cache-Control", "no-cache")]
        if not self._send(sock, self._head(200, hdrs + self._headers(step), keep)):
            return False
        for ev in s.preamble:
            if not self._chunk(sock, ev):
                return False
        drop = step.get("drop")
        if drop == "before_content":
            return False
        self._sleep_ms(step.get("first_token_delay_ms", 0))
        cut = None
        if drop == "after_content" or step.get("mid_stream_error"):
            cut = step.get("after_chunks", 1)
        for i, unit in enumerate(s.units):
            if i == cut:
                break
            if i > 0:
                self._sleep_ms(self.chunk_delay_ms)
            for ev in unit:
                if not self._chunk(sock, ev):
                    return False
        if drop == "after_content":
            return False
        if step.get("mid_stream_error"):
            return self._chunk(sock, s.error) and self._send(sock, b"0\r\n\r\n") and keep
        for ev in s.tail:
            if not self._chunk(sock, ev):
                return False
        return self._send(sock, b"0\r\n\r\n") and keep
