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


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_plugin_recipe_that_samples_the_prior_is_planned_and_evaluated_like_target_prior(toy_host, tmp_path,
                                                                                          monkeypatch):
    toy_host.register(_plugin(register_recipes=lambda register: register(RecipeSpec(
        id="my-prior", loader="n2n_hub.data.recipes:prior_recipe", samples_prior=True, bridged_source=True))),
        "mine")
    body = ('[pairs.p]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "{}"\nsamples = 1500\n'
            '[pairs.p.training]\nsteps = 60\nbatch_size = 64\nval_every = 30\n')
    from n2n_toy.experts import ToyGenerator, classify_shapes

    # a target that names the class of a latent, as BigGAN does: prompts need no dataset's classifier
    monkeypatch.setattr(ToyGenerator, "class_scores", lambda self, z: classify_shapes(self.decode(z)), raising=False)
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("circle\tnames\ta circle\nsquare\tnames\ta square\ntriangle\tnames\ta triangle\n")
    results = {}
    for recipe in ("target-prior", "my-prior"):
        hub = _hub(toy_host, tmp_path, monkeypatch, body.format(recipe))
        plan = hub.plan("toytext", "toygen")
        evaluation = hub.evaluate("toytext", "toygen", per_condition=2, samples=64)
        scored = hub.evaluate_prompts("toytext", "toygen", prompts, n=4)
        results[recipe] = plan, evaluation, scored
    (ref, ref_eval, ref_prompts), (mine, mine_eval, mine_prompts) = results["target-prior"], results["my-prior"]
    # planned from the target's prior: the bridge chain starts at what the prior reports, sized by `samples`
    assert mine.recipe == "my-prior" and mine.dataset is None
    assert mine.start_domain == "label" and [b.id for b in mine.bridges] == ["label-caption"]
    assert "1500 pairs" in mine.sizing
    assert mine.explain() == ref.explain().replace("'target-prior'", "'my-prior'")
    # evaluated without dataset items: no feature floor; the prompt ceiling comes from the prior
    assert mine_eval.metrics == ref_eval.metrics and mine_eval.metrics["fd_features_floor"] is None
    assert mine_eval.metrics["fd_features"] is not None
    assert mine_prompts.ceiling == ref_prompts.ceiling and mine_prompts.ceiling is not None
    assert mine_prompts.nll == {} and mine_prompts.top1 == ref_prompts.top1


def test_a_recipe_spec_that_samples_the_prior_and_reads_a_dataset_is_refused():
    host = PluginHost()
    host.register(_plugin(register_recipes=lambda register: register(
        RecipeSpec(id="both", loader="m:f", samples_prior=True, needs_dataset=True))), "confused")
    catalog = host.collect()
    assert "both" not in catalog.recipes
    assert any(p.plugin == "confused" and "reads no dataset" in p.reason for p in catalog.problems)


def _recipe_name_comparisons(source: str, ids: set[str]) -> list[int]:
    """Lines of ``source`` that compare something named like a recipe with a recipe id, or spell
    an id that means nothing but a recipe ("target-prior", "deformation")."""
    import ast

    def mentions_recipe(node: ast.AST) -> bool:
        return any(("recipe" in n.id.lower()) if isinstance(n, ast.Name) else ("recipe" in n.attr.lower())
                   for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute)))

    def names_an_id(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Constant) and n.value in ids for n in ast.walk(node))

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(mentions_recipe(o) for o in operands) and any(names_an_id(o) for o in operands):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value in ids - {"dataset", "domains"}:
            lines.append(node.lineno)
    return lines


def test_only_the_recipes_themselves_know_the_built_in_recipe_ids():
    """Planning, the hub and evaluation ask a recipe's spec (samples_prior, bridged_source, ...), never its id."""
    from pathlib import Path

    import n2n_hub
    from n2n_hub.catalog.builtin_recipes import BUILTIN_RECIPES

    ids = {r.id for r in BUILTIN_RECIPES}
    assert ids == {"dataset", "target-prior", "domains", "deformation"}
    root = Path(n2n_hub.__file__).parent
    allowed = {root / "catalog" / "builtin_recipes.py"}
    found = {str(path.relative_to(root)): lines for path in sorted(root.rglob("*.py"))
             if root / "data" not in path.parents and path not in allowed
             and (lines := _recipe_name_comparisons(path.read_text(encoding="utf-8"), ids))}
    assert found == {}
    # the scan does see such a comparison
    assert _recipe_name_comparisons('if plan.recipe == "dataset":\n    pass\n', ids) == [1]
    assert _recipe_name_comparisons('x = spec.recipe in ("domains", "other")\n', ids) == [1]
    assert _recipe_name_comparisons('name = "target-prior"\n', ids) == [1]
