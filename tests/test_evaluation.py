"""Evaluation: the Fréchet distance is the closed form on Gaussians, diversity and consistency mean
what they say, and `n2n-hub evaluate` works offline for both translator kinds."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner

from n2n_hub.errors import ShapeError
from n2n_hub.evaluation.metrics import frechet_distance, frechet_from_moments, mean_pairwise_rms, pooled


def _closed_form(mu1, s1, mu2, s2) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) with scipy's general matrix square root."""
    cross = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross).real)


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_of_diagonal_gaussians_is_the_textbook_formula():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()  # 5 + 5 = 10
    assert frechet_from_moments(mu1, np.diag(sd1 ** 2), mu2, np.diag(sd2 ** 2)) == pytest.approx(expected, abs=1e-10)
    assert expected == pytest.approx(10.0)


def test_frechet_matches_the_closed_form_for_non_commuting_covariances():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        mu1, mu2, s1, s2 = rng.normal(size=d), rng.normal(size=d), _random_cov(rng, d), _random_cov(rng, d)
        assert not np.allclose(s1 @ s2, s2 @ s1)
        assert frechet_from_moments(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=1e-8)


def test_frechet_of_samples_converges_to_the_gaussians_distance():
    rng = np.random.default_rng(1)
    d = 4
    mu1, mu2, s1, s2 = np.zeros(d), np.full(d, 0.5), _random_cov(rng, d), _random_cov(rng, d)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert frechet_distance(torch.from_numpy(x), y) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=0.02)


def test_frechet_is_zero_for_identical_sets_and_finite_for_singular_covariances():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    few = torch.randn(10, 64, generator=torch.Generator().manual_seed(1))  # rank-deficient covariance
    value = frechet_distance(few, few + 1.0)
    assert np.isfinite(value) and value == pytest.approx(64.0, rel=1e-6)  # a pure shift: ‖Δμ‖²
    with pytest.raises(ShapeError, match="dimensions"):
        frechet_distance(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ShapeError, match="NaN"):
        frechet_distance(torch.full((5, 2), float("nan")), torch.zeros(5, 2))


def test_diversity_is_the_mean_pairwise_rms_distance():
    same = torch.ones(3, 4, 10)
    assert mean_pairwise_rms(same) == 0.0
    two = torch.stack([torch.zeros(4), torch.full((4,), 2.0)])[None]  # one condition, two samples 2 apart per dim
    assert mean_pairwise_rms(two) == pytest.approx(2.0)
    with pytest.raises(ShapeError, match="n >= 2"):
        mean_pairwise_rms(torch.zeros(3, 1, 4))
    assert pooled(torch.ones(2, 3, 4, 4)).shape == (2, 3)


