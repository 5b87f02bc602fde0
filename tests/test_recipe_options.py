"""Recipe options: declared by each recipe, checked when a pair is planned; the shared ``augment`` option."""

from __future__ import annotations

import pytest
import torch
from toy_util import TOY_TRANSFER_REGISTRY, toy_domains_plugin
from toy_util import hub_with_registry as _hub

from n2n_hub import RecipeOption, RecipeSpec
from n2n_hub.data.augment import augmented
from n2n_hub.errors import IncompatiblePairError, PluginError

TOY_DATASET_REGISTRY = """
[pairs.toy-shapes]
source = "toytext"
target = "toygen"
recipe = "dataset"
dataset = "toyshapes"
source_from = "label"
bridges = ["label-caption"]
"""


def test_a_misspelt_option_is_refused_at_planning_with_the_recipe_named_and_a_suggestion(toy_host, tmp_path,
                                                                                          monkeypatch):
    body = TOY_DATASET_REGISTRY + '[pairs.toy-shapes.options]\naugmnt = ["hflip"]\n'
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    with pytest.raises(IncompatiblePairError, match=r"toy-shapes.*recipe 'dataset' has no option 'augmnt'\. "
                                                    r"Did you mean 'augment'\?"):
        hub.plan("toytext", "toygen")


@pytest.mark.parametrize("table, pattern", [
    ('augment = ["vflip"]', r"options.augment has \['vflip'\], not among \['hflip'\]"),
    ('augment = "hflip"', r"options.augment must be a list of strings"),
])
def test_a_bad_augment_value_is_refused_at_planning(toy_host, tmp_path, monkeypatch, table, pattern):
    hub = _hub(toy_host, tmp_path, monkeypatch, TOY_DATASET_REGISTRY + f"[pairs.toy-shapes.options]\n{table}\n")
    with pytest.raises(IncompatiblePairError, match=pattern):
        hub.plan("toytext", "toygen")


@pytest.mark.parametrize("table, pattern", [
    ("strength = 3", r"options.strength must be a number in \[0, 2\], got 3"),
    ('strength = "strong"', r"options.strength must be a number"),
    ("strenght = 1.5", r"no option 'strenght'\. Did you mean 'strength'\?"),
])
def test_deformation_options_are_checked_before_any_training(toy_host, tmp_path, monkeypatch, table, pattern):
    body = TOY_TRANSFER_REGISTRY + f"[pairs.toy-deformation.options]\n{table}\n"
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    with pytest.raises(IncompatiblePairError, match=pattern):
        hub.plan("toygen", "toygen")


def test_the_target_prior_recipe_reads_no_options(toy_host, tmp_path, monkeypatch):
    body = ('[pairs.p]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "target-prior"\n'
            '[pairs.p.options]\naugment = ["hflip"]\n')
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    with pytest.raises(IncompatiblePairError, match="recipe 'target-prior' has no option 'augment'.*Its options: none"):
        hub.plan("toytext", "toygen")


def test_a_recipe_that_declares_no_options_passes_them_through():
    RecipeSpec("free", "m:f").check_options({"anything": object()})  # no declaration: nothing to check against
    with pytest.raises(IncompatiblePairError, match="no option 'x'"):
        RecipeSpec("strict", "m:f", options=()).check_options({"x": 1})


def test_a_recipe_spec_with_a_malformed_option_declaration_is_refused():
    with pytest.raises(PluginError, match="RecipeOption"):
        RecipeSpec("r", "m:f", options=(RecipeOption("n", kind="colour"),)).validate()
    with pytest.raises(PluginError, match="RecipeOption"):
        RecipeSpec("r", "m:f", options=("strength",)).validate()  # type: ignore[arg-type]


def test_augmented_mirrors_images_and_repeats_what_goes_with_them():
    images = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    data = {"image": images, "label": torch.tensor([4, 7]), "text": ["a", "b"]}
    out = augmented(data, ["hflip"])
    assert torch.equal(out["image"][:2], images)
    assert torch.equal(out["image"][2:], images[..., [2, 1, 0]])
    assert out["label"].tolist() == [4, 7, 4, 7] and out["text"] == ["a", "b", "a", "b"]
    assert augmented(data, []) is data
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmented(data, ["rotate"])


def test_augment_adds_mirrored_training_items_to_the_dataset_recipe_but_not_to_evaluation(toy_host, tmp_path,
                                                                                          monkeypatch):
    from n2n_toy.experts import ToyGenerator, load_shapes

    plain = _hub(toy_host, tmp_path, monkeypatch, TOY_DATASET_REGISTRY)
    base = plain.training_pairs(plain.plan("toytext", "toygen"))
    body = TOY_DATASET_REGISTRY + '[pairs.toy-shapes.options]\naugment = ["hflip"]\n'
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    plan = hub.plan("toytext", "toygen")
    pairs = hub.training_pairs(plan)
    n = base.target.shape[0]
    assert pairs.target.shape[0] == 2 * n
    images = load_shapes("train")["image"]
    flipped = ToyGenerator.encode(None, images.flip(-1))
    assert torch.allclose(pairs.target[n:], flipped, atol=1e-5)
    assert torch.allclose(pairs.target[:n], base.target, atol=1e-5)
    # A mirrored item keeps its label, so its caption encodes the same class.
    assert pairs.source.shape == (2 * n, base.source.shape[1])
    assert "augment" in str(plan.to_dict()["options"])
    assert "options {'augment': ['hflip']}" in plan.explain()  # `pair --plan` says what the data will hold
    held_out = hub.training_pairs(plan, split="test")
    assert held_out.target.shape[0] == load_shapes("test")["image"].shape[0]


def test_augment_doubles_each_domain_of_the_domains_recipe(toy_host, tmp_path, monkeypatch):
    toy_host.register(toy_domains_plugin(), "toydomains")
    body = TOY_TRANSFER_REGISTRY.replace("[pairs.toy-domains.flow]",
                                         '[pairs.toy-domains.options]\naugment = ["hflip"]\n[pairs.toy-domains.flow]')
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    pairs = hub.training_pairs(hub.plan("toydomain", "toygen"))
    assert torch.bincount(pairs.source).tolist() == [200, 200, 200]
