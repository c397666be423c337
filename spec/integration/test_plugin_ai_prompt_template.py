"""ai-prompt-template (plugins/ai-prompt-template): prompts as REST
endpoints. The client POSTs a JSON object of variables; the plugin fills the
template and sends a chat-completions body upstream. For what goes upstream
the mock upstream's echo shows the exact body; for the "simple" output a
small stand-in LLM server (below) answers with a fixed chat.completion, an
SSE stream or an error."""

import gzip
import http.server
import json
import os
import subprocess
import textwrap
import threading

import pytest

import expect
from configs import proxy
from plugin_harness import plugin_gateway
from scale import scaled

JSON = [("Content-Type", "application/json")]
SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Fast, light, cheap."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
}
SIMPLE = {"text": "Fast, light, cheap.", "model": "gpt-4o-mini-2024-07-18",
          "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26}}


class FakeLLM:
    """An HTTP/1.1 server answering every POST with one scripted reply:
    status, headers and body pieces (more than one piece: sent chunked). It
    records (path, headers, body) of each request."""

    def __init__(self):
        self.requests = []
        self.reply(200, json.dumps(COMPLETION).encode())
        llm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                llm.requests.append((self.path, dict(self.headers.items()), body))
                status, headers, pieces = llm._reply
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if len(pieces) == 1:
                    self.send_header("Content-Length", str(len(pieces[0])))
                    self.end_headers()
                    self.wfile.write(pieces[0])
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for p in pieces:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, status, body, content_type="application/json", headers=(), pieces=1):
        step = max(1, -(-len(body) // pieces))
        chunks = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
        self._reply = (status, [("Content-Type", content_type)] + list(headers), chunks)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.stop()


SUMMARY = {
    "versions": {
        "v1": {"system": "You write product copy.",
               "user": "Describe {{product_name}} in {{ words }} words. Features: {{features}}.",
               "defaults": {"words": 3}, "model": "copy-model", "temperature": 0.7, "max_tokens": 64},
        "v2": {"user": "Describe {{product_name}} briefly.", "model": "copy-model-2"},
    }
}


def conf(**kw):
    c = {"templates": {"summary": SUMMARY}, "template": "summary", "version": "v1"}
    c.update(kw)
    return c


def prompt(gw, variables, path="/prompts/summary"):
    body = variables if isinstance(variables, bytes) else json.dumps(variables).encode()
    return gw.post(path, body, headers=JSON)


def sent(resp):
    """The chat body the upstream received (the mock upstream's echo)."""
    return json.loads(expect.echo(resp)["body"].encode("latin-1").decode("utf-8"))


def with_llm(gateway_factory, llm, plugin_conf, before=(), after=(), **top):
    cfg = proxy(llm.url, route={"plugins": list(before) + [{"ai-prompt-template": plugin_conf}] + list(after)},
                **top)
    return gateway_factory(cfg)


def refused(resp, code, message, version="v1"):
    err = expect.gateway_error(resp, 400, code, "invalid_request_error")
    assert err["message"] == message
    assert resp.header("X-Sluice-Prompt-Version") == version


# ---- what goes upstream ----------------------------------------------------------------------------

@pytest.mark.valgrind
def test_the_filled_template_goes_upstream_as_a_chat_body(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(output="openai")) as (gw, up):
        r = prompt(gw, {"product_name": "Sluice", "features": ["fast", "small", 2, True]})
        e = expect.echo(r)
        assert (e["method"], e["target"]) == ("POST", "/v1/chat/completions")
        assert e["body"] == (
            '{"model":"copy-model","messages":[{"role":"system","content":"You write product copy."},'
            '{"role":"user","content":"Describe Sluice in 3 words. Features: fast, small, 2, true."}],'
            '"temperature":0.7,"max_tokens":64}')
        assert expect.values(e, "Content-Type") == ["application/json"]
        assert expect.values(e, "Content-Length") == [str(len(e["body"]))]
        assert r.header("X-Sluice-Prompt-Version") == "v1"


def test_request_values_override_defaults_and_null_means_not_given(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(output="openai")) as (gw, up):
        m = sent(prompt(gw, {"product_name": "A", "features": [], "words": 10}))["messages"]
        assert m[1]["content"] == "Describe A in 10 words. Features: ."
        m = sent(prompt(gw, {"product_name": "A", "features": "x", "words": None}))["messages"]
        assert m[1]["content"] == "Describe A in 3 words. Features: x."


def test_numbers_booleans_and_unicode_are_written_as_text(tmp_path):
    t = {"templates": {"t": {"versions": {"v": {"user": "{{a}}|{{b}}|{{c}}|{{d}}|{{e}}", "model": "m"}}}},
         "template": "t", "output": "openai"}
    with plugin_gateway(tmp_path, "ai-prompt-template", t) as (gw, up):
        body = json.dumps({"a": 0.1, "b": -42, "c": False, "d": "日本 ✓", "e": [1.5, "x"]}).encode()
        assert sent(prompt(gw, body)) == {"model": "m", "messages": [
            {"role": "user", "content": "0.1|-42|false|日本 ✓|1.5, x"}]}


def test_values_are_inserted_literally(tmp_path):
    t = {"templates": {"t": {"versions": {"v": {"user": "{{a}} / {{b}} / {{ c }} / {{not valid}}",
                                                "model": "m"}}}},
         "template": "t", "output": "openai"}
    with plugin_gateway(tmp_path, "ai-prompt-template", t) as (gw, up):
        m = sent(prompt(gw, {"a": "{{b}}", "b": "}}{{", "c": '"quoted"\n'}))["messages"]
        assert m == [{"role": "user", "content": '{{b}} / }}{{ / "quoted"\n / {{not valid}}'}]


def test_a_version_without_system_sends_only_the_user_message(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(version="v2", output="openai")) as (gw, up):
        r = prompt(gw, {"product_name": "B"})
        assert sent(r) == {"model": "copy-model-2",
                           "messages": [{"role": "user", "content": "Describe B briefly."}]}
        assert r.header("X-Sluice-Prompt-Version") == "v2"


def test_the_plugins_model_replaces_the_versions(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(model="fast-alias", output="openai")) as (gw, up):
        assert sent(prompt(gw, {"product_name": "A", "features": "x"}))["model"] == "fast-alias"


def test_upstream_path(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template",
                        conf(upstream_path="/llm/chat?api-version=2", output="openai")) as (gw, up):
        e = expect.echo(prompt(gw, {"product_name": "A", "features": "x"}, path="/prompts/summary?x=1"))
        assert e["target"] == "/llm/chat?api-version=2"


def test_an_empty_body_uses_the_defaults(tmp_path):
    t = {"templates": {"t": {"versions": {"v": {"user": "Tell a {{kind}} joke", "model": "m",
                                                "defaults": {"kind": "short"}}}}},
         "template": "t", "output": "openai"}
    with plugin_gateway(tmp_path, "ai-prompt-template", t) as (gw, up):
        assert sent(gw.post("/joke", b""))["messages"] == [{"role": "user", "content": "Tell a short joke"}]


def test_the_simple_output_asks_for_an_uncompressed_answer(tmp_path):
    hdrs = JSON + [("Accept-Encoding", "gzip")]
    body = json.dumps({"product_name": "A", "features": "x"}).encode()
    with plugin_gateway(tmp_path, "ai-prompt-template", conf()) as (gw, up):
        assert expect.values(expect.echo(gw.post("/p", body, headers=hdrs)), "Accept-Encoding") == []
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(output="openai")) as (gw, up):
        assert expect.values(expect.echo(gw.post("/p", body, headers=hdrs)), "Accept-Encoding") == ["gzip"]


def test_ctx_names_the_template_and_version_for_later_plugins(tmp_path):
    assert SPEC_PLUGINS, "SLUICE_SPEC_PLUGIN_DIR must point at the built spec plugins"
    after = [{"probe-a": {"tag": "a", "read_ctx": "ai.prompt.template"}},
             {"probe-b": {"tag": "b", "read_ctx": "ai.prompt.version"}}]
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(version="v2", output="openai"), after=after,
                        plugin_dirs=[SPEC_PLUGINS]) as (gw, up):
        # each probe writes the ctx value it read to X-Ctx; the second one wins
        e = expect.echo(prompt(gw, {"product_name": "A"}))
        assert expect.values(e, "X-Ctx") == ["v2"]
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(output="openai"), after=after[:1],
                        plugin_dirs=[SPEC_PLUGINS]) as (gw, up):
        e = expect.echo(prompt(gw, {"product_name": "A", "features": "x"}))
        assert expect.values(e, "X-Ctx") == ["summary"]


