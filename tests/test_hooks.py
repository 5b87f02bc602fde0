"""One test per hook: what a plugin registers through it is what the hub and CLI then offer."""

from __future__ import annotations

import types

import click
from click.testing import CliRunner

from n2n_hub import BridgeSpec, DatasetSpec, ExpertSpec, Representation, hookimpl
from n2n_hub.plugins import PluginHost


def _host(**hooks) -> PluginHost:
    host = PluginHost()
    host._loaded = True
    assert host.register(types.SimpleNamespace(**{k: hookimpl(f) for k, f in hooks.items()}), "mine")
    return host


def test_hook_register_experts_adds_an_expert_owned_by_the_plugin():
    def register_experts(register):
        register(ExpertSpec(id="mine", version="2", loader="x.y:Z", input_domain="text",
                            representation=Representation((3,))))

    spec = _host(register_experts=register_experts).collect().experts["mine"]
    assert (spec.version, spec.plugin, spec.representation.shape) == ("2", "mine", (3,))


def test_hook_register_bridges_adds_a_bridge_the_planner_can_chain():
    def register_bridges(register):
        register(BridgeSpec(id="img-text", from_domain="image", to_domain="text", loader="x:y", cost=2.0))

    from n2n_hub.pairing import find_bridge_chain

    catalog = _host(register_bridges=register_bridges).collect()
    start, chain = find_bridge_chain(catalog, {"image": 0.0}, "text")
    assert start == "image" and [b.id for b in chain] == ["img-text"] and chain[0].plugin == "mine"


def test_hook_register_datasets_adds_a_dataset_with_its_domains():
    def register_datasets(register):
        register(DatasetSpec(id="pics", version="1", loader="x:y", domains=("image", "label"),
                             class_names=("a", "b")))

    ds = _host(register_datasets=register_datasets).collect().datasets["pics"]
    assert ds.domains == ("image", "label") and ds.class_names == ("a", "b") and ds.plugin == "mine"


def test_hook_register_commands_adds_a_working_cli_command(monkeypatch):
    def register_commands(cli):
        @cli.command(name="hello-mine")
        @click.argument("who")
        def hello(who):
            click.echo(f"hello {who}")

    import n2n_hub.cli
    import n2n_hub.plugins

    monkeypatch.setattr(n2n_hub.plugins, "_host", _host(register_commands=register_commands))
    n2n_hub.cli._register_plugin_commands()
    try:
        result = CliRunner().invoke(n2n_hub.cli.cli, ["hello-mine", "you"])
        assert result.exit_code == 0 and result.output == "hello you\n"
    finally:
        n2n_hub.cli.cli.commands.pop("hello-mine", None)
