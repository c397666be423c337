"""Every config in examples/ stays valid, and the quickstart serves what the
README promises (the built-in mock LLM provider, no network)."""

import json
import subprocess

import pytest

from gateway import repo_root
from scale import scaled

EXAMPLES = sorted((repo_root() / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_is_valid(sluice_bin, certs, tmp_path, path):
    # run from the repo root: examples name plugin dirs relative to it
    proc = subprocess.run([sluice_bin, "check", "-c", str(path.relative_to(repo_root()))],
                          capture_output=True, text=True, cwd=str(repo_root()),
                          env={"SIGNING_SECRET": "example-secret-0123456789", "PATH": "/usr/bin:/bin",
                               "SLUICE_TLS_CERT": str(certs.cert), "SLUICE_TLS_KEY": str(certs.key),
                               "SLUICE_ACCESS_LOG": str(tmp_path / "access.log")},
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout) == (0, "%s: ok\n" % path.relative_to(repo_root())), proc.stderr


def test_quickstart_answers_with_the_mock_provider(gateway_factory):
    text = (repo_root() / "examples" / "quickstart.yaml").read_text()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:@PORT@").replace("access: stdout", "access: @DIR@/access.log")
    gw = gateway_factory(text)
    models = gw.get("/v1/models")
    assert models.status == 200
    assert json.loads(models.body) == {"object": "list", "data": [
        {"id": "demo", "object": "model", "created": 0, "owned_by": "sluice"}]}
    body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "Hello there"}]})
    r = gw.post("/v1/chat/completions", body.encode(), headers=[("Content-Type", "application/json")])
    assert r.status == 200
    reply = json.loads(r.body)
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "mock reply to: Hello there"}
    assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert r.header("X-Sluice-Provider") == "mock"
    assert r.header("RateLimit-Limit") == "20"
