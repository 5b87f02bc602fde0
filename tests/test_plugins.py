"""Plugins load through entry points; a broken or invalid plugin is reported and skipped."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from n2n_hub import ExpertSpec, Representation, hookimpl
from n2n_hub.errors import PluginError
from n2n_hub.hub import Hub
from n2n_hub.catalog.host import PluginHost


def _plugin(**hooks):
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def _spec(id_="fake", **kw):
    base = dict(id=id_, version="1", loader="n2n_toy.experts:ToyText", input_domain="text",
                representation=Representation((8,)))
    base.update(kw)
    return ExpertSpec(**base)


def test_builtin_experts_register_through_entry_points():
    host = PluginHost()
    host.load_entry_points()
    catalog = host.collect()
    assert {"bert", "vaegan"} <= set(catalog.experts)
    assert catalog.experts["bert"].plugin == "bert"
    assert host.distributions["bert"][0] == "n2n-hub"


def test_misspelt_hook_is_named_and_skipped():
    host = PluginHost()
    bad = _plugin(register_expert=lambda register: None)  # missing "s"
    assert host.register(bad, "typo")
    assert "register_expert" in host.load_problems[0].reason and host.load_problems[0].warning
    assert host.plugin_names() == ["typo"]


def test_invalid_spec_is_reported_and_the_rest_of_the_plugin_still_registers():
    host = PluginHost()

    def register_experts(register):
        register(_spec("Bad Id"))
        register(_spec("good"))

    host.register(_plugin(register_experts=register_experts), "mixed")
    catalog = host.collect()
    assert list(catalog.experts) == ["good"]
    assert any("Bad Id" in p.reason and p.plugin == "mixed" for p in catalog.problems)


def test_hook_that_raises_is_reported_not_fatal(toy_host):
    def register_experts(register):
        raise RuntimeError("boom")

    toy_host.register(_plugin(register_experts=register_experts), "crashy")
    catalog = toy_host.collect()
    assert "toytext" in catalog.experts
    assert any(p.plugin == "crashy" and "boom" in p.reason for p in catalog.problems)


def test_two_plugins_claiming_one_id_is_an_error_naming_both(toy_host, tmp_path):
    toy_host.register(_plugin(register_experts=lambda register: register(_spec("toytext"))), "impostor")
    hub = Hub(home=tmp_path, host=toy_host, progress=False)
    with pytest.raises(PluginError, match="toy.*impostor"):
        hub.plan("toytext", "toygen")


def test_registering_the_wrong_type_is_reported():
    host = PluginHost()
    host.register(_plugin(register_experts=lambda register: register({"id": "x"})), "sloppy")
    catalog = host.collect()
    assert not catalog.experts
    assert "ExpertSpec" in catalog.problems[0].reason


def test_load_plugins_env_restricts_which_entry_points_load(monkeypatch):
    monkeypatch.setenv("N2N_HUB_LOAD_PLUGINS", "")
    host = PluginHost()
    host.load_entry_points()
    assert host.plugin_names() == []
    monkeypatch.setenv("N2N_HUB_LOAD_PLUGINS", "captions")
    host = PluginHost()
    host.load_entry_points()
    assert host.plugin_names() == ["captions"]


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "n2n_hub", *args], env=env, capture_output=True, text=True, timeout=120)


def test_third_party_plugin_installed_with_pip_is_discovered(plugin_env):
    out = _cli(plugin_env, "experts", "--json")
    assert out.returncode == 0, out.stderr
    ids = {e["id"]: e for e in json.loads(out.stdout)}
    assert ids["toytext"]["plugin"] == "toy"
    plugins = json.loads(_cli(plugin_env, "plugins", "--json").stdout)
    toy = next(p for p in plugins["plugins"] if p["name"] == "toy")
    assert (toy["package"], toy["version"]) == ("n2n-toy", "0.3.0")
    assert toy["hooks"] == ["register_datasets", "register_experts"]


def test_broken_plugin_does_not_break_the_cli(plugin_env):
    help_ = _cli(plugin_env, "--help")
    assert help_.returncode == 0 and "translate" in help_.stdout
    out = _cli(plugin_env, "plugins")
    assert out.returncode == 0
    assert "broken" in out.stdout and "FAILED" in out.stdout and "broken on purpose" in out.stdout
    assert "toytext" in _cli(plugin_env, "experts").stdout


def test_third_party_pair_trains_through_the_entry_point_path(plugin_env, tmp_path):
    reg = tmp_path / "reg.toml"
    from conftest import TOY_REGISTRY

    reg.write_text(TOY_REGISTRY)
    env = {**plugin_env, "N2N_HUB_REGISTRY": str(reg), "N2N_HUB_HOME": str(tmp_path / "home")}
    out = _cli(env, "pair", "toytext", "toygen", "--steps", "30")
    assert out.returncode == 0, out.stderr
    assert "cinn translator at" in out.stdout
