"""The command line bounds OpenMP's spin-waiting before torch loads, unless the user chose a policy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from n2n_hub.cli.commands import SPIN_COUNT, bound_openmp_spinning


def test_the_spin_count_is_set_only_where_nothing_was_chosen():
    env: dict[str, str] = {}
    assert bound_openmp_spinning(env) and env == {"GOMP_SPINCOUNT": SPIN_COUNT}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        env = dict(chosen)
        assert not bound_openmp_spinning(env) and env == chosen


@pytest.mark.slow  # starts a Python process
def test_the_command_sets_it_before_torch_loads():
    code = ("import os, sys; from n2n_hub.cli import commands; "
            "commands.cli.main = lambda *a, **k: print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules); "
            "commands.main()")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [SPIN_COUNT, "False"]
