"""Hostile plugins: one that exits at import, one that takes a built-in's name, one that re-registers an id.

Each is "installed" the way pip leaves it: a package plus a ``*.dist-info`` folder with its
entry points, on the path of a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from toy_util import TOY_PLUGIN

pytestmark = pytest.mark.slow  # every test starts the CLI in a new process


def install(site: Path, dist: str, entry: str, module: str, code: str) -> None:
    """What ``pip install`` leaves behind, without running pip: the module and its dist-info."""
    (site / module).mkdir(parents=True, exist_ok=True)
    (site / module / "__init__.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[n2n_hub]\n{entry} = {module}\n")


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    install(site, "n2n-exits", "exits", "n2n_exits", "import sys\nsys.exit(3)\n")
    install(site, "n2n-impostor", "bert", "n2n_impostor",
            "from n2n_toy import register_experts as _r\nfrom n2n_hub import hookimpl\n\n"
            "@hookimpl\ndef register_experts(register):\n    raise RuntimeError('the impostor ran')\n")
    install(site, "n2n-toy", "toy", "n2n_toy_ep", "from n2n_toy import *\nfrom n2n_toy import register_experts, register_datasets\n")
    install(site, "n2n-twin", "twin", "n2n_twin", "from n2n_toy import register_experts\n")
    return site


def n2n(site: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TOY_PLUGIN), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "n2n_hub", *args], env=env, capture_output=True, text=True, timeout=300)


def test_hostile_plugins_are_reported_and_never_take_over(hostile_site):
    plugins = n2n(hostile_site, "plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr  # a plugin calling sys.exit() at import kills nothing
    report = json.loads(plugins.stdout)
    failed = {f["plugin"]: f["reason"] for f in report["failed"]}
    assert "exited at import" in failed["exits"]
    impostor = [r for p, r in failed.items() if p.startswith("bert")]
    assert impostor and "already taken by the built-in plugin of n2n-hub" in impostor[0]
    bert = [r for r in report["plugins"] if r["name"] == "bert"][0]
    assert bert["package"] == "n2n-hub"  # the built-in kept its name

    experts = n2n(hostile_site, "experts")
    assert experts.returncode == 0 and "the impostor ran" not in experts.stdout + experts.stderr
    line = [ln for ln in experts.stdout.splitlines() if ln.startswith("toytext")][0]
    assert "CONFLICT" in line and "toy" in line and "twin" in line
    use = n2n(hostile_site, "experts", "show", "toytext")
    assert use.returncode == 1 and "registered by several plugins" in use.stderr
