"""Debian's chromium for the browser test: found on PATH, or installed with apt-get where that is possible.

Playwright drives it by its executable path, since Playwright's own browser download needs the open
internet. The README's test command then passes on a fresh Debian machine with no browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Callable

import pytest

INSTALL_HINT = "install Debian's chromium (as root: apt-get update && apt-get install -y chromium) and rerun"


def find_or_install_chromium(say: Callable[[str], None]) -> str:
    """The path of ``chromium``; installs it with apt-get when it is missing and this is root, else fails the test."""
    found = shutil.which("chromium")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        why = "no apt-get here" if apt is None else "not root, so apt-get cannot install it"
        pytest.fail(f"the browser test needs chromium, which is not on PATH ({why}): {INSTALL_HINT}", pytrace=False)
    say("chromium is not on PATH: installing Debian's chromium with apt-get for the browser test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run holding the lock finishes first
    for args in (["update", "-qq"], ["install", "-y", "-qq", "chromium"]):
        done = subprocess.run([apt, *wait, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            pytest.fail(f"apt-get {args[0]} failed ({last}); {INSTALL_HINT}", pytrace=False)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"apt-get installed chromium but it is not on PATH; {INSTALL_HINT}", pytrace=False)
    return found