# ---- A/B split ---------------------------------------------------------------------------------

def versions_seen(gw, n):
    seen = []
    for _ in range(n):
        r = prompt(gw, {"product_name": "A", "features": "x"})
        assert r.status == 200
        seen.append((r.header("X-Sluice-Prompt-Version"), sent(r)["model"]))
    return seen


def test_split_with_all_the_weight_on_one_version(tmp_path):
    c = conf(output="openai", split=[{"version": "v1", "weight": 0}, {"version": "v2", "weight": 5}])
    del c["version"]
    with plugin_gateway(tmp_path, "ai-prompt-template", c) as (gw, up):
        assert versions_seen(gw, 10) == [("v2", "copy-model-2")] * 10


def test_split_shares_requests_between_versions(tmp_path):
    c = conf(output="openai", split=[{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}])
    del c["version"]
    with plugin_gateway(tmp_path, "ai-prompt-template", c) as (gw, up):
        seen = versions_seen(gw, 60)
        # each request names its version, and the body is that version's
        assert set(seen) == {("v1", "copy-model"), ("v2", "copy-model-2")}


# ---- the answer ----------------------------------------------------------------------------------

@pytest.mark.valgrind
def test_simple_output(gateway_factory, llm):
    gw = with_llm(gateway_factory, llm, conf())
    r = prompt(gw, {"product_name": "A", "features": "x"})
    assert r.status == 200
    assert r.json() == SIMPLE
    assert r.body == json.dumps(SIMPLE, separators=(",", ":")).encode()
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Sluice-Prompt-Version") == "v1"
    path, headers, body = llm.requests[0]
    assert path == "/v1/chat/completions"
    assert json.loads(body)["model"] == "copy-model"


