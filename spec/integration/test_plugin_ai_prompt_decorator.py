"""ai-prompt-decorator (plugins/ai-prompt-decorator): operator messages put
around the client's in an OpenAI chat-completions body before it goes
upstream. The mock upstream echoes the body it got, so each spec compares
the exact JSON the upstream received."""

import json
import subprocess
import textwrap

import pytest

import expect
from plugin_harness import plugin_gateway
from scale import scaled

JSON = [("Content-Type", "application/json")]


def post_chat(gw, body, path="/v1/chat/completions"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gw.post(path, data, headers=JSON)


def upstream_body(resp):
    """The body the upstream received, as text (it is UTF-8 on the wire)."""
    return expect.echo(resp)["body"].encode("latin-1").decode("utf-8")


def upstream_json(resp):
    return json.loads(upstream_body(resp))


def msg(role, content):
    return {"role": role, "content": content}


def refused(resp, message):
    err = expect.gateway_error(resp, 400, "invalid_body", "invalid_request_error")
    assert err["message"] == message


# ---- where the messages go ---------------------------------------------------------------------

@pytest.mark.valgrind
def test_prepend_and_append_around_the_clients_messages(tmp_path):
    conf = {"prepend": [msg("system", "Answer in French."), msg("user", "Say hi"),
                        msg("assistant", "Bonjour")],
            "append": [msg("user", "Keep it short.")]}
    with plugin_gateway(tmp_path, "ai-prompt-decorator", conf) as (gw, up):
        r = post_chat(gw, {"model": "m", "messages": [msg("user", "How are you?")]})
        assert upstream_json(r) == {"model": "m", "messages": [
            msg("system", "Answer in French."), msg("user", "Say hi"), msg("assistant", "Bonjour"),
            msg("user", "How are you?"), msg("user", "Keep it short.")]}
        assert up.requests[0].header("Content-Length") == str(len(up.requests[0].body))


def test_system_prepends_go_before_the_clients_instructions_and_examples_after(tmp_path):
    conf = {"prepend": [msg("user", "example question"), msg("assistant", "example answer"),
                        msg("system", "Never reveal secrets."), msg("developer", "Use JSON.")]}
    with plugin_gateway(tmp_path, "ai-prompt-decorator", conf) as (gw, up):
        r = post_chat(gw, {"model": "m", "messages": [
            msg("system", "You are a helpful bot."), msg("developer", "Be brief."),
            msg("user", "q1"), msg("system", "mid-conversation note"), msg("user", "q2")]})
        assert upstream_json(r)["messages"] == [
            msg("system", "Never reveal secrets."), msg("developer", "Use JSON."),
            msg("system", "You are a helpful bot."), msg("developer", "Be brief."),
            msg("user", "example question"), msg("assistant", "example answer"),
            msg("user", "q1"), msg("system", "mid-conversation note"), msg("user", "q2")]


def test_only_prepend(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("system", "S")]}) as (gw, up):
        r = post_chat(gw, {"messages": [msg("user", "u")]})
        assert upstream_body(r) == '{"messages":[{"role":"system","content":"S"},' \
                                   '{"role":"user","content":"u"}]}'


def test_only_append(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"append": [msg("assistant", "A"), msg("user", "U")]}) as (gw, up):
        r = post_chat(gw, {"messages": [msg("user", "u")]})
        assert upstream_json(r)["messages"] == [msg("user", "u"), msg("assistant", "A"), msg("user", "U")]


def test_an_empty_conversation_gets_the_operators_messages(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("user", "P")], "append": [msg("user", "A")]}) as (gw, up):
        r = post_chat(gw, {"model": "m", "messages": []})
        assert upstream_json(r) == {"model": "m", "messages": [msg("user", "P"), msg("user", "A")]}


def test_every_other_field_and_number_is_kept_exactly(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("system", "S")]}) as (gw, up):
        body = (b'{"model":"gpt-4o","temperature":0.7,"top_p":0.1,"seed":12345678901,'
                b'"stream":true,"stop":null,"tools":[],"metadata":{},'
                b'"messages":[{"role":"user","name":"bob","content":[{"type":"text","text":"x"},'
                b'{"type":"image_url","image_url":{"url":"https://i.test/a.png"}}]},'
                b'{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",'
                b'"function":{"name":"f","arguments":"{\\"a\\":1}"}}]},'
                b'{"role":"tool","tool_call_id":"c1","content":"42"}]}')
        r = post_chat(gw, body)
        assert upstream_body(r) == (
            '{"model":"gpt-4o","temperature":0.7,"top_p":0.1,"seed":12345678901,'
            '"stream":true,"stop":null,"tools":[],"metadata":{},'
            '"messages":[{"role":"system","content":"S"},'
            '{"role":"user","name":"bob","content":[{"type":"text","text":"x"},'
            '{"type":"image_url","image_url":{"url":"https://i.test/a.png"}}]},'
            '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",'
            '"function":{"name":"f","arguments":"{\\"a\\":1}"}}]},'
            '{"role":"tool","tool_call_id":"c1","content":"42"}]}')


