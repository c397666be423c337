"""The official client SDKs (the `openai` and `@anthropic-ai/sdk` npm packages)
against sluice's ai-proxy and against the mock providers themselves.

The client side lives in spec/clients/*.test.mjs (node's built-in test
runner, exact assertions with node:assert/strict); this file starts the
servers, runs one test file with node, and checks node's exit code and its
TAP summary. Each spec also checks what the providers saw, which the node side
cannot.

The tests need node (18.15 or later; SLUICE_NODE overrides `node`) and the
packages of spec/clients/package-lock.json (`npm ci --prefix spec/clients`);
without them they fail (./dev.sh test installs them).
"""

import os
import re
import shutil
import subprocess

import pytest

import mock_llm
from gateway import repo_root
from mock_llm import MockLLM
from scale import scaled

CLIENTS = repo_root() / "spec" / "clients"
PACKAGES = ("openai", "@anthropic-ai/sdk")

# The aliases the gateway-side client tests expect, in this order
# (gateway_models.test.mjs lists them).
GATEWAY_ALIASES = ("demo", "gpt", "claude", "limited", "flaky", "embed", "gpt-embed")


@pytest.fixture(scope="session")
def node():
    cmd = os.environ.get("SLUICE_NODE", "node")
    path = shutil.which(cmd)
    if path is None:
        pytest.fail("no node: ./dev.sh test installs nodejs and npm (or set SLUICE_NODE)")
    missing = [p for p in PACKAGES if not (CLIENTS / "node_modules" / p / "package.json").is_file()]
    if missing:
        pytest.fail("spec/clients has no %s: run npm ci --prefix spec/clients" % ", ".join(missing))
    return path


@pytest.fixture
def llm_factory():
    made = []

    def make(kind, name="llm"):
        m = MockLLM(kind, name=name)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()
    for m in made:
        assert m.errors == [], m.errors


