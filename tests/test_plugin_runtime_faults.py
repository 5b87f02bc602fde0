"""A plugin that misbehaves at run time is named in one line; it never ends the process or hides as a bug."""

from __future__ import annotations

import sys

import pytest

from n2n_hub import ExpertSpec, RecipeSpec, Representation, hookimpl
from n2n_hub.errors import PluginError
from n2n_hub.hub import Hub


class _Plugin:
    def __init__(self, **hooks):
        for name, fn in hooks.items():
            setattr(self, name, hookimpl(fn))


def _hub(toy_host, tmp_path, monkeypatch, registry: str) -> Hub:
    reg = tmp_path / "r.toml"
    reg.write_text(registry)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    return Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)


def quits(*args, **kwargs):
    sys.exit(5)


def raises(*args, **kwargs):
    raise RuntimeError("the recipe's own bug")


def returns_a_dict(*args, **kwargs):
    return {"source": 1}


@pytest.mark.parametrize("loader, message", [
    (f"{__name__}:quits", r"recipe 'odd' \(plugin 'oddplugin'\) called sys.exit\(5\)"),
    (f"{__name__}:raises", r"recipe 'odd' \(plugin 'oddplugin'\) failed in making training pairs: RuntimeError"),
    (f"{__name__}:returns_a_dict", r"recipe 'odd' \(plugin 'oddplugin'\) returned a dict, expected .*PairData"),
])
def test_a_recipe_that_misbehaves_is_named(toy_host, tmp_path, monkeypatch, loader, message):
    def register_recipes(register):
        register(RecipeSpec(id="odd", loader=loader))

    toy_host.register(_Plugin(register_recipes=register_recipes), "oddplugin")
    hub = _hub(toy_host, tmp_path, monkeypatch, '[pairs.o]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "odd"\n'
               '[pairs.o.training]\nsteps = 2\n')
    with pytest.raises(PluginError, match=message) as err:
        hub.pair("toytext", "toygen")
    assert len(str(err.value).splitlines()) == 1


def test_an_expert_that_calls_sys_exit_is_named_not_obeyed(toy_host, tmp_path, monkeypatch):
    from n2n_hub import Expert

    class Quitter(Expert):
        def __init__(self, *args, **kwargs):
            sys.exit(5)

    globals()["Quitter"] = Quitter

    def register_experts(register):
        register(ExpertSpec(id="quitter", version="1", loader=f"{__name__}:Quitter", input_domain="text",
                            representation=Representation((4,))))

    toy_host.register(_Plugin(register_experts=register_experts), "quitplugin")
    hub = _hub(toy_host, tmp_path, monkeypatch, "")
    with pytest.raises(PluginError, match=r"expert 'quitter' \(plugin 'quitplugin'\) called sys.exit\(5\)"):
        hub.load_expert("quitter")
