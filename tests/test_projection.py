"""The condition projection: a linear probe fitted to labelled training conditions, read by the flow."""

from __future__ import annotations

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.cinn.projection import ConditionProjection, fit_probe
from n2n_hub.errors import InputError, RegistryError, TrainingError
from n2n_hub.data.recipes import item_labels
from n2n_hub.catalog.registry import Registry
from n2n_hub.training import TrainConfig, train
from n2n_hub.translators.file import load, save


def separable(n: int, dim: int = 12, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points labelled by the argmax of a known linear map (a separation the probe must find)."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99))
    x = torch.randn(n, dim, generator=g) * 0.1 + 0.3  # small, offset entries, like sentence embeddings
    return x, ((x - 0.3) @ truth.T).argmax(1), truth


def flow_with_projection(classes: int = 4, dim_c: int = 12) -> ConditionalINN:
    return ConditionalINN(3, ConditionSpec((dim_c,), "vector"), n_blocks=2, hidden=16, seed=1,
                          condition_projection=classes)


def test_probe_recovers_a_known_linear_separation_on_unseen_points():
    x, y, _ = separable(3000)
    weight, bias = fit_probe(x, y, 4)
    x_new, y_new, _ = separable(2000, seed=1)
    accuracy = ((x_new.double() @ weight.T + bias).argmax(1) == y_new).double().mean()
    assert accuracy > 0.97
    assert weight.shape == (4, 12) and bias.shape == (4,)


def test_probe_is_deterministic_bit_for_bit():
    x, y, _ = separable(1500)
    a, b = fit_probe(x, y, 4), fit_probe(x, y, 4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    torch.manual_seed(123)  # the global RNG plays no part
    c = fit_probe(x, y, 4)
    assert torch.equal(a[0], c[0])


def test_duplicated_rows_fit_like_weighted_rows():
    x, y, _ = separable(400)
    w1, b1 = fit_probe(x, y, 4)
    w2, b2 = fit_probe(x.repeat(3, 1), y.repeat(3), 4)  # same objective: every row three times
    assert torch.allclose(w1, w2, atol=1e-6) and torch.allclose(b1, b2, atol=1e-6)


def test_labels_beyond_the_projection_size_are_refused_clearly():
    x, y, _ = separable(100)
    with pytest.raises(InputError, match="set condition_projection to the number of classes"):
        fit_probe(x, y + 4, 4)


def test_a_projection_that_was_never_fitted_refuses_to_sample():
    flow = flow_with_projection()
    assert flow.needs_condition_fit()
    with pytest.raises(TrainingError, match="never fitted"):
        flow.sample(torch.randn(2, 12), n=3)


def test_fitted_flow_reads_only_the_class_logits():
    x, y, _ = separable(600)
    flow = flow_with_projection()
    flow.fit_condition(x, y)
    assert not flow.needs_condition_fit()
    flow.initialize(torch.randn(64, 3), x[:64])
    flow.eval()
    logits = flow.condition_logits(x)
    assert logits.shape == (600, 4) and (logits.argmax(1) == y).float().mean() > 0.95
    # two conditions with equal logits give equal samples: the flow sees nothing else
    c = x[:1].repeat(2, 1)
    c[1] += torch.linalg.svd(flow.projection.weight).Vh[-1]  # a direction the probe ignores
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    s1, s2 = flow.sample(c[:1], n=2, generator=g1), flow.sample(c[1:], n=2, generator=g2)
    assert torch.allclose(s1, s2, atol=1e-4)


def test_projection_round_trips_through_the_translator_file(tmp_path):
    x, y, _ = separable(300)
    flow = flow_with_projection()
    flow.fit_condition(x, y)
    flow.initialize(torch.randn(64, 3), x[:64])
    path = tmp_path / "t.safetensors"
    meta = save(path, flow.eval())
    assert meta["config"]["condition_projection"] == 4 and meta["config"]["condition_projection_kind"] == "probe"
    loaded, _ = load(path)
    assert not loaded.needs_condition_fit()
    assert torch.equal(loaded.projection.weight, flow.projection.weight)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(flow.sample(x[:3], n=2, generator=g1), loaded.sample(x[:3], n=2, generator=g2))


def test_flows_without_a_projection_keep_their_config():
    flow = ConditionalINN(3, ConditionSpec((12,), "vector"), n_blocks=2, hidden=16)
    assert "condition_projection" not in flow.config() and not flow.needs_condition_fit()


def test_unknown_projection_kind_and_spatial_conditions_are_refused():
    with pytest.raises(InputError, match="condition_projection_kind"):
        ConditionProjection(12, 4, kind="pca")
    with pytest.raises(ValueError, match="vector conditions"):
        ConditionalINN(3, ConditionSpec((2, 4, 4), "spatial"), n_blocks=1, hidden=8, condition_projection=4)


def test_trainer_fits_the_projection_to_the_training_labels_before_step_0():
    x, y, truth = separable(640)
    z = torch.randn(640, 3) + torch.nn.functional.one_hot(y, 4).float()[:, :3] * 3
    flow = flow_with_projection()
    events: list[dict] = []
    train(flow, x, z, TrainConfig(steps=3, batch_size=64, progress=False, val_every=3), labels=y, log=events.append)
    assert any(e["event"] == "fit" for e in events)
    assert (flow.condition_logits(x).argmax(1) == y).float().mean() > 0.95
    other = flow_with_projection()  # the same data and seed give the same probe
    train(other, x, z, TrainConfig(steps=3, batch_size=64, progress=False, val_every=3), labels=y)
    assert torch.equal(other.projection.weight, flow.projection.weight)


def test_trainer_refuses_a_projection_without_labels():
    x, y, _ = separable(256)
    with pytest.raises(TrainingError, match="without labels"):
        train(flow_with_projection(), x, torch.randn(256, 3), TrainConfig(steps=2, batch_size=64, progress=False))


def test_item_labels_come_from_an_integer_label_domain_only():
    assert torch.equal(item_labels({"label": [2, 0, 1]}), torch.tensor([2, 0, 1]))
    assert item_labels({"label": ["cat", "dog"]}) is None and item_labels({"image": torch.zeros(2)}) is None


def test_registry_accepts_the_probe_and_refuses_other_projection_kinds(tmp_path, monkeypatch):
    reg = tmp_path / "r.toml"
    head = '[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "target-prior"\n[pairs.x.flow]\ncondition_projection = 10\n'
    reg.write_text(head + 'condition_projection_kind = "probe"\n')
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    assert Registry.load().entries["x"].flow["condition_projection_kind"] == "probe"
    reg.write_text(head + 'condition_projection_kind = "lda"\n')
    with pytest.raises(RegistryError, match=r"condition_projection_kind must be one of \['probe'\]"):
        Registry.load()
    reg.write_text(head.replace("= 10", "= 0"))
    with pytest.raises(RegistryError, match="condition_projection"):
        Registry.load()


def test_prompt_evaluation_reports_what_the_projection_tells_the_flow():
    from n2n_hub.evaluation.prompts import probe_hits

    x, y, _ = separable(400)
    flow = flow_with_projection()
    flow.fit_condition(x, y)
    assert float(probe_hits(flow, x[:50], y[:50], 4).mean()) > 0.9
    assert float(probe_hits(flow, x[:50], (y[:50] + 1) % 4, 4).mean()) < 0.1
    plain = ConditionalINN(3, ConditionSpec((12,), "vector"), n_blocks=1, hidden=8)
    assert probe_hits(plain, x[:5], y[:5], 4) is None


def test_the_default_pair_reads_captions_through_a_probe():
    entry = Registry.load().entries["bert-vaegan-animals"]
    assert entry.flow["condition_projection"] == 10 and entry.flow["condition_projection_kind"] == "probe"
    assert entry.options["augment"] == ["hflip"] and entry.training["target_noise"] == 0.05


def test_the_registry_accepts_exactly_the_projection_kinds_the_flow_builds():
    """registry.toml is checked without torch, so it keeps its own list of kinds: it must not drift."""
    from n2n_hub.cinn.projection import PROJECTION_KINDS
    from n2n_hub.base.validation import FLOW_CHOICES

    assert tuple(FLOW_CHOICES["condition_projection_kind"]) == tuple(PROJECTION_KINDS)
