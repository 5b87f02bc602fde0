"""Pair resolution explains, from specs alone, how a pair trains or exactly why it cannot."""

from __future__ import annotations

import dataclasses
import types

import pytest

from n2n_hub import ExpertSpec, Representation, hookimpl
from n2n_hub.spec.components import BridgeSpec
from n2n_hub.errors import CacheError, IncompatiblePairError, PluginError, UnknownExpertError
from n2n_hub.hub import Hub
from n2n_hub.catalog.registry import Registry


def _hub(host, tmp_path, registry=None):
    return Hub(home=tmp_path / "h", host=host, registry=registry or Registry(), progress=False)


def _add(host, name, *specs):
    host.register(types.SimpleNamespace(register_experts=hookimpl(lambda register: [register(s) for s in specs])), name)


def test_registry_recipe_bridges_dataset_labels_into_captions(toy_hub):
    plan = toy_hub.plan("toytext", "toygen")
    assert plan.recipe == "dataset" and plan.dataset == "toyshapes"
    assert plan.start_domain == "label" and [b.id for b in plan.bridges] == ["label-caption"]
    assert plan.source.variant == "base" and plan.target.variant == "base"
    assert "label -> [label-caption] text" in plan.explain()


def test_without_a_recipe_the_targets_prior_and_a_bridge_chain_are_used(toy_host, tmp_path):
    plan = _hub(toy_host, tmp_path).plan("toytext", "toygen")
    assert plan.recipe == "target-prior"
    assert plan.start_domain == "label"  # the prior reports labels: no need to decode
    assert [b.id for b in plan.bridges] == ["label-caption"]


def test_unknown_expert_suggests_close_names(toy_hub):
    with pytest.raises(UnknownExpertError, match="unknown expert 'toytex'.*Did you mean 'toytext'"):
        toy_hub.plan("toytex", "toygen")


def test_unknown_variant_lists_the_named_ones(toy_hub):
    with pytest.raises(UnknownExpertError, match="no variant 'large'; named variants: base"):
        toy_hub.plan("toytext@large", "toygen")


def test_a_target_without_decoder_needs_a_recipe_that_reads_a_dataset(toy_hub):
    # it has no prior to sample, so only items both experts read (or --data) can give its latents
    with pytest.raises(IncompatiblePairError, match="toytext@base has no prior to sample from.*dataset recipe"):
        toy_hub.plan("toygen", "toytext")


def test_an_expert_that_neither_encodes_nor_decodes_is_no_target(toy_host, tmp_path):
    _add(toy_host, "prior-only", ExpertSpec(id="dice", version="1", loader="m:C"))
    with pytest.raises(IncompatiblePairError, match="dice cannot be a target: it neither encodes nor decodes"):
        _hub(toy_host, tmp_path).plan("toytext", "dice")


def test_a_source_without_encoder_is_refused(toy_host, tmp_path):
    _add(toy_host, "decoder-only", ExpertSpec(id="painter", version="1", loader="m:C", output_domain="image",
                                              latent=Representation((4,))))
    with pytest.raises(IncompatiblePairError, match=r"painter cannot be a source: it does not encode anything \(it only decodes image\)"):
        _hub(toy_host, tmp_path).plan("painter", "toygen")


def test_no_recipe_and_no_prior_explains_what_to_provide(toy_host, tmp_path):
    _add(toy_host, "ae", ExpertSpec(id="ae", version="1", loader="m:C", input_domain="image", output_domain="image",
                                    representation=Representation((4,)), latent=Representation((4,))))
    with pytest.raises(IncompatiblePairError) as err:
        _hub(toy_host, tmp_path).plan("toytext", "ae")
    msg = str(err.value)
    assert "no registry recipe" in msg and "no prior" in msg and "--data" in msg


def test_no_bridge_into_the_source_domain_is_explained(toy_host, tmp_path):
    toy_host.unregister("captions")
    with pytest.raises(IncompatiblePairError, match="no loaded bridge connects them"):
        _hub(toy_host, tmp_path).plan("toytext", "toygen")


def test_user_data_must_be_readable_by_the_target(toy_host, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("a\nb\n")
    with pytest.raises(IncompatiblePairError, match="--data holds 'text' but toygen@base encodes 'image'"):
        _hub(toy_host, tmp_path).plan("toytext", "toygen", data=texts)


def test_registry_entry_naming_a_missing_dataset_says_so(toy_host, tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[pairs.x]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "dataset"\ndataset = "nope"\n')
    with pytest.raises(IncompatiblePairError, match="needs dataset 'nope', which no loaded plugin registers"):
        _hub(toy_host, tmp_path, Registry.load([f])).plan("toytext", "toygen")


def test_taps_must_exist(toy_hub):
    with pytest.raises(UnknownExpertError, match="no tap 'deep'"):
        toy_hub.plan("toytext:deep", "toygen")


def test_a_new_bridge_version_reuses_neither_features_nor_translators_of_the_old_text(toy_hub):
    toy_hub.pair("toytext", "toygen", steps=20, n_blocks=1, hidden=8)
    features = set((toy_hub.home / "features").rglob("*.safetensors"))
    bridges = toy_hub.catalog.bridges
    bridges["label-caption"] = dataclasses.replace(bridges["label-caption"], version="2")
    assert toy_hub.plan("toytext", "toygen").to_dict()["bridge_versions"] == ["2"]
    with pytest.raises(CacheError, match="no cached translator"):
        toy_hub.pair("toytext", "toygen", steps=20, n_blocks=1, hidden=8, train_if_missing=False)
    toy_hub.pair("toytext", "toygen", steps=20, n_blocks=1, hidden=8)
    assert set((toy_hub.home / "features").rglob("*.safetensors")) > features  # the captions were re-encoded


def test_a_bridge_version_must_be_a_non_empty_string():
    with pytest.raises(PluginError, match="version"):
        BridgeSpec("b", "label", "text", "m:f", version="").validate()
