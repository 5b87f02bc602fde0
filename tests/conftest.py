"""Shared fixtures: every test gets its own cache and config folders, and toy plugins on demand."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from toy_util import TOY_PLUGIN, TOY_REGISTRY, import_toy_plugins, make_toy_host, pip_target

# The suite trains many tiny models; one thread is faster for them and keeps the suite's
# time steady when other processes compete for the cores. Set at import (for module-scoped
# fixtures) and again around every test, since CLI commands under test take --threads.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)

def isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Point the hub's home and the config folder under ``root``; unset what could reach the user's own files."""
    mp.setenv("N2N_HUB_HOME", str(root / "home"))
    mp.setenv("XDG_CONFIG_HOME", str(root / "config"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    for var in ("N2N_HUB_REGISTRY", "N2N_HUB_OFFLINE", "N2N_HUB_LOAD_PLUGINS", "XDG_CACHE_HOME", "N2N_HUB_DEBUG"):
        mp.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache, config or registry."""
    isolate(monkeypatch, tmp_path)
    import n2n_hub.catalog.host

    monkeypatch.setattr(n2n_hub.catalog.host, "_host", None)
    yield


@pytest.fixture
def toy_modules(monkeypatch):
    """The toy plugin and the caption bridge, with the toy experts' call counters at zero."""
    monkeypatch.syspath_prepend(str(TOY_PLUGIN))
    n2n_toy, n2n_captions = import_toy_plugins()
    for k in n2n_toy.experts.CALLS:
        n2n_toy.experts.CALLS[k] = 0
    return n2n_toy, n2n_captions


@pytest.fixture
def toy_host(toy_modules):
    """A plugin host holding only the toy plugin and the caption bridge (no entry points)."""
    return make_toy_host()


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


@pytest.fixture(scope="session")
def trained_toy_home(tmp_path_factory) -> Path:
    """A home holding the toy pair trained once per test run with ``TOY_REGISTRY``'s settings.

    Read-only: tests take a copy (``trained_home``), so what one test does to its home no other sees.
    A translator's key hashes experts, recipe and settings, not the home's path, so the copy is valid.
    """
    from n2n_hub.catalog.registry import Registry
    from n2n_hub.hub import Hub

    root = tmp_path_factory.mktemp("trained-toy")
    registry = root / "registry.toml"
    registry.write_text(TOY_REGISTRY)
    with pytest.MonkeyPatch.context() as mp:  # the isolation every test has, for the one that trains it
        isolate(mp, root)
        mp.syspath_prepend(str(TOY_PLUGIN))
        torch.set_num_threads(1)
        hub = Hub(home=root / "home", host=make_toy_host(), registry=Registry.load([registry]), progress=False,
                  log=lambda m: None)
        hub.pair("toytext", "toygen")
    return root / "home"


@pytest.fixture
def trained_home(trained_toy_home, tmp_path) -> Path:
    """This test's own copy of the trained toy home, where ``N2N_HUB_HOME`` points."""
    return Path(shutil.copytree(trained_toy_home, tmp_path / "home"))


@pytest.fixture
def trained_toy_hub(trained_home, toy_host, toy_registry_file):
    """``toy_hub`` with the registry's toy translator already in its cache (and its features)."""
    from n2n_hub.hub import Hub

    return Hub(home=trained_home, host=toy_host, progress=False, log=lambda m: None)


@pytest.fixture
def toy_cli_host(toy_host, monkeypatch):
    """Make the CLI's process-wide plugin host the toy one."""
    import n2n_hub.catalog.host

    monkeypatch.setattr(n2n_hub.catalog.host, "_host", toy_host)
    return toy_host


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


@pytest.fixture(scope="session")
def chromium(pytestconfig) -> str:
    """Debian's chromium for the browser test, installed with apt-get on first use where that is possible."""
    from browser_util import find_or_install_chromium

    def say(line: str) -> None:
        capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
        terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        with capture.global_and_fixture_disabled():
            terminal.write_line(line) if terminal is not None else print(line, flush=True)

    return find_or_install_chromium(say)


@pytest.fixture
def plugin_env(installed_plugins, tmp_path):
    """Environment for a subprocess that sees the installed toy and broken plugins."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(installed_plugins), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def blob_host(monkeypatch, tmp_path):
    """A host with the real segmenter plugin and the blobs plugin, also used by the CLI."""
    import n2n_segmenter
    from blob_plugin import blob_registry, install_blob_host

    return install_blob_host(monkeypatch, tmp_path, blob_registry(), segmenter=n2n_segmenter)


@pytest.fixture
def blob_hub(blob_host, tmp_path):
    """A hub over ``blob_host``, homed where ``N2N_HUB_HOME`` points."""
    from n2n_hub.hub import Hub

    return Hub(home=tmp_path / "home", host=blob_host, progress=False, log=lambda m: None)


@pytest.fixture
def plan_count(monkeypatch):
    """The (source, target) of every pair resolved: the expensive part of planning, which a request does once."""
    import n2n_hub.hub as hub_module

    calls: list[tuple] = []
    real = hub_module.resolve_pair

    def counting(*args, **kwargs):
        calls.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(hub_module, "resolve_pair", counting)
    return calls
