"""Shared fixtures: every test gets its own cache and config folders, and toy plugins on demand."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

# The suite trains many tiny models; one thread is faster for them and keeps the suite's
# time steady when other processes compete for the cores. Set at import (for module-scoped
# fixtures) and again around every test, since CLI commands under test take --threads.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)

TESTS = Path(__file__).resolve().parent
TOY_PLUGIN = TESTS / "toy_plugin"

TOY_REGISTRY = """
[pairs.toy-shapes]
source = "toytext"
target = "toygen"
recipe = "dataset"
dataset = "toyshapes"
source_from = "label"
bridges = ["label-caption"]
pairs_per_item = 2

[pairs.toy-shapes.flow]
n_blocks = 3
hidden = 32

[pairs.toy-shapes.training]
steps = 150
batch_size = 64
val_every = 50
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache, config or registry."""
    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("N2N_HUB_REGISTRY", "N2N_HUB_OFFLINE", "N2N_HUB_LOAD_PLUGINS", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    import n2n_hub.catalog.host

    monkeypatch.setattr(n2n_hub.catalog.host, "_host", None)
    yield


@pytest.fixture
def toy_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(TOY_PLUGIN))
    import n2n_toy
    import n2n_toy.experts

    import n2n_captions

    for k in n2n_toy.experts.CALLS:
        n2n_toy.experts.CALLS[k] = 0
    return n2n_toy, n2n_captions


@pytest.fixture
def toy_host(toy_modules):
    """A plugin host holding only the toy plugin and the caption bridge (no entry points)."""
    from n2n_hub.catalog.host import PluginHost

    n2n_toy, n2n_captions = toy_modules
    host = PluginHost()
    host._loaded = True
    assert host.register(n2n_toy, "toy")
    assert host.register(n2n_captions, "captions")
    return host


@pytest.fixture
def toy_registry_file(tmp_path, monkeypatch):
    path = tmp_path / "toy-registry.toml"
    path.write_text(TOY_REGISTRY)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(path))
    return path


@pytest.fixture
def toy_hub(toy_host, toy_registry_file, tmp_path):
    from n2n_hub.hub import Hub

    return Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)


@pytest.fixture
def toy_cli_host(toy_host, monkeypatch):
    """Make the CLI's process-wide plugin host the toy one."""
    import n2n_hub.catalog.host

    monkeypatch.setattr(n2n_hub.catalog.host, "_host", toy_host)
    return toy_host


def pip_target(dest: Path, *projects: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(dest), *map(str, projects)], check=True)


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory) -> Path:
    """The toy plugin and a deliberately broken one, pip-installed into a fresh folder.

    Putting the folder on PYTHONPATH makes their entry points visible to a new process,
    exactly as a ``pip install`` into the environment would.
    """
    root = tmp_path_factory.mktemp("plugins")
    broken = root / "src-broken"
    (broken / "n2n_broken").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "n2n-broken"
        version = "0.0.1"
        [project.entry-points.n2n_hub]
        broken = "n2n_broken"
        [tool.setuptools]
        packages = ["n2n_broken"]
    """))
    (broken / "n2n_broken" / "__init__.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    site = root / "site"
    pip_target(site, TOY_PLUGIN, broken)
    return site


@pytest.fixture
def plugin_env(installed_plugins, tmp_path):
    """Environment for a subprocess that sees the installed toy and broken plugins."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(installed_plugins), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
