"""The toy world the tests share: the toy plugin, its registry entries, and hubs over them.

Plain code (no fixtures); the fixtures built from them live in ``conftest.py``.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

TESTS = Path(__file__).resolve().parent
TOY_PLUGIN = TESTS / "toy_plugin"

# The toy pair as the registry trains it; ``trained_toy_home`` holds this translator.
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

TOY_TRANSFER_REGISTRY = """
[pairs.toy-domains]
source = "toydomain"
target = "toygen"
recipe = "domains"
dataset = "toyshapes"
[pairs.toy-domains.flow]
n_blocks = 4
hidden = 32
[pairs.toy-domains.training]
steps = 300
batch_size = 64
val_every = 100

[pairs.toy-deformation]
source = "toygen"
target = "toygen"
recipe = "deformation"
dataset = "toyshapes"
pairs_per_item = 2
[pairs.toy-deformation.flow]
n_blocks = 2
hidden = 32
[pairs.toy-deformation.training]
steps = 100
batch_size = 64
val_every = 50
"""


def import_toy_plugins() -> tuple[Any, Any]:
    """The toy plugin (from its source folder) and the built-in caption bridge, imported."""
    if str(TOY_PLUGIN) not in sys.path:
        sys.path.insert(0, str(TOY_PLUGIN))
    import n2n_captions
    import n2n_toy
    import n2n_toy.experts

    return n2n_toy, n2n_captions


def make_toy_host() -> Any:
    """A plugin host holding only the toy plugin and the caption bridge (no entry points)."""
    from n2n_hub.catalog.host import PluginHost

    n2n_toy, n2n_captions = import_toy_plugins()
    host = PluginHost()
    host._loaded = True
    assert host.register(n2n_toy, "toy")
    assert host.register(n2n_captions, "captions")
    return host


def plugin(**hooks: Callable[..., Any]) -> types.SimpleNamespace:
    """An in-process plugin made of the given hook functions."""
    from n2n_hub import hookimpl

    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def toy_domains_plugin() -> types.SimpleNamespace:
    """A set indicator over the toy shapes, served by the built-in domain expert's class."""
    from n2n_hub import ExpertSpec, Representation, Variant

    names = ("circle", "square", "triangle")

    def register_experts(register):
        register(ExpertSpec(id="toydomain", version="1", loader="n2n_domains.expert:DomainExpert",
                            input_domain="label", representation=Representation((), "int64", 3),
                            variants=(Variant("shapes", settings={"names": names}),), default_variant="shapes",
                            class_names=names))
    return plugin(register_experts=register_experts)


def hub_with_registry(host: Any, tmp_path: Path, monkeypatch: Any, body: str) -> Any:
    """A hub over ``host`` whose registry is ``body`` (also what the CLI sees), homed in ``tmp_path/home``."""
    from n2n_hub.hub import Hub

    reg = tmp_path / "registry.toml"
    reg.write_text(body)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    return Hub(home=tmp_path / "home", host=host, progress=False, log=lambda m: None)


def pip_target(dest: Path, *projects: Path) -> None:
    """``pip install`` the projects (no dependencies) into the folder ``dest``."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(dest), *map(str, projects)], check=True)