def test_simple_output_from_an_answer_in_several_pieces(gateway_factory, llm):
    llm.reply(200, json.dumps(COMPLETION).encode(), pieces=5)
    gw = with_llm(gateway_factory, llm, conf())
    assert prompt(gw, {"product_name": "A", "features": "x"}).json() == SIMPLE


def test_simple_output_with_null_content_and_without_usage(gateway_factory, llm):
    llm.reply(200, b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]}}]}',
              content_type="application/json; charset=utf-8")
    gw = with_llm(gateway_factory, llm, conf())
    r = prompt(gw, {"product_name": "A", "features": "x"})
    assert r.body == b'{"text":null,"model":null,"usage":null}'


@pytest.mark.parametrize("status,content_type,body", [
    (429, "application/json", b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit"}}'),
    (500, "text/plain", b"upstream broke"),
    (200, "text/event-stream", b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n'),
    (200, "application/json", b'{"not":"a chat.completion"}'),
    (200, "application/json", b'{"choices":[{"message":{"content":[{"type":"text","text":"x"}]}}]}'),
    (200, "application/json", b"{broken json"),
])
def test_answers_simple_cannot_read_pass_unchanged(gateway_factory, llm, status, content_type, body):
    llm.reply(status, body, content_type=content_type, pieces=2)
    gw = with_llm(gateway_factory, llm, conf())
    r = prompt(gw, {"product_name": "A", "features": "x"})
    assert (r.status, r.header("Content-Type"), bytes(r.body)) == (status, content_type, body)
    assert r.header("X-Sluice-Prompt-Version") == "v1"


def test_a_compressed_answer_passes_unchanged(gateway_factory, llm):
    packed = gzip.compress(json.dumps(COMPLETION).encode())
    llm.reply(200, packed, headers=[("Content-Encoding", "gzip")])
    gw = with_llm(gateway_factory, llm, conf())
    r = prompt(gw, {"product_name": "A", "features": "x"})
    assert (r.header("Content-Encoding"), bytes(r.body)) == ("gzip", packed)


def test_openai_output_is_untouched(gateway_factory, llm):
    raw_body = json.dumps(COMPLETION, indent=1).encode()
    llm.reply(200, raw_body, pieces=3)
    gw = with_llm(gateway_factory, llm, conf(output="openai"))
    r = prompt(gw, {"product_name": "A", "features": "x"})
    assert bytes(r.body) == raw_body
    assert r.header("X-Sluice-Prompt-Version") == "v1"


def test_simple_output_of_several_requests_on_one_connection(gateway_factory, llm):
    gw = with_llm(gateway_factory, llm, conf())
    body = json.dumps({"product_name": "A", "features": "x"}).encode()
    with gw.conn() as c:
        for _ in range(3):
            r = c.request("POST", "/prompts/summary", JSON, body)
            assert r.json() == SIMPLE
        refused(c.request("POST", "/prompts/summary", JSON, b"{}"), "missing_variable",
                'missing variable "product_name"')
        assert c.request("POST", "/prompts/summary", JSON, body).json() == SIMPLE


def test_with_the_guard_after_it_the_filled_prompt_is_judged(gateway_factory, llm):
    guard = {"ai-prompt-guard": {"deny_patterns": ["forbidden"]}}
    gw = with_llm(gateway_factory, llm, conf(), after=[guard])
    err = expect.gateway_error(prompt(gw, {"product_name": "forbidden", "features": "x"}), 400,
                               "prompt_blocked", "invalid_request_error")
    assert err["message"] == "the prompt matches a deny pattern"
    assert prompt(gw, {"product_name": "fine", "features": "x"}).json() == SIMPLE
    assert len(llm.requests) == 1


# ---- bad requests --------------------------------------------------------------------------------

def test_a_missing_variable_is_named(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf()) as (gw, up):
        refused(prompt(gw, {"features": "x"}), "missing_variable", 'missing variable "product_name"')
        refused(prompt(gw, {"product_name": "A"}), "missing_variable", 'missing variable "features"')
        refused(prompt(gw, {"product_name": "A", "features": None}), "missing_variable",
                'missing variable "features"')
        assert up.requests == []


def test_values_a_placeholder_cannot_show(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf()) as (gw, up):
        must = "must be a string, number, boolean or array of those"
        refused(prompt(gw, {"product_name": {"a": 1}, "features": "x"}), "invalid_variable",
                'variable "product_name" ' + must)
        refused(prompt(gw, {"product_name": "A", "features": [["nested"]]}), "invalid_variable",
                'variable "features" ' + must)
        refused(prompt(gw, {"product_name": "A", "features": [None]}), "invalid_variable",
                'variable "features" ' + must)
        assert up.requests == []


DECLARED = {"product_name": {"type": "string", "required": True}, "features": {"type": "array"},
            "words": {"type": "integer"}, "ratio": {"type": "number"}, "loud": {"type": "boolean"},
            "audience": {"required": True}}


@pytest.mark.parametrize("variables,code,message", [
    ({"features": [], "audience": "x"}, "missing_variable", 'missing variable "product_name"'),
    ({"product_name": "A", "features": []}, "missing_variable", 'missing variable "audience"'),
    ({"product_name": 7, "audience": "x"}, "invalid_variable", 'variable "product_name" must be a string'),
    ({"product_name": "A", "features": "x", "audience": "x"}, "invalid_variable",
     'variable "features" must be an array of strings, numbers or booleans'),
    ({"product_name": "A", "features": [{}], "audience": "x"}, "invalid_variable",
     'variable "features" must be an array of strings, numbers or booleans'),
    ({"product_name": "A", "features": [], "words": 2.5, "audience": "x"}, "invalid_variable",
     'variable "words" must be an integer'),
    ({"product_name": "A", "features": [], "ratio": "1", "audience": "x"}, "invalid_variable",
     'variable "ratio" must be a number'),
    ({"product_name": "A", "features": [], "loud": 1, "audience": "x"}, "invalid_variable",
     'variable "loud" must be a boolean'),
    ({"product_name": "A", "features": [], "audience": {}}, "invalid_variable",
     'variable "audience" must be a string, number, boolean or array of those'),
])
def test_declared_variables_are_checked(tmp_path, variables, code, message):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(variables=DECLARED)) as (gw, up):
        refused(prompt(gw, variables), code, message)
        assert up.requests == []


def test_declared_variables_that_pass(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf(variables=DECLARED, output="openai")) as (gw, up):
        r = prompt(gw, {"product_name": "A", "features": ["x", 1], "words": 2, "ratio": 0.5, "loud": False,
                        "audience": ["devs", "ops"], "extra": {"ignored": True}})
        assert sent(r)["messages"][1]["content"] == "Describe A in 2 words. Features: x, 1."


@pytest.mark.parametrize("body,message", [
    (b"[1, 2]", "the request body must be a JSON object of template variables"),
    (b'"text"', "the request body must be a JSON object of template variables"),
    (b"{nope", "the request body is not valid JSON: string or '}' expected near 'nope'"),
    (b'{"a": 1, "a": 2}', "the request body is not valid JSON: duplicate object key near '\"a\"'"),
])
def test_bad_bodies(tmp_path, body, message):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf()) as (gw, up):
        refused(prompt(gw, body), "invalid_body", message)
        assert up.requests == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post(tmp_path, method):
    with plugin_gateway(tmp_path, "ai-prompt-template", conf()) as (gw, up):
        r = gw.request(method, "/prompts/summary", body=b"" if method != "GET" else None)
        err = expect.gateway_error(r, 405, "method_not_allowed", "invalid_request_error")
        assert err["message"] == "a prompt endpoint takes POST"
        assert r.headers_named("Allow") == ["POST"]
        assert up.requests == []