def tap_summary(out):
    """node's closing "# <name> <count>" lines, as a dict."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^# (\w+) (\d+)$", out, re.M)}


def run_node(node, test_file, env, tests, todo=()):
    """Runs one spec/clients test file and checks that all its tests ran and
    passed, except the named todo tests, which must still fail: node counts a
    todo the same whether it passes or not, and one that passes has become a
    plain test."""
    proc = subprocess.run([node, "--test", "--test-reporter=tap", test_file], cwd=CLIENTS,
                          env=dict(os.environ, **env), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(120))
    report = "node exited with %d\n--- stdout\n%s\n--- stderr\n%s" % (proc.returncode, proc.stdout[-20000:],
                                                                      proc.stderr[-5000:])
    assert proc.returncode == 0, report
    got = tap_summary(proc.stdout)
    want = {"tests": tests, "pass": tests - len(todo), "fail": 0, "cancelled": 0, "skipped": 0, "todo": len(todo)}
    assert {k: got.get(k) for k in want} == want, report
    todo_results = re.findall(r"^(ok|not ok) \d+ - (.*?) # TODO", proc.stdout, re.M)
    assert sorted(todo_results) == sorted(("not ok", name) for name in todo), (
        "a todo test passes now: drop its todo mark (and here)\n" + report)


# ---- the openai SDK against sluice --------------------------------------------------------------

def target(llm, model):
    return {"provider": llm.kind, "model": model, "base_url": llm.url, "api_key": mock_llm.DEFAULT_KEYS[llm.kind]}


@pytest.fixture
def gateway(gateway_factory, llm_factory):
    """sluice with ai-proxy over the built-in mock and mock_llm servers;
    .mocks holds the servers by alias."""
    mocks = {"gpt": llm_factory("openai", "gpt"), "claude": llm_factory("anthropic", "claude"),
             "limited": llm_factory("openai", "limited"), "flaky": llm_factory("openai", "flaky")}
    mocks["limited"].set_status(429)
    models = {
        "demo": {"targets": [{"provider": "mock", "model": "mock-1"}]},
        "gpt": {"targets": [target(mocks["gpt"], "gpt-4o-mini")]},
        "claude": {"targets": [target(mocks["claude"], "claude-3-5-haiku-latest")]},
        "limited": {"targets": [target(mocks["limited"], "gpt-4o")]},
        "flaky": {"targets": [target(mocks["flaky"], "gpt-4o-mini")]},
        "embed": {"targets": [{"provider": "mock", "model": "mock-embed"}]},
        "gpt-embed": {"targets": [target(mocks["gpt"], "text-embedding-3-small")]},
    }
    assert tuple(models) == GATEWAY_ALIASES
    gw = gateway_factory({"routes": [{"name": "llm", "match": {"paths": ["/v1/*"]},
                                      "plugins": [{"ai-proxy": {"models": models}}]}]})
    gw.mocks = mocks
    return gw


def gateway_env(gw):
    return {"SLUICE_URL": gw.url}


def test_openai_sdk_chat_through_the_gateway(node, gateway):
    run_node(node, "gateway_chat.test.mjs", gateway_env(gateway), tests=8)
    gpt, claude = gateway.mocks["gpt"], gateway.mocks["claude"]
    assert gpt.count() == 3
    assert claude.count() == 2
    # The client that did not ask for the usage chunk: the gateway asked
    # upstream for it all the same (and took it out again).
    assert gpt.requests[2].json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}],
                                    "stream": True, "stream_options": {"include_usage": True}}


def test_openai_sdk_tool_calls_through_the_gateway(node, gateway):
    run_node(node, "gateway_tools.test.mjs", gateway_env(gateway), tests=5)
    gpt, claude = gateway.mocks["gpt"], gateway.mocks["claude"]
    assert gpt.count() == 4
    assert claude.count() == 3
    # The SDK sent back the assistant message it got, as the translator must
    # read it: the tool result reaches Anthropic as a tool_result block.
    assert claude.requests[1].json["messages"] == [
        {"role": "user", "content": "please call tool now"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "lookup",
                                           "input": {"q": "please call tool now"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "found it"}]}]


def test_openai_sdk_errors_through_the_gateway(node, gateway):
    gateway.mocks["flaky"].script({"drop": "after_content", "after_chunks": 2})
    run_node(node, "gateway_errors.test.mjs", gateway_env(gateway), tests=9)
    # One request per rate-limited call: neither the SDK (maxRetries 0) nor
    # the gateway (no retry-after, no other target) tried again.
    assert gateway.mocks["limited"].count() == 2
    assert gateway.mocks["flaky"].count() == 2
    assert gateway.mocks["gpt"].count() == 0


def test_openai_sdk_models_and_embeddings_through_the_gateway(node, gateway):
    run_node(node, "gateway_models.test.mjs", gateway_env(gateway), tests=5)
    gpt = gateway.mocks["gpt"]
    assert [q.json for q in gpt.requests] == [
        {"model": "text-embedding-3-small", "input": ["one two", "three"], "encoding_format": "base64"},
        {"model": "text-embedding-3-small", "input": "one two three", "dimensions": 4, "encoding_format": "float"}]


# ---- the SDKs against the mock providers, no gateway ------------------------------------------

def test_openai_sdk_against_the_openai_mock(node, llm_factory):
    oa = llm_factory("openai")
    limited = llm_factory("openai", "limited")
    limited.set_status(429)
    flaky = llm_factory("openai", "flaky")
    flaky.script({"mid_stream_error": True})
    run_node(node, "mock_openai.test.mjs", {
        "MOCK_OPENAI_URL": oa.url, "MOCK_OPENAI_KEY": mock_llm.DEFAULT_KEYS["openai"],
        "MOCK_OPENAI_LIMITED_URL": limited.url, "MOCK_OPENAI_FLAKY_URL": flaky.url}, tests=8)
    assert (limited.count(), flaky.count()) == (1, 1)
    # What the SDK sends is what the mock (and so every spec) expects.
    first = oa.requests[0]
    assert (first.method, first.path, first.header("Authorization")) == (
        "POST", "/v1/chat/completions", "Bearer " + mock_llm.DEFAULT_KEYS["openai"])


def test_anthropic_sdk_against_the_anthropic_mock(node, llm_factory):
    an = llm_factory("anthropic")
    limited = llm_factory("anthropic", "limited")
    limited.set_status(429)
    overloaded = llm_factory("anthropic", "overloaded")
    overloaded.set_status(529)
    flaky = llm_factory("anthropic", "flaky")
    flaky.script({"mid_stream_error": True})
    run_node(node, "mock_anthropic.test.mjs", {
        "MOCK_ANTHROPIC_URL": an.url, "MOCK_ANTHROPIC_KEY": mock_llm.DEFAULT_KEYS["anthropic"],
        "MOCK_ANTHROPIC_LIMITED_URL": limited.url, "MOCK_ANTHROPIC_OVERLOADED_URL": overloaded.url,
        "MOCK_ANTHROPIC_FLAKY_URL": flaky.url}, tests=8)
    assert (limited.count(), overloaded.count(), flaky.count()) == (1, 1, 1)
    first = an.requests[0]
    assert (first.method, first.path, first.header("x-api-key"), first.header("anthropic-version")) == (
        "POST", "/v1/messages", mock_llm.DEFAULT_KEYS["anthropic"], "2023-06-01")
