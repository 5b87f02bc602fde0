"""registry.toml: the shipped file parses, user files merge over it, bad entries are named."""

from __future__ import annotations

import pytest

from n2n_hub.errors import RegistryError
from n2n_hub.spec.expert import ExpertAddress
from n2n_hub.catalog.registry import Registry, shipped_registry_path


def test_shipped_registry_declares_the_default_pairs():
    reg = Registry.load()
    assert reg.files[0] == shipped_registry_path()
    entry = reg.find(ExpertAddress("bert", None, "all-minilm-l6-v2"), ExpertAddress("vaegan", None, "animals"))
    assert entry is not None and entry.recipe == "dataset" and entry.dataset == "animals"
    assert entry.bridges == ("label-prose",)
    biggan = reg.find(ExpertAddress("bert", None, "x"), ExpertAddress("biggan", None, "biggan-deep-256"))
    assert biggan is not None and biggan.recipe == "target-prior" and biggan.flow["n_blocks"] == 20


def test_user_registry_merges_key_by_key(tmp_path, monkeypatch):
    user = tmp_path / "config" / "n2n-hub" / "registry.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[pairs.bert-vaegan-animals.training]\nsteps = 7\n')
    entry = Registry.load().entries["bert-vaegan-animals"]
    assert entry.training["steps"] == 7
    assert entry.training["batch_size"] == 128  # untouched keys survive
    assert entry.dataset == "animals"
    extra = tmp_path / "extra.toml"
    extra.write_text('[pairs.bert-vaegan-animals.training]\nsteps = 9\n\n'
                     '[pairs.mine]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\n')
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(extra))
    reg = Registry.load()
    assert reg.entries["bert-vaegan-animals"].training["steps"] == 9  # $N2N_HUB_REGISTRY wins
    assert reg.entries["mine"].origin == str(extra)


@pytest.mark.parametrize("body, problem", [
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "Tele pathy"\n', "recipe 'Tele pathy'"),
    ('[pairs.x]\ntarget = "b"\nrecipe = "target-prior"\n', "'source' is required"),
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "dataset"\n', "needs 'dataset"),
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\nstepz = 3\n', "unknown key"),
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\n[pairs.x.training]\nsteps = "many"\n',
     "training.steps must be a number"),
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\n[pairs.x.published]\nurl = "u"\nsha256 = "12"\n',
     "64 hex"),
    ('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\ntemperature = 0\n', "'temperature' must be"),
    ('[pairs.x\n', "not valid TOML"),
])
def test_invalid_entries_name_file_key_and_problem(tmp_path, monkeypatch, body, problem):
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(bad))
    with pytest.raises(RegistryError) as err:
        Registry.load()
    assert str(bad) in str(err.value) and problem in str(err.value)
    if "TOML" not in problem:
        assert "[pairs.x]" in str(err.value)


def test_a_missing_registry_named_in_the_environment_is_named_and_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(tmp_path / "nope.toml"))
    registry = Registry.load()
    assert "bert-vaegan-animals" in registry.entries  # the shipped entries still load
    (problem,) = registry.problems
    assert "nope.toml" in problem and "does not exist" in problem and "N2N_HUB_REGISTRY" in problem


def test_variant_specific_entries_win_over_generic_ones(tmp_path, monkeypatch):
    f = tmp_path / "r.toml"
    f.write_text('[pairs.generic]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\n'
                 '[pairs.special]\nsource = "a@v2"\ntarget = "b"\nrecipe = "target-prior"\n')
    reg = Registry.load([f])
    assert reg.find(ExpertAddress("a", None, "v2"), ExpertAddress("b", None, "x")).name == "special"
    assert reg.find(ExpertAddress("a", None, "v1"), ExpertAddress("b", None, "x")).name == "generic"
    assert reg.find(ExpertAddress("c", None, None), ExpertAddress("b", None, None)) is None
