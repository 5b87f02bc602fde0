"""The ``biggan`` expert: safe weight loading, the [z̃, ĥ] latent, decoding, the prior, dequantisation."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from n2n_hub.errors import CacheError, InputError, MissingWeightsError, OfflineError
from n2n_hub.base.paths import experts_dir

import n2n_biggan.dequantizer as dq
from n2n_biggan import DEFAULT_VARIANT, RANDOM_EMBEDDING, biggan_spec, imagenet_class_names
from n2n_biggan.dequantizer import DequantizerSettings
from n2n_biggan.expert import BigGANExpert, random_class_embedding

TINY = dict(output_dim=32, z_dim=16, class_embed_dim=16, channel_width=8, num_classes=1000,
            layers=[(True, 16, 8), (True, 8, 4), (True, 4, 2), (False, 2, 1)], attention_layer_position=2,
            n_stats=51)


def tiny_biggan(seed: int = 0) -> torch.nn.Module:
    """A random 32×32 BigGAN-deep with finite outputs.

    The library leaves the final batch norm's affine weights uninitialised, and spectral
    norm's power-iteration vectors start random; a few training-mode passes settle them.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**TINY))
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.zero_()
        model.train()
        for _ in range(10):
            model(torch.randn(2, 16), torch.eye(1000)[:2], 1.0)
    return model.eval()


def save_tiny(folder: Path, model: torch.nn.Module, weights: str = "bin") -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.config.to_json_string())
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if weights == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return folder


def lay_out_hf_cache(cache: Path, repo_id: str, files_from: Path) -> None:
    """The Hugging Face cache layout: content-named blobs, a snapshot of symlinks, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    for f in files_from.iterdir():
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        link = repo / "snapshots" / commit / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_biggan()


@pytest.fixture(scope="module")
def bin_dir(model, tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("biggan-bin"), model, "bin")


@pytest.fixture(scope="module")
def expert(bin_dir, tmp_path_factory) -> BigGANExpert:
    """A loaded tiny expert whose dequantiser is trained once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("N2N_HUB_HOME", str(tmp_path_factory.mktemp("home")))
        e = BigGANExpert(biggan_spec(), str(bin_dir), progress=False)
        e.dequantizer  # noqa: B018 - train (or load) now, under this module's home
        return e


# -- loading ------------------------------------------------------------------------------
def test_loads_from_a_folder_with_pytorch_model_bin_or_safetensors(model, bin_dir, tmp_path):
    st_dir = save_tiny(tmp_path / "st", model, "safetensors")
    z = torch.randn(2, 32)
    a = BigGANExpert(biggan_spec(), str(bin_dir))
    b = BigGANExpert(biggan_spec(), str(st_dir))
    assert a.weights_location.weights.name == "pytorch_model.bin"
    assert b.weights_location.weights.name == "model.safetensors"
    images = a.decode(z)
    assert torch.isfinite(images).all() and torch.equal(images, b.decode(z))


def test_named_variant_is_found_in_the_library_cache(model):
    save_tiny(experts_dir("biggan") / "biggan-deep-128", model, "safetensors")
    e = BigGANExpert(biggan_spec(), "biggan-deep-128")
    assert e.weights_location.source == "cache" and e.image_shape == (3, 32, 32)


def test_hub_id_is_served_from_the_hugging_face_cache_offline(bin_dir, tmp_path):
    lay_out_hf_cache(tmp_path / "hf-cache", "tiny-org/tiny-biggan", bin_dir)
    e = BigGANExpert(biggan_spec(), "tiny-org/tiny-biggan")
    assert e.weights_location.source == "hub"
    assert e.weights_fingerprint == BigGANExpert(biggan_spec(), str(bin_dir)).weights_fingerprint


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_weights_file_that_would_run_code_is_refused(bin_dir, tmp_path, writer):
    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copyfile(bin_dir / "config.json", evil / "config.json")
    marker = tmp_path / "payload-ran"
    payload = {"embeddings.weight": _Payload(marker)}
    if writer == "pickle":
        (evil / "pytorch_model.bin").write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, evil / "pytorch_model.bin")
    with pytest.raises(CacheError, match="refusing"):
        BigGANExpert(biggan_spec(), str(evil))
    assert not marker.exists()


