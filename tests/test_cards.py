"""Model cards: what a stranger reads before using a translator, in a form the Hugging Face hub accepts."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import EvalResult, ModelCard, ModelCardData, metadata_eval_result
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from n2n_hub import ExpertSpec, Representation, Variant
from n2n_hub.catalog.registry import Registry
from n2n_hub.errors import InputError
from n2n_hub.hub import Hub
from n2n_hub.translators.card import (HF_LICENSES, STRICTNESS, Part, check_card, combine_licenses, license_id,
                                      model_card)

ROOT = Path(__file__).resolve().parent.parent


def _front(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def _spec(id: str, license: str, variants=(Variant("base"),), hub_ids: bool = False, **kw) -> ExpertSpec:
    return ExpertSpec(id=id, version="1", loader="x:Y", description=f"the {id} expert", license=license,
                      input_domain="text", representation=Representation((4,)), variants=variants,
                      default_variant=variants[0].name, accepts_hub_ids=hub_ids, **kw)


META = {
    "key": "k" * 32, "kind": "cinn", "package_version": "0.1.0", "created": "2026-01-01T00:00:00+00:00",
    "source": {"address": "txt@base", "id": "txt", "variant": "base", "version": "1", "fingerprint": "f1"},
    "target": {"address": "img@base", "id": "img", "variant": "base", "version": "1", "fingerprint": "f2"},
    "recipe": {"recipe": "dataset", "dataset": "shapes", "start_domain": "label", "bridges": ["label-caption"],
               "pairs_per_item": 2, "registry_entry": None},
    "config": {"n_blocks": 3, "hidden": 32},
    "training": {"steps": 150, "batch_size": 64, "lr": 0.001, "seed": 0, "val_fraction": 0.1},
    "metrics": {"objective": "nll", "best_val_nll": -0.5, "best_val_bits_per_dim": -0.72, "best_step": 100},
    "pairs": 640,
    "compute": {"wall_time_s": 2.5, "device": "cuda", "device_name": "NVIDIA H100", "world_size": 1, "steps": 150,
                "samples_seen": 9600, "flops_per_sample": 1000.0, "train_flops": 9.6e6, "energy_kwh": 0.0002,
                "energy_source": "nvml"},
}


# -- licences ---------------------------------------------------------------------------
def test_a_spec_licence_text_names_a_hugging_face_licence_id():
    assert license_id("Apache-2.0 (all-MiniLM-L6-v2); other variants carry their own licenses") == "apache-2.0"
    assert license_id("MIT (animal-shape-mnist)") == "mit"
    assert license_id("CC BY-NC 4.0") == "cc-by-nc-4.0"
    assert license_id("") is None and license_id("Proprietary, ask us") is None
    assert set(STRICTNESS) <= HF_LICENSES  # every licence we rank is one the hub knows


@pytest.mark.parametrize("ids, expected", [
    (["mit", "mit"], "mit"),
    (["mit", "apache-2.0"], "apache-2.0"),
    (["apache-2.0", "cc-by-4.0", "mit"], "cc-by-4.0"),
    (["cc-by-4.0", "cc-by-nc-4.0"], "cc-by-nc-4.0"),
    (["cc0-1.0", "bsd-3-clause"], "bsd-3-clause"),
    (["gpl-3.0", "gpl-3.0"], "gpl-3.0"),
])
def test_a_translators_licence_is_the_strictest_of_its_parts(ids, expected):
    parts = [Part("part", f"p{i}", x, x) for i, x in enumerate(ids)]
    assert combine_licenses(parts).license == expected
    assert combine_licenses(list(reversed(parts))).license == expected  # whatever the order of the parts


def test_an_unknown_or_unrankable_licence_makes_it_other_with_a_name_and_link():
    unknown = combine_licenses([Part("source expert", "a", "MIT", "mit"),
                                Part("target expert", "b", "Our terms: https://example.org/terms", None)])
    assert (unknown.license, unknown.name, unknown.link) == ("other", "mit-and-unknown", "https://example.org/terms")
    assert "licence of b is not known" in unknown.why
    mixed = combine_licenses([Part("a", "a", "GPL-3.0", "gpl-3.0"), Part("b", "b", "MIT", "mit")])
    assert (mixed.license, mixed.name) == ("other", "gpl-3.0-and-mit")


# -- the card ---------------------------------------------------------------------------
def test_the_card_names_experts_licence_results_compute_and_uses_to_avoid():
    src = _spec("txt", "Apache-2.0", (Variant("base", settings={"hf_repo": "org/text-model"}),))
    tgt = _spec("img", "CC-BY-NC-4.0")
    from n2n_hub.spec.components import DatasetSpec

    data = DatasetSpec("shapes", "1", "x:y", ("image", "label"), license="MIT", class_names=("a", "b"))
    card = model_card(META, src, tgt, data)
    meta = check_card(card)
    assert meta["license"] == "cc-by-nc-4.0" and meta["base_model"] == ["org/text-model"]
    assert {"n2n-hub", "net2net", "conditional-invertible-network", "txt", "img", "shapes"} <= set(meta["tags"])
    assert meta["n2n_hub"]["compute"]["energy_kwh"] == 0.0002 and meta["n2n_hub"]["key"] == "k" * 32
    name, results = model_index_to_eval_results(meta["model-index"])
    assert [(r.metric_type, r.metric_value, r.dataset_split) for r in results] == [("nll", -0.5, "validation")]
    body = card.split("---\n", 2)[2]
    for text in ("txt@base", "img@base", "150 steps of batch 64", "640 training pairs", "NVIDIA H100",
                 "0.0002 kWh (nvml)", "Uses to avoid".lower(), "cc-by-nc-4.0", "the 2 classes of `shapes`"):
        assert text in body.lower() or text in body, text


def test_results_present_are_in_the_model_index_as_the_hub_writes_them_and_absent_ones_are_left_out():
    evaluation = {"features": "segmenter:last", "metrics": {"nll": -0.4, "fd_latent": 1.25, "fd_features": None,
                                                            "mse": None}}
    prompts = {"top1": {"names": 0.75, "prose": 0.5}, "ceiling": 0.9}
    meta = check_card(model_card(META, evaluation=evaluation, prompts=prompts))
    _, results = model_index_to_eval_results(meta["model-index"])
    assert [(r.metric_type, r.metric_value, r.dataset_split) for r in results] == [
        ("nll", -0.5, "validation"), ("nll", -0.4, "test"), ("frechet_distance", 1.25, "test"),
        ("accuracy", 0.75, "test"), ("accuracy", 0.5, "test")]
    expected = metadata_eval_result(  # what huggingface_hub itself writes for the first result
        model_pretty_name=meta["model-index"][0]["name"], task_pretty_name=None, task_id="other",
        metrics_pretty_name="held-out NLL (nats/dim)", metrics_id="nll", metrics_value=-0.5,
        dataset_pretty_name="shapes (validation pairs)", dataset_id="shapes", dataset_split="validation",
        metrics_verified=None)  # "verified" is for the hub to set
    assert meta["model-index"][0]["results"][0] == expected["model-index"][0]["results"][0]

    bare = copy.deepcopy(META)
    bare["metrics"] = {"objective": "nll"}
    assert "model-index" not in check_card(model_card(bare))  # nothing measured: no model-index at all


def test_an_expert_without_a_plugin_or_with_undeclared_weights_has_an_unknown_licence():
    meta = copy.deepcopy(META)
    meta["source"].update(address="txt@org/other-model", variant="org/other-model")
    src = _spec("txt", "MIT", hub_ids=True)
    card = check_card(model_card(meta, src, None))
    assert card["license"] == "other" and card["base_model"] == ["org/other-model"]
    assert card["license_name"] == "unknown"


# -- checking like the hub --------------------------------------------------------------
def _good() -> str:
    from n2n_hub.spec.components import DatasetSpec

    return model_card(META, _spec("txt", "MIT"), _spec("img", "MIT"), DatasetSpec("shapes", "1", "x:y", ("image",),
                                                                                  license="MIT"))


def _with(front: dict) -> str:
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n# card\n"


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.update(license="MIT License"), "not a Hugging Face licence id"),
    (lambda m: m.update(license="other"), "needs a license_name"),
    (lambda m: m["model-index"][0]["results"][0].pop("task"), "model-index is malformed"),
    (lambda m: m["model-index"][0].pop("results"), "model-index is malformed"),
    (lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value=float("nan")), "not a finite number"),
    (lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value="good"), "not a finite number"),
    (lambda m: m["model-index"][0]["results"][0].update(extra=1), "round trip"),
    (lambda m: m.update(base_model=["not a repo id"]), "base_model"),
    (lambda m: m.update(datasets="a/b/c"), "datasets"),
    (lambda m: m.update(tags="n2n-hub"), "tags must be a list"),
])
def test_a_card_the_hub_would_reject_fails_the_check(change, problem):
    front = _front(_good())
    check_card(_with(front))  # unchanged, it passes
    change(front)
    with pytest.raises(InputError, match=problem):
        check_card(_with(front))


def test_a_card_without_front_matter_or_with_broken_yaml_fails_the_check():
    with pytest.raises(InputError, match="front matter"):
        check_card("# just markdown\n")
    with pytest.raises(InputError, match="does not parse"):
        check_card("---\nlicense: [mit\n---\n# x\n")
    with pytest.raises(InputError, match="does not parse"):
        check_card("---\n- a list\n---\n# x\n")


def test_the_card_round_trips_through_huggingface_hubs_card_classes():
    card = _good()
    parsed = ModelCard(card)
    assert isinstance(parsed.data, ModelCardData) and parsed.data.license == "mit"
    assert all(isinstance(r, EvalResult) for r in parsed.data.eval_results)
    assert eval_results_to_model_index(parsed.data.model_name, parsed.data.eval_results) == \
        _front(card)["model-index"]
    assert parsed.text.lstrip().startswith("# ")


# -- where cards are shown ----------------------------------------------------------------
def test_cache_show_prints_the_card_of_a_cached_translator(toy_cli_host, toy_registry_file):
    from n2n_hub.cli.commands import cli

    t = Hub(host=toy_cli_host, progress=False, log=lambda m: None).pair("toytext", "toygen", steps=20)
    out = CliRunner().invoke(cli, ["cache", "show", t.metadata["key"][:8]])
    assert out.exit_code == 0, out.output
    meta = check_card(out.output)
    assert meta["n2n_hub"]["key"] == t.metadata["key"] and "toytext" in meta["tags"]
    assert meta["license"] == "other" and meta["license_name"] == "mit-and-unknown"  # toyshapes declares none
    bad = CliRunner().invoke(cli, ["cache", "show", "zzz"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: no cached translator with key 'zzz'")
    assert len(bad.output.strip().splitlines()) == 1


def test_the_readme_shows_the_card_of_the_shipped_translator():
    spec = importlib.util.spec_from_file_location("release_default", ROOT / "bench" / "release_default.py")
    release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(release)
    card = release.shipped_card()
    meta = check_card(card)
    entry = Registry.load().entries["bert-vaegan-animals"]
    assert meta["n2n_hub"]["key"][:16] in entry.published.url and meta["license"] == "apache-2.0"
    assert meta["base_model"] == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert release.readme_block(card) in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "the README's card is stale: run `python bench/release_default.py`, or paste release.shipped_card()"
