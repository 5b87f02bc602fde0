"""The browser test gets Debian's chromium on a fresh machine: found, installed with apt-get, or one line saying how."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from browser_util import find_or_install_chromium

FAKE_APT = """#!{python}
import sys
from pathlib import Path

here = Path(__file__).parent
with open(here / "apt-get.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if {fail!r} in sys.argv:
    print("E: Unable to locate package chromium", file=sys.stderr)
    sys.exit(100)
if "install" in sys.argv:
    browser = here / "chromium"
    browser.write_text("#!/bin/sh\\n")
    browser.chmod(0o755)
"""


@pytest.fixture
def bare_path(tmp_path, monkeypatch) -> Path:
    """A PATH holding one empty folder: no chromium, no apt-get."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def fake_apt(folder: Path, fail: str = "never") -> Path:
    """An apt-get that records its arguments and drops a chromium beside itself (or fails on the word ``fail``)."""
    apt = folder / "apt-get"
    apt.write_text(FAKE_APT.format(python=sys.executable, fail=fail))
    apt.chmod(0o755)
    return folder / "apt-get.log"


def test_chromium_on_path_is_used_as_it_is(bare_path):
    (bare_path / "chromium").write_text("#!/bin/sh\n")
    (bare_path / "chromium").chmod(0o755)
    log = fake_apt(bare_path)
    said: list[str] = []
    assert find_or_install_chromium(said.append) == str(bare_path / "chromium")
    assert said == [] and not log.exists()


def test_as_root_a_missing_chromium_is_installed_with_apt_get_saying_so_in_one_line(bare_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    log = fake_apt(bare_path)
    said: list[str] = []
    assert find_or_install_chromium(said.append) == str(bare_path / "chromium")
    assert len(said) == 1 and "installing Debian's chromium with apt-get" in said[0]
    calls = log.read_text().splitlines()
    assert [c.split()[-2:] for c in calls] == [["update", "-qq"], ["-qq", "chromium"]]
    assert "install -y" in calls[1] and all("DPkg::Lock::Timeout" in c for c in calls)


@pytest.mark.parametrize("root, apt, reason", [(False, True, "not root"), (True, False, "no apt-get here")])
def test_without_a_way_to_install_it_the_test_fails_in_one_line_saying_how(bare_path, monkeypatch, root, apt, reason):
    monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 1000)
    log = fake_apt(bare_path) if apt else bare_path / "apt-get.log"
    with pytest.raises(pytest.fail.Exception) as failed:
        find_or_install_chromium(lambda line: None)
    message = str(failed.value)
    assert "\n" not in message and reason in message and "apt-get install -y chromium" in message
    assert not log.exists() and not (bare_path / "chromium").exists()


def test_a_failing_apt_get_fails_the_test_with_its_last_line_and_the_way_to_install(bare_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake_apt(bare_path, fail="install")
    with pytest.raises(pytest.fail.Exception) as failed:
        find_or_install_chromium(lambda line: None)
    message = str(failed.value)
    assert "\n" not in message and "Unable to locate package chromium" in message
    assert "apt-get install -y chromium" in message