def test_missing_weights_offline_say_which_files_go_where():
    with pytest.raises(OfflineError) as err:
        BigGANExpert(biggan_spec(), DEFAULT_VARIANT)
    msg = str(err.value)
    target = experts_dir("biggan") / DEFAULT_VARIANT
    for piece in ("config.json", "model.safetensors", "pytorch_model.bin", str(target),
                  "biggan-deep-256-pytorch_model.bin", "biggan@/path/to/folder"):
        assert piece in msg
    with pytest.raises(OfflineError, match="hf download osanseviero/BigGAN-deep-128"):
        BigGANExpert(biggan_spec(), "biggan-deep-128")


def test_a_folder_without_weights_names_the_files_it_needs(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"config\.json and model\.safetensors \(or pytorch_model\.bin\)"):
        BigGANExpert(biggan_spec(), str(tmp_path))


# -- latent, decoding, prior --------------------------------------------------------------
@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_latent_is_noise_then_class_embedding_with_dims_from_the_config(expert):
    assert (expert.layout.noise_dim, expert.layout.embed_dim) == (16, 16)
    assert expert.latent_representation().shape == (32,)
    assert biggan_spec().latent.shape == (256,)  # biggan-deep: z 128 + embedding 128


def test_decode_feeds_the_embedding_path_and_renders_images_in_range(expert, model):
    labels = torch.tensor([1, 207, 980])
    noise = torch.randn(3, 16)
    z = torch.cat([noise, model.embeddings.weight.t()[labels]], dim=1)
    images = expert.decode(z)
    with torch.no_grad():
        reference = model(noise, torch.nn.functional.one_hot(labels, 1000).float(), 1.0)
    assert images.shape == (3, 3, 32, 32)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    assert torch.allclose(images, reference, atol=1e-6)


def test_sample_prior_reports_labels_and_samples_near_their_class(expert):
    g = torch.Generator().manual_seed(0)
    s = expert.sample_prior(64, generator=g)
    labels = s.extras["label"]
    assert s.latents.shape == (64, 32) and labels.shape == (64,) and labels.dtype == torch.int64
    noise, _ = expert.layout.split(s.latents)
    assert noise.abs().max() <= 2.0 * expert.truncation
    described = expert.describe_latent(s.latents)
    assert [d["class_id"] for d in described] == labels.tolist()
    assert described[0]["class_name"] == imagenet_class_names()[int(labels[0])]
    again = expert.sample_prior(64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.latents, s.latents)


def test_sample_prior_takes_given_labels(expert):
    s = expert.sample_prior(3, labels=[5, 5, 999])
    assert s.extras["label"].tolist() == [5, 5, 999]
    with pytest.raises(InputError):
        expert.sample_prior(1, labels=[1000])


def test_truncation_must_be_in_the_range_the_generator_has_statistics_for(bin_dir):
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        BigGANExpert(biggan_spec(), str(bin_dir), truncation=1.5)


# -- dequantisation -----------------------------------------------------------------------
def test_dequantised_embedding_stays_close_relative_to_class_spacing(expert):
    report = expert.dequantizer_report
    assert report.error_to_spacing < 0.3 and report.nearest_class_accuracy > 0.99
    labels = torch.arange(1000)
    h_hat = expert.dequantize(labels, torch.Generator().manual_seed(1))
    h = expert.embedding
    error = (h_hat - h).norm(dim=1).mean()
    assert error < 0.3 * report.mean_class_spacing
    assert not torch.equal(h_hat, expert.dequantize(labels, torch.Generator().manual_seed(2)))  # stochastic


