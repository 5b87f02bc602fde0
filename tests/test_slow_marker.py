"""`-m "not slow"` leaves out every test that starts a process, a server on a port, pip or a browser.

(Tests that compute for over a second are marked too; that is measured, not read from the code.)
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable

import pytest

# What makes a test slow, as it reads in the test or in a fixture it uses.
SLOW_CODE = re.compile(r"\bsubprocess\.(?:run|Popen|call|check_call|check_output)\(|\btorchrun\(|\bos\.fork\("
                       r"|\brunning\(|\bpip_target\(|\bserve_forever\b|\bsync_playwright\(")


@functools.cache
def _starts_something(fn: Callable[..., Any]) -> bool:
    try:
        return bool(SLOW_CODE.search(inspect.getsource(fn)))
    except (OSError, TypeError):
        return False


def starts_something(item: pytest.Item) -> str | None:
    """The first test or fixture function of ``item`` whose code starts a process, a server, pip or a browser."""
    functions = [("the test", getattr(item, "function", None))]
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        functions += [(f"fixture {name!r}", d.func) for d in defs]
    return next((where for where, fn in functions if fn is not None and _starts_something(fn)), None)


def test_the_pattern_sees_what_starts_processes_and_servers():
    assert SLOW_CODE.search('subprocess.run([sys.executable, "-m", "n2n_hub"])')
    assert SLOW_CODE.search('with running(app) as url:') and SLOW_CODE.search('pip_target(site, src)')
    assert not SLOW_CODE.search('monkeypatch.setattr("subprocess.call", fake)')  # a stand-in starts nothing


def test_every_collected_test_that_starts_a_process_server_pip_or_browser_is_marked_slow(request):
    others = [item for item in request.session.items if item.module is not request.module]  # not these examples
    unmarked = [f"{item.nodeid} ({where})" for item in others
                if item.get_closest_marker("slow") is None and (where := starts_something(item))]
    assert not unmarked, "mark these @pytest.mark.slow: " + ", ".join(unmarked)
