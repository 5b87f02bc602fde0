"""The segmenter expert: its taps have the shapes it declares, its shipped weights segment
the animals, and its spatial taps condition translators through the conv embedder."""

from __future__ import annotations


import pytest
import torch
from blob_plugin import BLOB_CLASSES, load_blobs
from click.testing import CliRunner

from n2n_hub.errors import MissingWeightsError, ShapeError, UnknownExpertError


@pytest.fixture(scope="module")
def animals_test():
    from n2n_animals.data import load

    return load("test")


# -- the shipped expert -------------------------------------------------------------------------------
def test_every_tap_has_the_shape_its_spec_declares(blob_hub, animals_test):
    spec = blob_hub.expert_spec("segmenter")
    assert set(spec.taps) == {"early", "middle", "last", "labels"}
    assert spec.representation == spec.taps["last"]
    expert = blob_hub.load_expert("segmenter@animals")
    images = animals_test["image"][:5]
    for tap, rep in spec.taps.items():
        z = expert.encode(images, tap=tap)
        assert tuple(z.shape) == (5, *rep.shape), tap
        assert len(rep.shape) == 3 and rep.num_classes is None  # spatial: the hub picks the conv embedder
        assert expert.representation_for(tap) == rep
    assert torch.equal(expert.encode(images), expert.encode(images, tap="last"))


def test_labels_tap_is_the_one_hot_prediction(blob_hub, animals_test):
    expert = blob_hub.load_expert("segmenter")
    images = animals_test["image"][::100]
    onehot = expert.encode(images, tap="labels")
    assert torch.equal(onehot.sum(dim=1), torch.ones(images.shape[0], 32, 32))
    assert torch.equal(onehot.argmax(dim=1), expert.segment(images))


def test_shipped_weights_are_small_and_segment_the_test_split(blob_hub, animals_test):
    from n2n_segmenter.expert import NAMED
    from n2n_segmenter.model import label_maps
    from n2n_segmenter.train import scores

    assert NAMED["animals"].stat().st_size < 5_000_000
    expert = blob_hub.load_expert("segmenter")
    assert expert.info["test_pixel_accuracy"] > 0.9 and expert.info["test_mean_iou"] > 0.4
    images, labels = animals_test["image"][::5], animals_test["label"][::5]
    s = scores(expert.segment(images), label_maps(images, labels, expert.config.foreground_threshold), 11)
    assert s["pixel_accuracy"] > 0.9
    assert abs(s["mean_iou"] - expert.info["test_mean_iou"]) < 0.1  # the recorded score is what it does


def test_bad_inputs_taps_and_variants_are_explained(blob_hub, tmp_path):
    expert = blob_hub.load_expert("segmenter")
    with pytest.raises(ShapeError, match=r"reads images of shape \(B, 1, 32, 32\)"):
        expert.encode(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ShapeError, match="values in \\[-1, 1\\]"):
        expert.encode(torch.full((1, 1, 32, 32), 255.0))
    with pytest.raises(UnknownExpertError, match="no tap 'deep'.*early"):
        blob_hub.plan("segmenter:deep", "tinyae")
    with pytest.raises(MissingWeightsError, match="train-expert segmenter"):
        blob_hub.load_expert(f"segmenter@{tmp_path / 'none.safetensors'}")


# -- translation from spatial taps --------------------------------------------------------------------
def test_spatial_taps_train_through_the_conv_embedder(blob_hub):
    from n2n_hub.cinn.embedders import SpatialEmbedder

    t = blob_hub.pair("segmenter:middle", "tinyae")
    assert t.kind == "cinn" and t.module.condition.kind == "spatial"
    assert t.module.condition.shape == (64, 8, 8)
    assert isinstance(t.module.embedder, SpatialEmbedder)
    assert t.metrics["steps"] == 12 and t.metrics["best_val_nll"] is not None
    images = load_blobs("test")["image"][:3]
    r = t.translate(images, n=4, seed=0)
    assert r.latents.shape == (3, 4, 8) and r.outputs.shape == (12, 1, 32, 32)
    assert r.latents[0].std(dim=0).min() > 0  # samples differ


def test_mlp_and_cinn_are_interchangeable_through_the_hub(blob_hub):
    images = load_blobs("test")["image"][:2]
    results = {}
    for kind in ("cinn", "mlp"):
        t = blob_hub.pair("segmenter:last", "tinyae", translator=kind)
        assert t.kind == kind and t.module.condition.kind == "spatial"
        results[kind] = t.translate(images, n=3, seed=1)
        assert results[kind].latents.shape == (2, 3, 8)
    assert torch.equal(results["mlp"].latents[:, 0], results["mlp"].latents[:, 2])  # a mean, not samples
    assert not torch.equal(results["cinn"].latents[:, 0], results["cinn"].latents[:, 2])
    assert len(blob_hub.cache.entries()) == 2  # two translators, both cached


# -- training the expert --------------------------------------------------------------------------------
def test_train_expert_command_writes_weights_that_load(blob_host, tmp_path):
    from n2n_hub.cli.commands import cli
    from n2n_segmenter.checkpoint import load_model

    out = tmp_path / "seg.safetensors"  # the plugin's `train-expert segmenter` is found through its host
    res = CliRunner().invoke(cli, ["train-expert", "segmenter", "--dataset", "blobs", "--epochs", "1",
                                   "--batch-size", "48", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "pixel accuracy" in res.output and "mean IoU" in res.output
    model, info = load_model(out)
    assert model.config.class_names == ("background", *BLOB_CLASSES)
    assert {"test_pixel_accuracy", "test_mean_iou", "seed", "epochs"} <= set(info)
    missing = CliRunner().invoke(cli, ["train-expert", "segmenter", "--dataset", "blobs", "--encoder-weights",
                                       "imagenet", "--out", str(out)])
    assert missing.exit_code == 1 and "never downloads" in missing.output and "Traceback" not in missing.output
    nodata = CliRunner().invoke(cli, ["train-expert", "segmenter", "--dataset", "nope"])
    assert nodata.exit_code == 1 and "no dataset 'nope'" in nodata.output


def test_pretrained_encoder_weights_load_from_a_local_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    from n2n_hub.errors import InputError
    from n2n_segmenter import encoder_weights as ew
    from n2n_segmenter.config import SegmenterConfig
    from n2n_segmenter.model import Segmenter

    rgb = resnet18().state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in rgb.items()}, str(path))
    model = Segmenter(SegmenterConfig())
    assert ew.load_into(model.encoder, ew.resolve(str(path), "resnet18")) > 0
    assert torch.allclose(model.encoder.conv1.weight, rgb["conv1.weight"].sum(1, keepdim=True))  # RGB → gray
    assert torch.equal(model.encoder.layer1[0].conv1.weight, rgb["layer1.0.conv1.weight"])
    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="lack .* of the encoder's tensors"):
        ew.load_into(model.encoder, tmp_path / "other.safetensors")
    assert ew.resolve("none", "resnet18") is None
    with pytest.raises(MissingWeightsError, match="no such file"):
        ew.resolve(str(tmp_path / "absent.pth"), "resnet18")


@pytest.mark.slow
def test_registration_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, n2n_segmenter; from n2n_hub.catalog.host import PluginHost; h = PluginHost(); h._loaded = True; "
            "h.register(n2n_segmenter, 'segmenter'); c = h.collect(); "
            "print(sorted(c.experts), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['segmenter'] False"
