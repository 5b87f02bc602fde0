"""`-m "not slow"` leaves out every test that starts a process, a server on a port, pip or a browser."""

from __future__ import annotations

import inspect
import re

import pytest

# What makes a test slow, as it reads in the test or in a fixture it uses.
SLOW_CODE = re.compile(r"\bsubprocess\.(?:run|Popen|call|check_call|check_output)\(|\btorchrun\(|\brunning\("
                       r"|\bpip_target\(|\bserve_forever\b|\bsync_playwright\(")


def starts_something(item: pytest.Item) -> str | None:
    """The first test or fixture function of ``item`` whose code starts a process, a server, pip or a browser."""
    functions = [("the test", getattr(item, "function", None))]
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        functions += [(f"fixture {name!r}", d.func) for d in defs]
    for where, fn in functions:
        try:
            source = inspect.getsource(fn) if fn is not None else ""
        except (OSError, TypeError):
            continue
        if SLOW_CODE.search(source):
            return where
    return None


def test_the_pattern_sees_what_starts_processes_and_servers():
    assert SLOW_CODE.search('subprocess.run([sys.executable, "-m", "n2n_hub"])')
    assert SLOW_CODE.search('with running(app) as url:') and SLOW_CODE.search('pip_target(site, src)')
    assert not SLOW_CODE.search('monkeypatch.setattr("subprocess.call", fake)')  # a stand-in starts nothing


def test_every_collected_test_that_starts_a_process_server_pip_or_browser_is_marked_slow(request):
    others = [item for item in request.session.items if item.module is not request.module]  # not these examples
    unmarked = [f"{item.nodeid} ({where})" for item in others
                if item.get_closest_marker("slow") is None and (where := starts_something(item))]
    assert not unmarked, "mark these @pytest.mark.slow: " + ", ".join(unmarked)
