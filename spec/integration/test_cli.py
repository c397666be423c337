"""The command line: version, check, and refusing to start on a bad config."""

import os
import re
import socket
import subprocess
import textwrap

import pytest

import gateway as gateway_mod
import raw
from ports import free_port
from scale import scaled

SANITIZER_MARKERS = gateway_mod.SANITIZER_MARKERS


def run(sluice_bin, *args, env=None, timeout=20):
    proc = subprocess.run([sluice_bin, *args], capture_output=True, text=True, timeout=scaled(timeout),
                          env=env, stdin=subprocess.DEVNULL)
    for marker in SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    return proc


def write(tmp_path, text, name="conf.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_lines(stderr, path):
    return [l for l in stderr.splitlines() if l.startswith(path + ":")]


def project_version():
    text = (gateway_mod.repo_root() / "CMakeLists.txt").read_text()
    return re.search(r"project\(sluice\s+VERSION\s+([0-9]+\.[0-9]+\.[0-9]+)", text).group(1)


def test_version(sluice_bin):
    proc = run(sluice_bin, "version")
    assert proc.returncode == 0
    assert proc.stdout == "sluice %s\n" % project_version()


def test_check_ok_does_not_bind(sluice_bin, tmp_path):
    # check validates only: it must succeed while the listen port is taken.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    path = write(tmp_path, """\
        listen: 127.0.0.1:%d
        workers: 1
        upstreams:
          backend:
            targets: [http://127.0.0.1:19001, {url: http://127.0.0.1:19002, weight: 2}]
            timeouts: {connect: 1s, read: 5s}
        routes:
          - name: api
            match: {paths: ["/api/*", "~ ^/u/[0-9]+$"], methods: [GET, POST]}
            upstream: backend
          - name: inline
            upstream: http://127.0.0.1:19003
        """ % port)
    try:
        proc = run(sluice_bin, "check", "-c", path)
    finally:
        holder.close()
    assert (proc.returncode, proc.stdout) == (0, "%s: ok\n" % path)


def test_check_substitutes_environment(sluice_bin, tmp_path):
    path = write(tmp_path, """\
        listen: 127.0.0.1:${SLUICE_SPEC_PORT}
        routes:
          - name: api
            upstream: http://127.0.0.1:${SLUICE_SPEC_UP_PORT:-19001}
        """)
    env = dict(os.environ, SLUICE_SPEC_PORT="18099")
    env.pop("SLUICE_SPEC_UP_PORT", None)
    proc = run(sluice_bin, "check", "-c", path, env=env)
    assert (proc.returncode, proc.stdout) == (0, "%s: ok\n" % path)


def test_check_unset_environment_variable(sluice_bin, tmp_path):
    path = write(tmp_path, """\
        listen: 127.0.0.1:${SLUICE_SPEC_UNSET_VAR}
        routes:
          - name: api
            upstream: http://127.0.0.1:19001
        """)
    env = dict(os.environ)
    env.pop("SLUICE_SPEC_UNSET_VAR", None)
    proc = run(sluice_bin, "check", "-c", path, env=env)
    assert proc.returncode == 1
    assert error_lines(proc.stderr, path) == [
        "%s:1: listen: environment variable SLUICE_SPEC_UNSET_VAR is not set" % path]


# Each case: the file, then (line, key path, a stable part of the message).
# The loader's exact wording is its own unit test's business; here the file,
# line and key path must be exact.
ERROR_CASES = {
    "unknown_key": ("""\
        listen: 127.0.0.1:18080
        routes:
          - name: api
            upstream: http://127.0.0.1:19001
            timeout: 5s
        """, 5, "routes[0].timeout", "unknown key"),
    "unknown_top_level_key": ("""\
        listen: 127.0.0.1:18080
        bogus: 1
        routes:
          - name: api
            upstream: http://127.0.0.1:19001
        """, 2, "bogus", "unknown key"),
    "bad_duration": ("""\
        listen: 127.0.0.1:18080
        upstreams:
          backend:
            targets: [http://127.0.0.1:19001]
            timeouts: {connect: 1s, read: fast}
        routes:
          - name: api
            upstream: backend
        """, 5, "upstreams.backend.timeouts.read", "duration"),
    "missing_upstream": ("""\
        listen: 127.0.0.1:18080
        upstreams:
          backend:
            targets: [http://127.0.0.1:19001]
        routes:
          - name: api
            upstream: nosuch
        """, 7, "routes[0].upstream", "nosuch"),
    "bad_regex": ("""\
        listen: 127.0.0.1:18080
        routes:
          - name: api
            match:
              paths: ["~ ^/u/[0-9+$"]
            upstream: http://127.0.0.1:19001
        """, 5, "routes[0].match.paths[0]", "regex does not compile"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_check_reports_error(sluice_bin, tmp_path, case):
    text, line, key, fragment = ERROR_CASES[case]
    path = write(tmp_path, text)
    proc = run(sluice_bin, "check", "-c", path)
    assert proc.returncode == 1
    lines = error_lines(proc.stderr, path)
    prefix = "%s:%d: %s: " % (path, line, key)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(prefix), proc.stderr
    assert fragment.lower() in lines[0][len(prefix):].lower(), proc.stderr
    assert "ok" not in proc.stdout


def test_check_reports_all_errors_at_once(sluice_bin, tmp_path):
    path = write(tmp_path, """\
        listen: 127.0.0.1:18080
        upstreams:
          backend:
            targets: [http://127.0.0.1:19001]
            timeouts: {read: fast}
        routes:
          - name: api
            match:
              paths: ["~ ^/u/[0-9+$"]
            upstream: nosuch
            timeout: 5s
        """)
    proc = run(sluice_bin, "check", "-c", path)
    assert proc.returncode == 1
    lines = sorted(error_lines(proc.stderr, path), key=lambda l: int(l.split(":")[1]))
    expected = [(5, "upstreams.backend.timeouts.read"), (9, "routes[0].match.paths[0]"),
                (10, "routes[0].upstream"), (11, "routes[0].timeout")]
    assert [l[len(path) + 1:].split(": ")[0:2] for l in lines] == [[str(n), k] for n, k in expected], proc.stderr


def test_check_yaml_syntax_error(sluice_bin, tmp_path):
    path = write(tmp_path, """\
        listen: 127.0.0.1:18080
        routes:
          - name: api
            upstream: http: x
        """)
    proc = run(sluice_bin, "check", "-c", path)
    assert proc.returncode == 1
    lines = error_lines(proc.stderr, path)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("%s:4: " % path), proc.stderr
    assert "mapping values are not allowed" in lines[0], proc.stderr


def test_check_missing_file(sluice_bin, tmp_path):
    path = str(tmp_path / "absent.yaml")
    proc = run(sluice_bin, "check", "-c", path)
    assert proc.returncode == 1
    assert error_lines(proc.stderr, path) == ["%s: cannot read: No such file or directory" % path]


def test_start_with_invalid_config_exits_1_and_serves_nothing(sluice_bin, tmp_path):
    port = free_port()
    path = write(tmp_path, """\
        listen: 127.0.0.1:%d
        routes:
          - name: api
            upstream: nosuch
        """ % port)
    proc = subprocess.Popen([sluice_bin, "-c", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("sluice kept running with an invalid config")
    assert proc.returncode == 1
    assert "sluice: ready" not in err
    assert error_lines(err, path)[0].startswith("%s:4: routes[0].upstream: " % path), err
    assert raw.expect_refused(port) is True
    for marker in SANITIZER_MARKERS:
        assert marker not in err


def test_unknown_command_fails(sluice_bin):
    proc = run(sluice_bin, "frobnicate")
    assert proc.returncode != 0
    assert proc.stdout == ""
