"""The `redis:` section: `sluice check` and start-up say clearly when Redis is
configured but unreachable (without failing: each policy's on_redis_error
decides), and the password never shows in what sluice prints."""

import subprocess
import textwrap

from configs import proxy
from ports import free_port
from redis import RedisServer
from scale import scaled


def check(sluice_bin, tmp_path, url):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        redis: {url: "%s", connect_timeout: 300ms, command_timeout: 300ms}
        routes:
          - {name: r, upstream: "http://127.0.0.1:9"}
        """ % url))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


def test_check_is_quiet_when_redis_answers(sluice_bin, tmp_path):
    with RedisServer(tmp_path) as redis:
        proc, path = check(sluice_bin, tmp_path, redis.url)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")


def test_check_warns_when_redis_is_unreachable(sluice_bin, tmp_path):
    port = free_port()
    proc, path = check(sluice_bin, tmp_path, "redis://127.0.0.1:%d/0" % port)
    assert proc.returncode == 0
    assert proc.stdout == "%s: ok\n" % path
    assert proc.stderr == (
        "warning: redis 127.0.0.1:%d is configured but unreachable (cannot connect: Connection "
        "refused); policies will follow their on_redis_error setting\n" % port)


def test_check_reports_a_wrong_password_without_printing_it(sluice_bin, tmp_path):
    with RedisServer(tmp_path) as redis:
        redis.command("CONFIG", "SET", "requirepass", "right-pass")
        proc, _ = check(sluice_bin, tmp_path, "redis://:wrong-pass-xyz@127.0.0.1:%d/0" % redis.port)
    assert proc.returncode == 0
    assert proc.stderr.startswith("warning: redis 127.0.0.1:%d is configured but unreachable (AUTH: "
                                  % redis.port)
    assert "wrong-pass-xyz" not in proc.stderr + proc.stdout


def test_start_up_with_redis_down_serves_and_says_so(gateway_factory, upstream):
    port = free_port()
    cfg = proxy(upstream, redis={"url": "redis://:secret-pw-123@127.0.0.1:%d" % port,
                                 "connect_timeout": "200ms"})
    gw = gateway_factory(cfg)
    assert gw.get("/echo").status == 200
    log = gw.stderr()
    assert ("redis 127.0.0.1:%d is configured but unreachable (cannot connect: Connection refused)"
            % port) in log
    assert "secret-pw-123" not in log
