"""The plugin contract has a version; a plugin that asks for another one, or misspells a hook, is told so."""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import n2n_hub
from n2n_hub import ExpertSpec, Representation, hookimpl
from n2n_hub.catalog.host import PluginHost, internal_imports

ROOT = Path(__file__).resolve().parent.parent


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(module, k, v)
    return module


@hookimpl
def register_experts(register):
    register(ExpertSpec(id="fine", version="1", loader="x:Y", input_domain="text", representation=Representation((2,))))


@hookimpl
def register_expert(register):  # misspelt on purpose
    raise AssertionError("an unknown hook is never called")


def _host() -> PluginHost:
    host = PluginHost()
    host._loaded = True
    return host


def test_the_hub_declares_its_plugin_api_version():
    major, minor = (int(x) for x in n2n_hub.PLUGIN_API_VERSION.split("."))
    assert major >= 1 and minor >= 0


def test_a_plugin_needing_another_api_version_is_refused_in_one_line_naming_both():
    host = _host()
    plugin = _module("future_plugin", N2N_HUB_PLUGIN_API=">=2.0", register_experts=register_experts)
    assert not host.register(plugin, "future")
    (problem,) = [p for p in host.load_problems if p.plugin == "future"]
    assert ">=2.0" in problem.reason and n2n_hub.PLUGIN_API_VERSION in problem.reason
    assert n2n_hub.__version__ in problem.reason and not problem.warning
    assert "fine" not in host.collect().experts


def test_a_plugin_whose_range_admits_this_hub_loads():
    host = _host()
    assert host.register(_module("ok_plugin", N2N_HUB_PLUGIN_API=">=1.0,<2", register_experts=register_experts), "ok")
    assert "fine" in host.collect().experts


def test_an_unknown_hook_is_a_warning_with_a_suggestion_and_the_other_hooks_load():
    host = _host()
    plugin = _module("typo_plugin", register_experts=register_experts, register_expert=register_expert)
    assert host.register(plugin, "typo")
    (problem,) = [p for p in host.load_problems if p.plugin == "typo"]
    assert problem.warning and "'register_expert'" in problem.reason and "did you mean 'register_experts'" in problem.reason
    assert "fine" in host.collect().experts  # the plugin's known hook still ran


def test_imports_of_internals_are_found_and_the_builtins_have_none(tmp_path):
    pkg = tmp_path / "leaky_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from n2n_hub import hookimpl\nfrom n2n_hub.kit import InputError\n")
    (pkg / "expert.py").write_text("import torch\nfrom n2n_hub.spec.expert import Expert\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import leaky_plugin

        assert internal_imports(leaky_plugin) == ["leaky_plugin/expert.py:2: n2n_hub.spec.expert"]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("leaky_plugin", None)
    import n2n_bert, n2n_vaegan

    assert internal_imports(n2n_bert) == [] and internal_imports(n2n_vaegan) == []


def test_the_package_version_is_one_number_everywhere():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert n2n_hub.__version__ == declared


def test_prior_samples_name_their_latents_like_translations_and_keep_the_old_name():
    import warnings

    import pytest
    import torch

    from n2n_hub import PriorSample

    z = torch.zeros(2, 3)
    sample = PriorSample(z, {"label": torch.tensor([0, 1])})
    assert sample.latents is z and sample.extras["label"].tolist() == [0, 1]
    with pytest.warns(DeprecationWarning, match="latents"):
        assert sample.z is z
    with pytest.warns(DeprecationWarning):
        assert PriorSample(z=z).latents is z
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PriorSample(latents=z)


def test_plugins_check_warns_about_internal_imports(toy_cli_host, tmp_path):
    from click.testing import CliRunner

    from n2n_hub.cli.commands import cli

    pkg = tmp_path / "leaky2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from n2n_hub import hookimpl\nfrom n2n_hub.catalog.registry import Registry\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import leaky2

        toy_cli_host.register(leaky2, "leaky2")
        out = CliRunner().invoke(cli, ["plugins", "--check"]).output
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("leaky2", None)
    assert "warning: imports an internal module (leaky2/__init__.py:2: n2n_hub.catalog.registry)" in out
    assert "warning" not in CliRunner().invoke(cli, ["plugins"]).output
