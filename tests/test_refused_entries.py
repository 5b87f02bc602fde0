"""A plugin's refused pair entry is loud: planning names it instead of falling back to another recipe."""

from __future__ import annotations

import pytest

from n2n_hub import hookimpl
from n2n_hub.errors import IncompatiblePairError
from n2n_hub.hub import Hub


class _Plugin:
    def __init__(self, **hooks):
        for name, fn in hooks.items():
            setattr(self, name, hookimpl(fn))


@pytest.mark.parametrize("entry, reason", [
    ({"source": "toytext", "target": "toygen", "recipe": "dataset", "dataset": "toyshapes", "stpes": 3},
     "unknown key"),
    ({"source": "toytext", "target": "toygen", "recipe": "telepathy"}, "recipe 'telepathy' is not registered"),
])
def test_a_refused_plugin_entry_is_named_when_its_pair_is_planned(toy_host, tmp_path, monkeypatch, entry, reason):
    def register_pairs(register):
        register("mine", entry)

    toy_host.register(_Plugin(register_pairs=register_pairs), "typoplugin")
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(tmp_path / "empty.toml"))
    (tmp_path / "empty.toml").write_text("")
    hub = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)
    refused = [r for r in hub.catalog.refused_pairs if r.name == "mine"]
    assert [(r.plugin, r.source, r.target) for r in refused] == [("typoplugin", "toytext", "toygen")]
    assert reason in refused[0].reason
    with pytest.raises(IncompatiblePairError, match=r"plugin 'typoplugin' registers \[pairs.mine\].*refused") as err:
        hub.plan("toytext", "toygen")
    assert reason in str(err.value) and len(str(err.value).splitlines()) == 1
    # --data is an explicit choice of another recipe: it still plans
    data = tmp_path / "items.txt"
    data.write_text("a circle\na square\n")
    with pytest.raises(IncompatiblePairError, match="--data holds 'text'"):
        hub.plan("toytext", "toygen", data=data)  # refused for its own reason, not the entry's


def test_pairs_lists_refused_entries_and_missing_registry_files(toy_cli_host, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from n2n_hub.cli.commands import cli

    def register_pairs(register):
        register("mine", {"source": "toytext", "target": "toygen", "recipe": "telepathy"})

    toy_cli_host.register(_Plugin(register_pairs=register_pairs), "typoplugin")
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(tmp_path / "deleted.toml"))
    result = CliRunner().invoke(cli, ["pairs"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("mine") and "REFUSED (plugin typoplugin)" in line and "telepathy" in line
               for line in result.output.splitlines())
    assert "deleted.toml" in result.output and "does not exist" in result.output
    rows = json.loads(CliRunner().invoke(cli, ["pairs", "--json"]).output)
    assert [r["plugin"] for r in rows if r.get("refused")] == ["typoplugin"]


def test_a_plugin_entry_that_would_replace_a_builtin_is_marked_in_pairs_and_plugins(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import n2n_hub.catalog.host as host_module
    from n2n_hub.catalog.host import PluginHost
    from n2n_hub.cli.commands import cli

    def register_pairs(register):
        register("bert-vaegan-animals", {"source": "bert", "target": "vaegan@animals", "recipe": "target-prior"})

    host = PluginHost()
    host.load_entry_points()
    host.register(_Plugin(register_pairs=register_pairs), "sneaky")
    monkeypatch.setattr(host_module, "_host", host)
    pairs = CliRunner().invoke(cli, ["pairs"]).output
    assert "bert-vaegan-animals" in pairs and "REFUSED (plugin sneaky)" in pairs
    assert "recipe=dataset" in pairs  # the built-in entry stands
    plugins = CliRunner().invoke(cli, ["plugins"]).output
    assert "conflict: [pairs.bert-vaegan-animals] refused" in plugins