def test_evaluation_runs_offline_for_both_translator_kinds(trained_toy_hub, monkeypatch):
    monkeypatch.setenv("N2N_HUB_OFFLINE", "1")
    cinn = trained_toy_hub.evaluate("toytext", "toygen", steps=150, per_condition=4)
    m = cinn.metrics
    assert cinn.kind == "cinn" and cinn.conditions == 120  # toyshapes' 60 test items, 2 captions each
    assert m["nll"] is not None and m["mse"] is None
    assert m["fd_latent"] >= 0 and m["fd_features"] >= 0 and m["fd_features_reconstruction"] >= 0
    assert m["fd_latent_unpaired"] > 0 and m["fd_latent_unpaired"] != m["fd_latent"]  # another reference set
    assert m["fd_latent_floor"] > 0 and m["fd_features_floor"] > 0  # what independent real data scores
    assert m["diversity_latent"] > 0.05 and m["diversity_pixels"] > 0
    assert m["consistency_cosine"] is None  # a text source cannot re-read images
    assert cinn.features == "toygen@base"  # no inception or segmenter installed: the target's own encoder
    mlp = trained_toy_hub.evaluate("toytext", "toygen", translator="mlp", steps=150, per_condition=4, samples=50)
    assert mlp.kind == "mlp" and mlp.conditions == 50
    assert mlp.metrics["nll"] is None and mlp.metrics["mse"] is not None
    assert mlp.metrics["diversity_latent"] == 0.0 and mlp.metrics["diversity_pixels"] == 0.0
    assert "Fréchet distance, latents" in cinn.table() and "NLL" in cinn.table()


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_consistency_re_encodes_samples_with_the_source(toy_hub, toy_registry_file, tmp_path, monkeypatch):
    # toygen -> toygen: pairs come from its prior; the source re-reads the decoded samples exactly
    extra = tmp_path / "self.toml"
    extra.write_text('[pairs.toygen-self]\nsource = "toygen"\ntarget = "toygen"\nrecipe = "target-prior"\n'
                     'samples = 2000\n[pairs.toygen-self.flow]\nn_blocks = 3\nhidden = 32\n'
                     '[pairs.toygen-self.training]\nsteps = 200\nbatch_size = 64\nval_every = 50\n')
    monkeypatch.setenv("N2N_HUB_REGISTRY", os.pathsep.join([str(toy_registry_file), str(extra)]))
    report = toy_hub.evaluate("toygen", "toygen", per_condition=3, samples=200)
    m = report.metrics
    assert m["consistency_cosine_reconstruction"] == pytest.approx(1.0, abs=1e-4)
    assert 0.5 < m["consistency_cosine"] <= 1.0 and 0 < m["consistency_rel_l2"] < 1.0  # samples follow c


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_translator_built_by_hand_is_evaluated_from_values_without_a_hub(toy_host, monkeypatch):
    """toygen's own encodings condition its latents; the cINN, the experts and the data are plain values."""
    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.data.recipes import PairData
    from n2n_hub.evaluation.metrics import FeatureSpace, HeldOut, evaluate_translator
    from n2n_hub.hub import Hub
    from n2n_hub.spec.expert import ExpertAddress
    from n2n_hub.training import TrainConfig, train
    from n2n_hub.translators.translator import Translator
    from n2n_toy.experts import ToyGenerator, load_shapes

    def no_hub(*args, **kwargs):
        raise AssertionError("evaluation constructed a Hub")

    monkeypatch.setattr(Hub, "__init__", no_hub)
    toygen = ToyGenerator(toy_host.collect().experts["toygen"], "base")
    test_items, train_items = load_shapes("test"), load_shapes("train")

    def pairs(items, copies):  # c = z = toygen(image); row i is item i % N
        z = toygen.encode(items["image"]).repeat(copies, 1)
        return PairData(z.clone(), z)

    data = HeldOut(pairs(test_items, 2), pairs(train_items, 1), test_items, train_items)
    module = ConditionalINN(4, ConditionSpec.infer((4,)), n_blocks=3, hidden=32, depth=2)
    address = ExpertAddress("toygen", None, "base")
    translator = Translator(module, {}, toygen, toygen, address, address)
    features = FeatureSpace("toygen@base", toygen)

    untrained = evaluate_translator(translator, data, features=features, per_condition=3)
    train(module, data.train.source, data.train.target, TrainConfig(steps=200, batch_size=64, val_every=50,
                                                                     progress=False))
    module.eval()
    trained = evaluate_translator(translator, data, features=features, per_condition=3)
    assert (trained.source, trained.target, trained.kind, trained.features) == (
        "toygen@base", "toygen@base", "cinn", "toygen@base")
    assert trained.conditions == 120 and trained.translator_path is None
    m = trained.metrics
    assert m["nll"] < untrained.metrics["nll"] - 1.0 and m["fd_latent"] < untrained.metrics["fd_latent"]
    # the real items were given: reconstructions and independent real items are measured too
    assert m["fd_features_reconstruction"] == pytest.approx(0.0, abs=1e-6) and m["fd_features_floor"] > 0
    # toygen re-reads decoded real latents exactly, and the samples follow their condition
    assert m["consistency_cosine_reconstruction"] == pytest.approx(1.0, abs=1e-4)
    assert m["consistency_cosine"] > untrained.metrics["consistency_cosine"] and m["consistency_cosine"] > 0.9

    latents_only = evaluate_translator(translator, HeldOut(data.test, data.train), features=features, per_condition=3)
    assert latents_only.metrics["fd_features_floor"] is None and latents_only.metrics["fd_latent"] == m["fd_latent"]
    assert evaluate_translator(translator, data, per_condition=3).metrics["fd_features"] is None
    uneven = HeldOut(PairData(data.test.source[:119], data.test.target[:119]), data.train, test_items, train_items)
    with pytest.raises(ShapeError, match="119 held-out pairs do not repeat the 60 held-out items"):
        evaluate_translator(translator, uneven, features=features, per_condition=3)


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    from n2n_hub.cli.commands import cli

    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_evaluate_command_prints_a_table_or_json(run):
    out = run("evaluate", "toytext", "toygen", "--steps", "40", "--per-condition", "3")
    assert out.exit_code == 0, out.output
    assert "toytext@base -> toygen@base (cinn" in out.output and "Fréchet distance, latents" in out.output
    data = json.loads(run("evaluate", "toytext", "toygen", "--steps", "40", "--translator", "mlp", "--json",
                          "--samples", "20", "--per-condition", "2").output)
    assert data["kind"] == "mlp" and data["conditions"] == 20 and data["metrics"]["mse"] is not None
    assert set(data) >= {"source", "target", "translator_path", "features", "metrics"}


def test_evaluate_command_error_paths(run):
    unknown = run("evaluate", "toytxt", "toygen")
    assert unknown.exit_code == 1 and "unknown expert 'toytxt'" in unknown.output
    assert "Traceback" not in unknown.output and len(unknown.output.strip().splitlines()) == 1
    missing = run("evaluate", "toytext", "toygen", "--steps", "33", "--no-train")
    assert missing.exit_code == 1 and "no cached translator" in missing.output
    bad_features = run("evaluate", "toytext", "toygen", "--steps", "40", "--features", "toytext")
    assert bad_features.exit_code == 1 and "reads 'text', but toygen outputs 'image'" in bad_features.output
    bad_kind = run("evaluate", "toytext", "toygen", "--translator", "gan")
    assert bad_kind.exit_code == 1
