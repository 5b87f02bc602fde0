"""The hub: train once, reuse everything cached, refuse anything tampered with."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from toy_util import TOY_REGISTRY

from n2n_hub.base.atomic import sha256_file
from n2n_hub.errors import CacheError, IntegrityError, ShapeError
from n2n_hub.hub import Hub


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_pair_trains_caches_and_reuses(toy_hub, toy_modules):
    calls = toy_modules[0].experts.CALLS
    t = toy_hub.pair("toytext", "toygen")
    assert t.path.is_file() and t.kind == "cinn"
    assert t.metadata["source"]["fingerprint"] and t.metadata["target"]["fingerprint"] == "toygen-weights-v1"
    assert t.metrics["steps"] > 0 and t.metrics["best_val_nll"] is not None
    first = dict(calls)
    again = toy_hub.pair("toytext", "toygen")
    assert again.path == t.path
    assert calls == first  # a cache hit runs no expert


def test_new_hyperparameters_train_a_new_translator_from_cached_features(trained_toy_hub, toy_modules):
    calls = toy_modules[0].experts.CALLS
    a = trained_toy_hub.pair("toytext", "toygen")
    before = dict(calls)
    b = trained_toy_hub.pair("toytext", "toygen", steps=20, hidden=16)
    assert b.path != a.path and b.metrics["steps"] <= 20
    assert calls == before  # features came from the feature store
    assert len(trained_toy_hub.cache.entries()) == 2


@pytest.mark.slow
def test_translate_samples_are_reproducible_and_follow_the_condition(toy_hub):
    t = toy_hub.pair("toytext", "toygen", steps=400)
    r1 = t.translate(["a circle", "a triangle"], n=64, seed=3)
    r2 = t.translate(["a circle", "a triangle"], n=64, seed=3)
    assert torch.equal(r1.latents, r2.latents)
    assert r1.latents.shape == (2, 64, 4) and r1.outputs.shape == (128, 1, 4, 4)
    means = r1.latents.mean(dim=1).mean(dim=1)
    # toyshapes: circle latents centre on -1, triangle latents on +1
    assert means[0] < -0.5 and means[1] > 0.5
    assert r1.latents[0].std(dim=0).min() > 0.05  # diverse, not collapsed


def test_a_pair_samples_at_its_registry_temperature_unless_told_otherwise(toy_hub, toy_host, toy_registry_file,
                                                                         tmp_path):
    cold = toy_hub.pair("toytext", "toygen", steps=20)
    toy_registry_file.write_text(toy_registry_file.read_text().replace(
        'pairs_per_item = 2', 'pairs_per_item = 2\ntemperature = 0.5'))
    hub = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)
    t = hub.pair("toytext", "toygen", steps=20)
    assert t.path == cold.path  # a sampling setting: the cached translator is reused
    assert cold.temperature == 1.0 and t.temperature == 0.5
    default = t.translate(["a circle"], n=4, seed=1, decode=False).latents
    explicit = t.translate(["a circle"], n=4, seed=1, temperature=0.5, decode=False).latents
    other = t.translate(["a circle"], n=4, seed=1, temperature=1.0, decode=False).latents
    assert torch.equal(default, explicit) and not torch.equal(default, other)


def test_residual_and_transfer_round_trip(trained_toy_hub):
    t = trained_toy_hub.pair("toytext", "toygen")
    z = t.sample_latents(["a square"] * 5, n=1, seed=0)[:, 0]
    v = t.residual(["a square"] * 5, z)
    assert v.shape == (5, 4)
    same = t.transfer(z, ["a square"] * 5, ["a square"] * 5)
    assert torch.allclose(same, z, atol=1e-4)
    moved = t.transfer(z, ["a square"] * 5, ["a triangle"] * 5)
    assert (moved.mean() - z.mean()) > 0.5
    with pytest.raises(ShapeError, match=r"expected \(B, 4\)"):
        t.residual(["a square"], torch.zeros(1, 5))


def test_mlp_baseline_is_interchangeable(toy_hub):
    t = toy_hub.pair("toytext", "toygen", translator="mlp", steps=50)
    assert t.kind == "mlp" and t.metrics["best_val_mse"] is not None
    r = t.translate(["a circle"], n=3)
    assert torch.equal(r.latents[0, 0], r.latents[0, 2])  # deterministic: all samples equal


def test_tampered_cache_file_is_refused_and_reported(trained_toy_hub):
    t = trained_toy_hub.pair("toytext", "toygen")
    data = bytearray(t.path.read_bytes())
    data[-3] ^= 0xFF  # flip a weight byte: still a valid safetensors file
    t.path.write_bytes(bytes(data))
    hub = Hub(home=trained_toy_hub.home, host=trained_toy_hub.host, progress=False)
    with pytest.raises(IntegrityError, match="does not match the sha256.*n2n-hub cache rm"):
        hub.pair("toytext", "toygen")
    bad = [p for _, p in hub.cache.verify() if p]
    assert len(bad) == 1


def test_no_train_without_cache_says_how_to_train(toy_hub):
    with pytest.raises(CacheError, match="no cached translator.*n2n-hub pair toytext@base toygen@base"):
        toy_hub.pair("toytext", "toygen", train_if_missing=False)


def _published_registry(tmp_path, url, sha, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # fetching is what these tests exercise
    reg = tmp_path / "pub.toml"
    reg.write_text(TOY_REGISTRY + f'\n[pairs.toy-shapes.published]\nurl = "{url}"\nsha256 = "{sha}"\n')
    return reg


def test_published_translator_is_fetched_and_verified(trained_toy_hub, tmp_path, monkeypatch):
    trained = trained_toy_hub.pair("toytext", "toygen")
    artifact = tmp_path / "published.safetensors"
    artifact.write_bytes(trained.path.read_bytes())
    trained_toy_hub.cache.remove()
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(_published_registry(tmp_path, artifact.as_uri(), sha256_file(artifact), monkeypatch)))
    hub = Hub(home=trained_toy_hub.home, host=trained_toy_hub.host, progress=False, log=lambda m: None)
    fetched = hub.pair("toytext", "toygen", train_if_missing=False)
    assert sha256_file(fetched.path) == sha256_file(artifact)


def test_published_translator_with_wrong_sha256_is_refused(toy_hub, tmp_path, monkeypatch):
    artifact = tmp_path / "evil.safetensors"
    artifact.write_bytes(b"not what was published")
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(_published_registry(tmp_path, artifact.as_uri(), "0" * 64, monkeypatch)))
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=lambda m: None)
    with pytest.raises(IntegrityError, match="refusing it"):
        hub.pair("toytext", "toygen")
    assert hub.cache.entries() == []


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_offline_mode_never_fetches_and_says_so(toy_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(_published_registry(tmp_path, "http://127.0.0.1:9/x", "0" * 64, monkeypatch)))
    monkeypatch.setenv("N2N_HUB_OFFLINE", "1")
    said = []
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=said.append)
    t = hub.pair("toytext", "toygen")  # the registry's own settings: what the published file would answer
    assert t.path.is_file()
    assert any("offline mode is on" in s and "training it locally" in s for s in said)


@pytest.mark.slow
def test_two_processes_pairing_at_once_make_one_translator(plugin_env, tmp_path):
    reg = tmp_path / "reg.toml"
    reg.write_text(TOY_REGISTRY)
    env = {**plugin_env, "N2N_HUB_REGISTRY": str(reg), "N2N_HUB_HOME": str(tmp_path / "shared-home")}
    script = textwrap.dedent("""
        import json, sys
        from n2n_hub import Hub
        t = Hub(progress=False).pair("toytext", "toygen", steps=60)
        z = t.translate(["a circle"], n=4, seed=0).latents
        print(json.dumps({"path": str(t.path), "z": z.flatten().tolist()}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["path"] == results[1]["path"]
    assert results[0]["z"] == results[1]["z"]
    files = [f for f in (tmp_path / "shared-home" / "translators").rglob("*") if f.is_file() and ".locks" not in f.parts]
    assert sorted(f.suffix for f in files) == [".json", ".safetensors"]