def test_dequantizer_trains_once_per_weights_and_is_reused_from_the_cache(bin_dir, monkeypatch):
    calls = []
    real = dq.train_dequantizer
    quick = DequantizerSettings(width=64, latent_dim=16, steps=20)
    monkeypatch.setattr(DequantizerSettings, "for_dim", classmethod(lambda cls, dim: quick))
    monkeypatch.setattr(dq, "train_dequantizer", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = BigGANExpert(biggan_spec(), str(bin_dir), progress=False)
    a = first.dequantize([3, 4], torch.Generator().manual_seed(0))
    path = experts_dir("biggan") / first.weights_fingerprint / "dequantizer.safetensors"
    assert calls == [1] and first.dequantizer_path == path and path.is_file()
    second = BigGANExpert(biggan_spec(), str(bin_dir), progress=False)
    b = second.dequantize([3, 4], torch.Generator().manual_seed(0))
    assert calls == [1] and torch.equal(a, b)
    assert second.dequantizer_report == first.dequantizer_report


def test_a_damaged_dequantizer_file_is_retrained(bin_dir, monkeypatch):
    quick = DequantizerSettings(width=64, latent_dim=16, steps=20)
    monkeypatch.setattr(DequantizerSettings, "for_dim", classmethod(lambda cls, dim: quick))
    first = BigGANExpert(biggan_spec(), str(bin_dir), progress=False)
    first.dequantizer  # noqa: B018
    first.dequantizer_path.write_bytes(b"not a safetensors file")
    second = BigGANExpert(biggan_spec(), str(bin_dir), progress=False)
    assert second.dequantizer_report.nearest_class_accuracy > 0.9
    assert second.dequantizer_path.read_bytes()[:8] != b"not a sa"


# -- the random-embedding stand-in ----------------------------------------------------------
def test_random_embedding_variant_samples_without_generator_weights():
    cheap = DequantizerSettings(width=64, latent_dim=128, steps=10)
    e = BigGANExpert(biggan_spec(), RANDOM_EMBEDDING, dequantizer=cheap, progress=False)
    assert e.latent_representation().shape == (256,)
    assert torch.equal(e.embedding, random_class_embedding())
    s = e.sample_prior(4, torch.Generator().manual_seed(0))
    assert s.latents.shape == (4, 256)
    with pytest.raises(MissingWeightsError, match="cannot render"):
        e.decode(s.latents)
    same = BigGANExpert.from_class_embedding(random_class_embedding())
    assert same.fingerprint() == e.fingerprint()


def test_from_class_embedding_accepts_any_matrix_and_names():
    e = BigGANExpert.from_class_embedding(torch.eye(3) * 5, noise_dim=4, class_names=["a", "b", "c"],
                                          dequantizer=DequantizerSettings(width=64, latent_dim=3, steps=10),
                                          progress=False)
    s = e.sample_prior(2, labels=[2, 0])
    assert s.latents.shape == (2, 7)
    assert [d["class_name"] for d in e.describe_latent(s.latents)] == ["c", "a"]


# -- registration ---------------------------------------------------------------------------
def test_class_names_are_torchvisions_imagenet_categories():
    import torchvision

    assert list(imagenet_class_names()) == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    assert biggan_spec().class_names[1] == "goldfish"


@pytest.mark.slow
def test_registering_the_experts_imports_no_model_code():
    code = ("import sys, n2n_bert, n2n_biggan; specs = []; n2n_bert.register_experts(specs.append); "
            "n2n_biggan.register_experts(specs.append); [s.validate() for s in specs]; "
            "heavy = [m for m in ('transformers', 'pytorch_pretrained_biggan', 'huggingface_hub') if m in sys.modules]; "
            "print(heavy, [s.id for s in specs])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] ['bert', 'biggan']"


def test_class_scores_rank_the_sampled_class_first_and_feed_prompt_scoring(expert):
    from types import SimpleNamespace

    from n2n_hub.evaluation.prompts import _topk_hits, latent_classifier

    s = expert.sample_prior(64, generator=torch.Generator().manual_seed(1))
    scores = expert.class_scores(s.latents)
    labels = s.extras["label"]
    assert scores.shape == (64, 1000)
    assert torch.equal(scores.argmax(1), labels)
    # a latent whose class part is moved to another class's embedding is scored as that class
    noise, _ = expert.layout.split(s.latents)
    moved = torch.cat([noise, expert.embedding[(labels + 1) % 1000]], dim=1)
    assert _topk_hits(expert.class_scores(moved), labels, 1).sum() == 0
    assert _topk_hits(expert.class_scores(moved), (labels + 1) % 1000, 1).mean() == 1.0
    name, names, fn = latent_classifier(SimpleNamespace(target=expert,  # type: ignore[arg-type]
                                                        target_address=SimpleNamespace(id="biggan")), None)
    assert name == "biggan.class_scores" and len(names) == 1000 and fn == expert.class_scores