def test_non_ascii_text_passes_unchanged(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("system", "Réponds en français ✓")]}) as (gw, up):
        r = post_chat(gw, json.dumps({"messages": [msg("user", "日本語で")]}).encode())
        assert upstream_body(r) == ('{"messages":[{"role":"system","content":"Réponds en français ✓"},'
                                    '{"role":"user","content":"日本語で"}]}')


def test_requests_without_a_body_pass_untouched(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("system", "S")]}) as (gw, up):
        e = expect.echo(gw.get("/v1/models"))
        assert (e["method"], e["target"], e["body"]) == ("GET", "/v1/models", "")


def test_the_same_decoration_for_every_request(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator",
                        {"prepend": [msg("system", "S")]}) as (gw, up):
        for i in range(3):
            r = post_chat(gw, {"messages": [msg("user", str(i))]})
            assert upstream_json(r)["messages"] == [msg("system", "S"), msg("user", str(i))]


# ---- bad request bodies ------------------------------------------------------------------------

@pytest.mark.parametrize("body,message", [
    (b"{not json", "the request body is not valid JSON: string or '}' expected near 'not'"),
    (b'{"messages": []} x', "the request body is not valid JSON: end of file expected near 'x'"),
    (b'{"messages": [], "messages": []}', "the request body is not valid JSON: duplicate object key near '\"messages\"'"),
    (b'[{"role": "user", "content": "x"}]', "the request body must be a JSON object"),
    (b'"text"', "the request body must be a JSON object"),
    (b'{"model": "m"}', '"messages" must be an array'),
    (b'{"messages": {"role": "user"}}', '"messages" must be an array'),
    (b'{"messages": [{"role": "user", "content": "a"}, "b"]}',
     'messages[1] must be an object with a string "role"'),
    (b'{"messages": [{"content": "a"}]}', 'messages[0] must be an object with a string "role"'),
    (b'{"messages": [{"role": 1, "content": "a"}]}', 'messages[0] must be an object with a string "role"'),
])
def test_bad_bodies_are_refused_before_the_upstream(tmp_path, body, message):
    with plugin_gateway(tmp_path, "ai-prompt-decorator", {"prepend": [msg("system", "S")]}) as (gw, up):
        refused(post_chat(gw, body), message)
        assert up.requests == []


def test_a_refused_body_leaves_the_connection_usable(tmp_path):
    with plugin_gateway(tmp_path, "ai-prompt-decorator", {"append": [msg("user", "A")]}) as (gw, up):
        with gw.conn() as c:
            refused(c.request("POST", "/v1/chat/completions", JSON, b"[]"),
                    "the request body must be a JSON object")
            r = c.request("POST", "/v1/chat/completions", JSON, b'{"messages":[]}')
            assert upstream_json(r) == {"messages": [msg("user", "A")]}


# ---- config errors -----------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - ai-prompt-decorator: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (ai-prompt-decorator)" % path


ROLES = 'must be one of "system", "developer", "user", "assistant"'


@pytest.mark.parametrize("yaml,message", [
    ("{}", ': must set at least one of "prepend", "append"'),
    ("{prepend: [{role: tool, content: x}]}", ".prepend[0].role: " + ROLES),
    ("{append: [{role: System, content: x}]}", ".append[0].role: " + ROLES),
    ("{prepend: [{role: user}]}", ".prepend[0].content: missing required field"),
    ("{append: [{content: x}]}", ".append[0].role: missing required field"),
    ("{prepend: [{role: user, content: [a]}]}", ".prepend[0].content: expected string, got array"),
    ("{prepend: [{role: user, content: x, name: bob}]}", ".prepend[0].name: unknown field"),
    ("{prepend: {role: user, content: x}}", ".prepend: expected array, got object"),
    ("{append: [x]}", ".append[0]: expected object, got string"),
    ("{prepend: [], messages: []}", ".messages: unknown field"),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]


def test_good_config_passes_check(sluice_bin, tmp_path):
    proc, _ = check(sluice_bin, tmp_path, "{prepend: [{role: system, content: x}], append: []}")
    assert proc.returncode == 0, proc.stderr
