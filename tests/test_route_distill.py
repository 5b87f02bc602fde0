"""Distilling a route into a direct translator: `pair A C --from-route`.

The toy route is toytext -> toygen (the registry's cached translator) -> toypix (toygen decodes
an image, toypix encodes it). Its first hop reads the toy shapes' labels as captions: those
captions, encoded by toytext, are the inputs drawn along the route.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from n2n_hub.catalog.distilling import check_route, held_out_samples
from n2n_hub.catalog.routes import Link, Route
from n2n_hub.cli.commands import cli
from n2n_hub.errors import CacheError, IncompatiblePairError, InputError
from n2n_hub.hub import Hub

# A direct recipe for the same pair: distilling the route is still allowed.
DIRECT = """
[pairs.toy-pixels]
source = "toytext"
target = "toypix"
recipe = "dataset"
dataset = "toyshapes"
source_from = "label"
bridges = ["label-caption"]
"""

# The same first hop, trained from toygen's prior instead of a dataset: nothing to draw from.
FROM_PRIOR = """
[pairs.toy-prior]
source = "toytext"
target = "toygen"
recipe = "target-prior"
bridges = ["label-caption"]
samples = 600
"""


@pytest.fixture
def hub(trained_toy_hub):
    return trained_toy_hub


def _plan(hub, **sampling):
    return hub.plan_from_route(hub.route("toytext", "toypix", direct=False), **sampling)


def test_the_plan_names_the_route_and_the_pairs_it_would_draw_and_loads_nothing(hub, toy_modules):
    n2n_toy, _ = toy_modules
    plan = _plan(hub, samples=600, seed=3, temperature=0.5)
    assert str(plan.source) == "toytext@base" and str(plan.target) == "toypix@base"
    assert plan.samples == 600 and plan.seed == 3 and plan.dataset == "toyshapes"
    text = plan.explain()
    assert "route toytext@base -> toygen@base -> toypix@base" in text
    assert "draws 600 training pairs (and 120 held out)" in text and "seed 3 at temperature 0.5" in text
    record = plan.to_dict()["from_route"]
    assert record["nodes"] == ["toytext@base", "toygen@base", "toypix@base"] and record["temperature"] == 0.5
    assert record["inputs"]["registry_entry"] == "toy-shapes" and record["inputs"]["dataset"] == "toyshapes"
    assert n2n_toy.experts.CALLS == {"toytext.encode": 0, "toygen.encode": 0}
    assert held_out_samples(10_000) == 2_000


def test_a_route_that_cannot_be_distilled_is_refused_before_anything_loads():
    expert_first = Route((Link("a", "b", "expert", 1.0, domain="image"),
                          Link("b", "c", "translator", 0.0, entry="b-c", key="k")), {})
    with pytest.raises(IncompatiblePairError, match="starts with an expert hop .* reads no dataset"):
        check_route(expert_first)
    direct = Route((Link("a", "c", "translator", 0.0, entry="a-c", key="k"),), {})
    with pytest.raises(IncompatiblePairError, match="is one translator, the direct one: there is nothing to distil"):
        check_route(direct)
    unnamed = Route((Link("a", "b", "translator", 0.0, key="k"), Link("b", "c", "translator", 0.0, entry="b-c")), {})
    with pytest.raises(IncompatiblePairError, match="no registry entry names"):
        check_route(unnamed)


@pytest.mark.slow
def test_drawn_pairs_are_the_hops_run_by_hand_with_the_same_seeds(hub, monkeypatch):
    import n2n_hub.translators.distill as distill

    monkeypatch.setattr(distill, "DRAW_BLOCK", 4)  # two blocks: the second draws with the next block's seed
    plan = _plan(hub, samples=8, seed=5)
    data = hub.training_pairs(plan)
    inputs = hub.training_pairs(plan.from_route.inputs)
    order = distill.draw_order(inputs.source.shape[0], 8, 5)
    assert torch.equal(data.source, inputs.source[order]) and torch.equal(data.groups, inputs.groups[order])
    t = hub.pair("toytext", "toygen")
    gen, pix = hub.load_expert("toygen"), hub.load_expert("toypix")
    for block, rows in enumerate((slice(0, 4), slice(4, 8))):
        z = t.sample_many([data.source[rows]], [1], [1.0], [distill.block_seed(5, block)])[0].reshape(-1, 4)
        assert torch.allclose(data.target[rows], pix.encode(gen.decode(z)))
    assert distill.block_seed(5, 0) == 5 and distill.block_seed(5, 1) != 5
    again = hub.training_pairs(plan)  # from the feature cache: the same draw
    assert torch.equal(again.target, data.target)


@pytest.mark.slow
def test_distilling_trains_and_caches_a_direct_translator_whose_key_follows_its_hops(hub):
    plan = _plan(hub, samples=600, seed=1)
    t = hub.pair(plan, steps=120)
    assert t.path.is_file() and t.kind == "cinn" and t.metadata["pairs"] == 600
    hop = hub.pair("toytext", "toygen")
    route = t.metadata["request"]["route"]
    assert [h["kind"] for h in route] == ["translator", "expert"]
    assert route[0]["key"] == hop.metadata["key"] and len(route[0]["sha256"]) == 64
    assert route[1]["target"]["id"] == "toypix"
    [entry] = [e for e in hub.cache.entries() if e.key == t.metadata["key"]]
    assert entry.summary["from_route"] == ["toytext@base", "toygen@base", "toypix@base"]
    card = hub.card(t.metadata["key"])
    assert "distilled from the route `toytext@base -> toygen@base -> toypix@base`" in card
    assert f"translator `{hop.metadata['key']}`" in card
    cached = hub.pair(plan, steps=120, train_if_missing=False)  # the same hops: the same translator
    assert cached.path == t.path
    with pytest.raises(InputError, match="distilled from a route, and no registry entry can name one"):
        hub.publish(t.metadata["key"], hub.home / "published")

    other = hub.pair("toytext", "toygen", steps=40, make_current=True)  # the hop changes
    assert other.metadata["key"] != hop.metadata["key"]
    with pytest.raises(CacheError, match="no cached translator for toytext@base -> toypix@base"):
        hub.pair(_plan(hub, samples=600, seed=1), steps=120, train_if_missing=False)
    retrained = hub.pair(_plan(hub, samples=600, seed=1), steps=120)
    assert retrained.metadata["key"] != t.metadata["key"]
    assert retrained.metadata["request"]["route"][0]["key"] == other.metadata["key"]


@pytest.mark.slow
def test_the_key_follows_the_draw_seed_temperature_and_count(hub):
    keys = set()
    for sampling in ({"samples": 600}, {"samples": 600, "seed": 1}, {"samples": 600, "temperature": 0.5},
                     {"samples": 640}):
        keys.add(hub.pair(_plan(hub, translator="linear", **sampling)).metadata["key"])
    assert len(keys) == 4


@pytest.mark.slow
def test_a_distilled_translator_scores_held_out_route_samples_better_than_an_untrained_one(hub):
    t = hub.pair(_plan(hub, samples=900, seed=2), steps=200)
    held = hub.held_out(t)
    assert held.test.source.shape[0] == held_out_samples(900) and held.train.source.shape[0] == 900
    assert held.test_items is None  # the rows are draws, not the dataset's items in order
    untrained = hub.kinds()[t.kind].from_config(t.module.config()).eval()
    with torch.no_grad():
        trained_nll = t.module.loss(held.test.target, held.test.source).mean()
        untrained_nll = untrained.loss(held.test.target, held.test.source).mean()
    assert torch.isfinite(trained_nll) and trained_nll < untrained_nll


@pytest.mark.slow
def test_a_route_through_a_distilled_translator_uses_it(hub):
    t = hub.pair(_plan(hub, samples=600), steps=60, make_current=True)
    route = hub.route("toytext", "toypix")  # the cached direct translator is the cheapest route now
    assert route.nodes == ["toytext@base", "toypix@base"] and route.hops[0].key == t.metadata["key"]
    got = hub.translate(route, inputs=["a circle"], n=2, seed=4)
    assert torch.equal(got.latents, t.sample_latents(["a circle"], n=2, seed=4))
    with pytest.raises(IncompatiblePairError, match="is one translator, the direct one"):
        hub.plan_from_route(route)
    assert hub.route("toytext", "toypix", direct=False).nodes == ["toytext@base", "toygen@base", "toypix@base"]


def test_too_few_pairs_and_bad_draw_settings_are_refused(hub):
    route = hub.route("toytext", "toypix", direct=False)
    for bad in ({"samples": 0}, {"seed": -1}, {"temperature": float("nan")}, {"samples": True}):
        with pytest.raises(InputError):
            hub.plan_from_route(route, **bad)


def _run(args, home, monkeypatch):
    monkeypatch.setenv("N2N_HUB_HOME", str(home))
    return CliRunner().invoke(cli, args)


def _one_line(result, *needles):
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


@pytest.mark.slow
def test_pair_from_route_plan_prints_the_route_and_the_draw_without_training(hub, toy_cli_host, monkeypatch):
    out = _run(["pair", "toytext", "toypix", "--from-route", "--plan", "--samples", "2000"], hub.home, monkeypatch)
    assert out.exit_code == 0, out.output
    assert "route toytext@base -> toygen@base -> toypix@base" in out.output and "cached" in out.output
    assert "draws 2000 training pairs (and 400 held out)" in out.output and "training:" in out.output
    data = json.loads(_run(["pair", "toytext", "toypix", "--from-route", "--plan", "--json", "--seed", "7"],
                           hub.home, monkeypatch).output)
    assert data["recipe"] == "route" and data["samples"] == 10_000 and data["seed"] == 7
    assert data["from_route"]["nodes"][1] == "toygen@base" and "estimate" in data
    assert not list((hub.home / "translators").glob("toytext_base--toypix_base/*"))  # nothing trained


@pytest.mark.slow
def test_pair_from_route_trains_reports_and_lists_the_distilled_translator(hub, toy_cli_host, monkeypatch):
    out = _run(["pair", "toytext", "toypix", "--from-route", "--via", "toygen", "--samples", "300", "--steps", "30",
                "--translator", "mlp"], hub.home, monkeypatch)
    assert out.exit_code == 0, out.output
    assert "toytext@base -> toypix@base: mlp translator at" in out.output
    assert "distilled from route toytext@base -> toygen@base -> toypix@base: 300 pairs drawn with seed 0" in out.output
    listed = _run(["cache", "list"], hub.home, monkeypatch)
    assert "from route toytext@base -> toygen@base -> toypix@base" in listed.output
    ran = _run(["translate", "toytext", "toypix", "a circle", "--json"], hub.home, monkeypatch)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["route"]["nodes"] == ["toytext@base", "toypix@base"]  # the distilled one


@pytest.mark.slow
def test_pair_from_route_errors_are_one_line_each(hub, toy_cli_host, toy_registry_file, monkeypatch, tmp_path):
    _one_line(_run(["pair", "toypix", "toytext", "--from-route", "--plan"], hub.home, monkeypatch),
              "no route from toypix@base to toytext@base", "nothing leads out of toypix@base")
    texts = tmp_path / "texts.txt"
    texts.write_text("a circle\n")
    _one_line(_run(["pair", "toytext", "toypix", "--from-route", "--data", str(texts)], hub.home, monkeypatch),
              "--from-route draws its training pairs along the route", "drop one of them")
    _one_line(_run(["pair", "toytext", "toygen", "--samples", "100"], hub.home, monkeypatch), "add --from-route")
    _one_line(_run(["pair", "toytext", "toypix", "--from-route", "--samples", "8"], hub.home, monkeypatch),
              "--samples 8 draws too few pairs", "at least 32")
    _one_line(_run(["pair", "toytext", "toypix", "--from-route", "--samples", "8", "--plan"], hub.home, monkeypatch),
              "--samples 8 draws too few pairs", "at least 32")  # the plan says so before anything loads
    toy_registry_file.write_text(FROM_PRIOR)
    _one_line(_run(["pair", "toytext", "toypix", "--from-route", "--plan"], hub.home, monkeypatch),
              "first hop toytext@base -> toygen@base (recipe 'target-prior') reads no dataset")


@pytest.mark.slow
def test_a_direct_recipe_does_not_stop_distilling_the_route(hub, toy_cli_host, toy_registry_file, monkeypatch):
    toy_registry_file.write_text(toy_registry_file.read_text() + DIRECT)
    direct = _run(["pair", "toytext", "toypix", "--plan"], hub.home, monkeypatch)
    assert direct.exit_code == 0 and "recipe 'dataset' (registry entry 'toy-pixels')" in direct.output
    routed = _run(["pair", "toytext", "toypix", "--from-route", "--plan"], hub.home, monkeypatch)
    assert routed.exit_code == 0, routed.output
    assert "route toytext@base -> toygen@base -> toypix@base" in routed.output and "distilled" in routed.output


@pytest.mark.slow
def test_drawing_along_the_route_shows_its_progress(trained_home, toy_host, toy_registry_file, monkeypatch, capsys):
    import n2n_hub.translators.distill as distill

    monkeypatch.setattr(distill, "DRAW_BLOCK", 16)
    monkeypatch.setenv("N2N_HUB_PROGRESS_EVERY", "0")  # a line per block, as a log shows it
    hub = Hub(home=trained_home, host=toy_host, progress=True, log=lambda m: None)
    hub.training_pairs(_plan(hub, samples=64))
    err = capsys.readouterr().err
    assert "drawing train pairs along toytext@base -> toygen@base -> toypix@base: 4/4 block" in err


@pytest.mark.slow
def test_a_route_leaves_out_a_distilled_translator_whose_hop_was_removed(hub):
    t = hub.pair(_plan(hub, samples=600, translator="linear"), make_current=True)
    assert hub.route("toytext", "toypix").nodes == ["toytext@base", "toypix@base"]
    hop = t.metadata["request"]["route"][0]["key"]
    hub.cache.remove(hop)
    assert hub.route("toytext", "toypix").nodes == ["toytext@base", "toygen@base", "toypix@base"]
