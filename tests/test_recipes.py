"""Recipes are plugins: the register_recipes hook, the built-ins, and the domains and deformation recipes."""

from __future__ import annotations

import pytest
import torch
from toy_util import TOY_TRANSFER_REGISTRY, toy_domains_plugin
from toy_util import hub_with_registry as _hub
from toy_util import plugin as _plugin

from n2n_hub import RecipeSpec
from n2n_hub.errors import IncompatiblePairError
from n2n_hub.catalog.host import PluginHost
from n2n_hub.data.recipes import PairData

CALLS = {"halved": 0}


def halved_pairs(ctx, split="train"):
    """A third-party recipe: z ~ N(0, I), and the source sees 2·z."""
    CALLS["halved"] += 1
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    z = torch.randn(400, 4, generator=g)
    return PairData(2 * z, z)


@pytest.mark.slow
def test_a_plugin_recipe_registered_through_the_hook_makes_the_pairs_its_translator_learns(
        toy_host, tmp_path, monkeypatch):
    toy_host.register(_plugin(register_recipes=lambda register: register(RecipeSpec(
        id="halved", loader="test_recipes:halved_pairs", description="source = 2 z"))), "halving")
    hub = _hub(toy_host, tmp_path, monkeypatch, '[pairs.h]\nsource = "toygen"\ntarget = "toygen"\nrecipe = "halved"\n'
               '[pairs.h.flow]\nn_blocks = 2\nhidden = 32\n[pairs.h.training]\nsteps = 400\nbatch_size = 64\n'
               'val_every = 100\n')
    assert hub.catalog.recipes["halved"].plugin == "halving"
    CALLS["halved"] = 0
    t = hub.pair("toygen", "toygen")
    assert CALLS["halved"] == 1 and t.metadata["recipe"]["recipe"] == "halved"
    images = torch.tanh(torch.randn(64, 1, 4, 4) * 0.3)
    c = t.source.encode(images)
    z = t.sample_latents(images, n=16, temperature=0.0).mean(1)
    # the translator learned z = c / 2 from the recipe's pairs
    assert torch.allclose(z, c / 2, atol=0.15 * c.abs().max().item())


def test_built_in_recipes_come_through_the_hook_even_with_no_plugins_loaded(monkeypatch):
    monkeypatch.setenv("N2N_HUB_LOAD_PLUGINS", "")
    host = PluginHost()
    host.load_entry_points()
    catalog = host.collect()
    assert set(catalog.recipes) >= {"dataset", "target-prior", "domains", "deformation"}
    assert {r.plugin for r in catalog.recipes.values()} == {"n2n_hub.builtin"}
    assert host.plugin_names() == []  # the host's own recipes are not listed as an installed plugin


def test_a_recipe_spec_with_an_unknown_transfer_kind_is_refused_and_reported():
    host = PluginHost()
    host.register(_plugin(register_recipes=lambda register: register(
        RecipeSpec(id="odd", loader="m:f", transfer="telepathy"))), "oddity")
    catalog = host.collect()
    assert "odd" not in catalog.recipes
    assert any(p.plugin == "oddity" and "telepathy" in p.reason for p in catalog.problems)


def test_an_entry_naming_an_unregistered_recipe_fails_at_planning_naming_the_known_ones(toy_host, tmp_path,
                                                                                          monkeypatch):
    hub = _hub(toy_host, tmp_path, monkeypatch, '[pairs.x]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "telepathy"\n')
    with pytest.raises(IncompatiblePairError, match="telepathy.*known: .*deformation.*domains"):
        hub.plan("toytext", "toygen")


def test_domains_recipe_gives_each_image_its_domain_id_and_its_target_encoding(toy_host, tmp_path, monkeypatch):
    toy_host.register(toy_domains_plugin(), "toydomains")
    hub = _hub(toy_host, tmp_path, monkeypatch, TOY_TRANSFER_REGISTRY)
    plan = hub.plan("toydomain", "toygen")
    pairs = hub.training_pairs(plan)
    from n2n_toy.experts import ToyGenerator, load_shapes

    data = load_shapes("train")
    order = torch.cat([torch.nonzero(data["label"] == k).flatten() for k in range(3)])
    assert torch.equal(pairs.source, data["label"][order])
    assert torch.allclose(pairs.target, ToyGenerator.encode(None, data["image"][order]), atol=1e-5)


def test_domains_subsets_join_classes_and_must_name_real_ones(toy_host, tmp_path, monkeypatch):
    toy_host.register(toy_domains_plugin(), "toydomains")
    body = TOY_TRANSFER_REGISTRY.replace("[pairs.toy-domains.flow]", '[pairs.toy-domains.options]\nsubsets = '
                                         '{ circle = ["circle", "square"], square = ["toyshapes:square"], '
                                         'triangle = ["toyshapes:*"] }\n[pairs.toy-domains.flow]')
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    pairs = hub.training_pairs(hub.plan("toydomain", "toygen"))
    assert torch.bincount(pairs.source).tolist() == [200, 100, 300]
    hub = _hub(toy_host, tmp_path, monkeypatch, body.replace('"toyshapes:square"', '"hexagon"'))
    with pytest.raises(IncompatiblePairError, match="no class 'hexagon'"):
        hub.training_pairs(hub.plan("toydomain", "toygen"))


def test_deformation_recipe_conditions_each_encoding_on_a_deformed_copy(toy_host, tmp_path, monkeypatch):
    hub = _hub(toy_host, tmp_path, monkeypatch, TOY_TRANSFER_REGISTRY)
    pairs = hub.training_pairs(hub.plan("toygen", "toygen"))
    assert pairs.source.shape == pairs.target.shape == (600, 4)
    assert torch.equal(pairs.target[:300], pairs.target[300:])  # pairs_per_item = 2 deformations per image
    assert (pairs.source - pairs.target).abs().mean() > 0.05
    # With no warp, crop or flip, d is the identity and the two sides coincide.
    body = TOY_TRANSFER_REGISTRY + "[pairs.toy-deformation.options]\nstrength = 0\nflip = 0\n"
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    pairs = hub.training_pairs(hub.plan("toygen", "toygen"))
    assert torch.allclose(pairs.source, pairs.target, atol=1e-5)
