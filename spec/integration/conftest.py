"""Fixtures shared by the black-box specs.

Environment (set by ctest, see spec/CMakeLists.txt):
  SLUICE_BIN        the binary under test (default: $SLUICE_BUILD_DIR/sluice, then build/sluice)
  SLUICE_SANITIZED  1 for an ASan/UBSan binary: waits scale up, sanitizer reports fail the test
  SLUICE_VALGRIND   1 to run only @pytest.mark.valgrind specs, each gateway under valgrind
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))

import gateway as gateway_mod  # noqa: E402
import mock_upstream  # noqa: E402
import tls  # noqa: E402
from scale import under_valgrind  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not under_valgrind():
        return
    keep = [i for i in items if i.get_closest_marker("valgrind")]
    dropped = [i for i in items if not i.get_closest_marker("valgrind")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def sluice_bin():
    path = gateway_mod.sluice_bin()
    if os.environ.get("SLUICE_BIN"):
        if not os.access(path, os.X_OK):
            pytest.fail("SLUICE_BIN=%s is not an executable file" % path)
        return path
    if path is None:
        pytest.skip("no sluice binary built (set SLUICE_BIN)")
    return path


@pytest.fixture
def gateway_factory(sluice_bin, tmp_path):
    """make(config, **kw) -> a started Gateway; every one is stopped and
    checked (crash, exit code, sanitizer/valgrind reports) at teardown."""
    made = []

    def make(config, **kw):
        gw = gateway_mod.Gateway(config, tmp_path, binary=sluice_bin, **kw)
        made.append(gw)
        return gw

    yield make
    problems = []
    for gw in made:
        problems += gw.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def upstream_factory():
    """make(name, **kw) -> a running MockUpstream, stopped at teardown."""
    made = []

    def make(name="up", **kw):
        m = mock_upstream.MockUpstream(name, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


@pytest.fixture
def upstream(upstream_factory):
    return upstream_factory("up")


@pytest.fixture
def certs(tmp_path):
    """A CA and a server certificate for upstream.test, localhost and 127.0.0.1."""
    return tls.make_certs(tmp_path / "certs")
