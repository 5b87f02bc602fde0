"""The README's table of pair-entry keys is the registry's own schema, and the schema's defaults are the code's."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from n2n_hub.catalog import registry
from n2n_hub.catalog.schema import KEYS, keys_of, markdown_table
from n2n_hub.errors import RegistryError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_table_is_generated_from_the_schema():
    text = README.read_text()
    block = re.search(r"<!-- pair-keys:start -->\n(.*?)<!-- pair-keys:end -->", text, re.S)
    assert block is not None, "README lost its pair-keys block"
    assert block.group(1) == markdown_table(), "regenerate the README table from n2n_hub.catalog.schema"


def test_the_loader_accepts_exactly_the_schema_keys(tmp_path):
    for table in ("", "flow", "training", "published"):
        assert keys_of(table), table
    path = tmp_path / "r.toml"
    path.write_text('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\nnot_a_key = 1\n')
    try:
        registry.Registry.load([path])
    except RegistryError as e:
        assert "not_a_key" in str(e)
    else:
        raise AssertionError("an unknown key loaded")


def test_flow_defaults_are_the_modules_own():
    from n2n_hub.spec.kinds import get_kind, kind_names

    params = {}
    for kind in reversed(kind_names()):  # the cINN's defaults win where kinds share an option
        params.update(inspect.signature(get_kind(kind).cls.__init__).parameters)
    for key in (k for k in KEYS if k.table == "flow"):
        default = params[key.name].default
        if default is None:
            assert not key.default.replace(".", "").isdigit(), f"flow.{key.name} is chosen, not {key.default}"
        elif isinstance(default, str):
            assert key.default == f'"{default}"'
        else:
            assert float(key.default) == float(default), key.name


def test_training_defaults_are_the_trainers_own():
    from n2n_hub.training import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for key in (k for k in KEYS if k.table == "training"):
        assert float(key.default) == float(defaults[key.name]), key.name
