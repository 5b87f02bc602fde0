"""One test per hook: what a plugin registers through it is what the hub and CLI then offer."""

from __future__ import annotations

import re
import types

import click
from click.testing import CliRunner

from n2n_hub import BridgeSpec, DatasetSpec, ExpertSpec, Representation, hookimpl
from n2n_hub.catalog.host import PluginHost


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

    from n2n_hub.catalog.planning import find_bridge_chain

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

    import n2n_hub.cli.commands
    import n2n_hub.catalog.host

    monkeypatch.setattr(n2n_hub.catalog.host, "_host", _host(register_commands=register_commands))
    n2n_hub.cli.commands._register_plugin_commands()
    try:
        result = CliRunner().invoke(n2n_hub.cli.commands.cli, ["hello-mine", "you"])
        assert result.exit_code == 0 and result.output == "hello you\n"
    finally:
        n2n_hub.cli.commands.cli.commands.pop("hello-mine", None)


LAZY_COMMANDS = """
import click


@click.command()
@click.option("--n", type=click.IntRange(1, 9), default=1)
def train(n):
    \"\"\"Train mine's weights, at length (this line is not what listings show).\"\"\"
    click.echo(f"trained mine {n}")


@click.command()
def hello():
    click.echo("hello from mine")

not_a_command = 3
"""


def test_hook_register_lazy_commands_lists_commands_and_imports_them_only_to_run(tmp_path, monkeypatch):
    import sys

    import n2n_hub.catalog.host
    from n2n_hub import CommandSpec
    from n2n_hub.cli.commands import cli

    (tmp_path / "mine_commands.py").write_text(LAZY_COMMANDS)
    monkeypatch.syspath_prepend(str(tmp_path))

    def register_lazy_commands(register):
        register(CommandSpec(name="mine", loader="mine_commands:train", help="Train mine's weights."))
        register(CommandSpec(name="hello-mine", loader="mine_commands:hello", help="Say hello.", group=""))
        register(CommandSpec(name="odd", loader="mine_commands:not_a_command", help="Not a command."))
        register(CommandSpec(name="gone", loader="mine_commands_uninstalled:train", help="Gone."))
        register(CommandSpec(name="Bad Name", loader="mine_commands:train"))

    host = _host(register_lazy_commands=register_lazy_commands)
    monkeypatch.setattr(n2n_hub.catalog.host, "_host", host)
    runner = CliRunner()
    try:
        listing = runner.invoke(cli, ["train-expert", "--help"]).output
        assert re.search(r"^  mine\s+Train mine's weights\.$", listing, re.M), listing
        assert re.search(r"^  hello-mine\s+Say hello\.$", runner.invoke(cli, ["--help"]).output, re.M)
        assert "mine_commands" not in sys.modules  # listed from its registration, not imported

        usage = runner.invoke(cli, ["train-expert", "mine", "--help"]).output
        assert "train-expert mine [OPTIONS]" in usage and "at length" in usage  # runs under its registered name
        ran = runner.invoke(cli, ["train-expert", "mine", "--n", "3"])
        assert ran.exit_code == 0 and ran.output == "trained mine 3\n"
        assert runner.invoke(cli, ["hello-mine"]).output == "hello from mine\n"

        odd = runner.invoke(cli, ["train-expert", "odd"])
        assert odd.exit_code == 1 and "plugin 'mine'" in odd.output and "not a click command" in odd.output
        gone = runner.invoke(cli, ["train-expert", "gone"])
        assert gone.exit_code == 1 and "`n2n-hub train-expert gone` cannot be loaded" in gone.output
        assert "Traceback" not in gone.output + odd.output
        problems = [p.reason for p in host.collect().problems]
        assert any("refused: command spec 'Bad Name'" in r for r in problems)
    finally:
        sys.modules.pop("mine_commands", None)


TOY_PAIR = {"source": "toytext", "target": "toygen", "recipe": "dataset", "dataset": "toyshapes",
            "source_from": "label", "bridges": ["label-caption"], "flow": {"n_blocks": 2, "hidden": 16},
            "training": {"steps": 40}}


def _pairs_plugin(entries):
    def register_pairs(register):
        for name, entry in entries.items():
            register(name, entry)

    return types.SimpleNamespace(register_pairs=hookimpl(register_pairs))


def test_hook_register_pairs_ships_an_entry_that_user_files_still_override(toy_host, tmp_path, monkeypatch):
    from n2n_hub.hub import Hub

    assert toy_host.register(_pairs_plugin({"toy-from-plugin": TOY_PAIR}), "shipper")
    hub = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)
    plan = hub.plan("toytext", "toygen")
    assert plan.entry.name == "toy-from-plugin" and plan.entry.origin == "plugin shipper"
    assert plan.flow == {"n_blocks": 2, "hidden": 16} and plan.dataset == "toyshapes"

    user = tmp_path / "mine.toml"
    user.write_text('[pairs.toy-from-plugin.training]\nsteps = 7\n')
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(user))
    entry = Hub(home=tmp_path / "home", host=toy_host, progress=False).plan("toytext", "toygen").entry
    assert entry.training == {"steps": 7} and entry.flow == {"n_blocks": 2, "hidden": 16}  # merged key by key
    assert entry.origin == str(user)


def test_register_pairs_refuses_an_invalid_entry_and_a_duplicate_name(toy_host):
    assert toy_host.register(_pairs_plugin({"ok": TOY_PAIR, "bad": {**TOY_PAIR, "recipe": "nope"}}), "one")
    assert toy_host.register(_pairs_plugin({"ok": TOY_PAIR}), "two")
    catalog = toy_host.collect()
    assert list(catalog.pairs) == ["ok"]
    reasons = [(p.plugin, p.reason) for p in catalog.problems]
    assert any(p == "one" and "[pairs.bad]" in r and "recipe 'nope'" in r for p, r in reasons)
    assert any("pair 'ok' is already registered by plugin" in r for _, r in reasons)


def test_pairs_command_says_where_each_entry_came_from(toy_cli_host, toy_registry_file):
    import json

    from n2n_hub.cli.commands import cli

    assert toy_cli_host.register(_pairs_plugin({"toy-plugin-pair": TOY_PAIR}), "shipper")
    result = CliRunner().invoke(cli, ["pairs"])
    assert result.exit_code == 0, result.output
    lines = {ln.split()[0]: ln for ln in result.output.splitlines() if ln and not ln.startswith(" ")}
    assert lines["toy-plugin-pair"].endswith("from: plugin shipper")
    assert lines["bert-vaegan-animals"].endswith("from: built-in")
    assert lines["toy-shapes"].endswith(f"from: user file {toy_registry_file}")
    data = {e["name"]: e["from"] for e in json.loads(CliRunner().invoke(cli, ["pairs", "--json"]).output)}
    assert data["toy-plugin-pair"] == "plugin shipper"


def test_hook_register_recipes_adds_a_recipe_registry_entries_can_name(tmp_path, monkeypatch):
    from n2n_hub import RecipeSpec
    from n2n_hub.hub import Hub

    def register_recipes(register):
        register(RecipeSpec(id="mine", loader="x:y", transfer="appearance", description="mine"))

    host = _host(register_recipes=register_recipes)
    spec = host.collect().recipes["mine"]
    assert (spec.plugin, spec.transfer) == ("mine", "appearance")
    hub = Hub(home=tmp_path, host=host, progress=False)
    assert hub.recipe("mine") is not None and hub.recipe("dataset").plugin == "n2n_hub.builtin"