# ---- config errors -------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - ai-prompt-template: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (ai-prompt-template)" % path


T = "templates: {t: {versions: {v1: {user: 'u {{x}}', model: m}, v2: {user: u2, defaults: {x: [1]}}}}}"


@pytest.mark.parametrize("yaml,message", [
    ("{}", [".templates: missing required field", ".template: missing required field"]),
    ("{templates: {}}", ".template: missing required field"),
    ("{%s, template: nope}" % T, ': template: no template "nope" in templates'),
    ("{%s, template: t, version: v3}" % T, ': version: template "t" has no version "v3"'),
    ("{%s, template: t}" % T, ': version: template "t" has 2 versions: set version or split'),
    ("{%s, template: t, version: v1, split: [{version: v1, weight: 1}]}" % T,
     ": set either version or split, not both"),
    ("{%s, template: t, split: [{version: v1, weight: 1}, {version: v9, weight: 1}]}" % T,
     ': split[1].version: template "t" has no version "v9"'),
    ("{%s, template: t, split: [{version: v1, weight: 1}, {version: v1, weight: 2}]}" % T,
     ': split[1].version: version "v1" is listed twice'),
    ("{%s, template: t, split: [{version: v1, weight: 0}]}" % T, ": split: the weights add up to 0"),
    ("{%s, template: t, split: [{version: v1, weight: -1}]}" % T, ".split[0].weight: must be >= 0"),
    ("{%s, template: t, split: [{version: v1}]}" % T, ".split[0].weight: missing required field"),
    ("{%s, template: t, split: []}" % T, ".split: must have at least 1 item"),
    ("{%s, template: t, version: v2}" % T,
     ": templates.t.versions.v2: no model: set model in the version or in the plugin's config"),
    ("{%s, template: t, version: v2, model: m, variables: {x: {type: string}}}" % T,
     ": templates.t.versions.v2.defaults.x: must be a string (declared in variables)"),
    ("{templates: {t: {versions: {v: {user: u, model: m, defaults: {x: {a: 1}}}}}}, template: t}",
     ": templates.t.versions.v.defaults.x: must be a string, number, boolean or array of those"),
    ("{templates: {t: {versions: {v: {model: m}}}}, template: t}", ".templates.t.versions.v.user: missing required field"),
    ("{templates: {t: {versions: {v: {user: u, prompt: p}}}}, template: t}",
     ".templates.t.versions.v.prompt: unknown field"),
    ("{templates: {t: {versions: {v: {user: u, temperature: 3}}}}, template: t}",
     ".templates.t.versions.v.temperature: must be <= 2"),
    ("{templates: {t: {versions: {v: {user: u, max_tokens: 0}}}}, template: t}",
     ".templates.t.versions.v.max_tokens: must be >= 1"),
    ("{templates: {t: {user: u}}, template: t}",
     [".templates.t.user: unknown field", ".templates.t.versions: missing required field"]),
    ("{templates: {t: {}}, template: t}", ".templates.t.versions: missing required field"),
    ("{%s, template: t, version: v1, output: text}" % T, '.output: must be one of "simple", "openai"'),
    ("{%s, template: t, version: v1, variables: {x: {type: object}}}" % T,
     '.variables.x.type: must be one of "string", "number", "integer", "boolean", "array"'),
    ("{%s, template: t, version: v1, variables: {x: {required: yes}}}" % T,
     ".variables.x.required: expected boolean, got string"),
    ("{%s, template: t, version: v1, upstream_path: v1/chat}" % T, ".upstream_path: must match ^/[!-~]*$"),
    ("{%s, template: t, version: v1, model: ''}" % T, ".model: must be at least 1 character"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    messages = message if isinstance(message, list) else [message]
    assert proc.stderr.splitlines() == [where + m for m in messages]


def test_the_example_config_loads(sluice_bin):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prompt-endpoints.yaml")
    proc = subprocess.run([sluice_bin, "check", "-c", path], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")


def test_good_config_passes_check(sluice_bin, tmp_path):
    proc, _ = check(sluice_bin, tmp_path, "{%s, template: t, split: [{version: v1, weight: 9}, "
                                          "{version: v2, weight: 1}], model: alias, output: openai}" % T)
    assert proc.returncode == 0, proc.stderr
