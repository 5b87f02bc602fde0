"""The translator contract: a kind registered from outside trains, saves, loads and samples through the hub."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from n2n_hub.spec import kinds
from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.cinn.embedders import make_embedder
from n2n_hub.errors import InputError
from n2n_hub.hub import Hub
from n2n_hub.spec.kinds import TranslatorKind, get_kind, register_kind, unregister_kind
from n2n_hub.training import TrainConfig, objective, train
from n2n_hub.training.batches import TensorBatches, held_out_split


class DiagonalGaussian(nn.Module):
    """A third-party kind: z ~ N(μ(c), diag σ(c)²), trained by its NLL."""

    kind = "diag-gauss"
    arch_version = 1

    def __init__(self, dim: int, condition: ConditionSpec, hidden: int = 32) -> None:
        super().__init__()
        self.dim, self.condition, self.hidden = dim, condition, hidden
        self.embedder = make_embedder(condition, hidden, hidden)
        self.head = nn.Linear(hidden, 2 * dim)

    def config(self) -> dict:
        return {"dim": self.dim, "condition": self.condition.to_dict(), "hidden": self.hidden}

    @classmethod
    def from_config(cls, cfg: dict) -> "DiagonalGaussian":
        return cls(cfg["dim"], ConditionSpec.from_dict(cfg["condition"]), cfg["hidden"])

    def _params(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.head(self.embedder(c)).chunk(2, dim=-1)
        return mean, log_std.clamp(-6, 3)

    def loss(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        mean, log_std = self._params(c)
        per_dim = 0.5 * ((z - mean) / log_std.exp()).pow(2) + log_std + 0.5 * math.log(2 * math.pi)
        return per_dim.sum(dim=1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, n: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.condition.check(c)
        mean, log_std = self._params(c)
        eps = torch.randn(c.shape[0], n, self.dim, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean.unsqueeze(1) + eps * log_std.exp().unsqueeze(1) * temperature


@pytest.fixture
def gauss_kind():
    register_kind(TranslatorKind("diag-gauss", DiagonalGaussian, objective="nll", options=frozenset({"hidden"})))
    yield
    unregister_kind("diag-gauss")


def test_a_registered_kind_trains_caches_and_samples_through_the_hub(gauss_kind, toy_hub, toy_host, tmp_path):
    t = toy_hub.pair("toytext", "toygen", translator="diag-gauss", steps=300, hidden=16)
    assert t.kind == "diag-gauss" and isinstance(t.module, DiagonalGaussian) and t.module.hidden == 16
    assert t.metrics["best_val_nll"] < t.metrics["reference_nll_per_dim"]  # the condition explains the target
    r = t.translate(["a circle", "a triangle"], n=64, seed=1)
    means = r.latents.mean(dim=(1, 2))
    assert means[0] < -0.5 and means[1] > 0.5  # toyshapes: circles centre on -1, triangles on +1
    assert r.latents[0].std(dim=0).min() > 0.05  # it samples, not a point estimate

    # a second hub finds the file and rebuilds the module through the kind's from_config
    again = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None).pair(
        "toytext", "toygen", translator="diag-gauss", steps=300, hidden=16, train_if_missing=False)
    assert again.path == t.path and type(again.module) is DiagonalGaussian
    same = again.translate(["a circle"], n=8, seed=2).latents
    assert torch.equal(same, t.translate(["a circle"], n=8, seed=2).latents)


def test_an_unknown_kind_is_refused_naming_the_registered_ones(gauss_kind, toy_hub):
    with pytest.raises(InputError, match=r"unknown translator kind 'nope'.*'cinn'.*'mlp'.*'diag-gauss'"):
        toy_hub.pair("toytext", "toygen", translator="nope")


def test_a_kind_cannot_silently_take_a_taken_name():
    with pytest.raises(InputError, match="already registered"):
        register_kind(TranslatorKind("cinn", DiagonalGaussian))
    assert get_kind("cinn").cls is ConditionalINN


def test_data_dependent_init_is_public_and_done_once_before_training():
    torch.manual_seed(0)
    flow = ConditionalINN(3, ConditionSpec.infer((2,)), n_blocks=2, hidden=8)
    assert flow.needs_data_init() and kinds.needs_data_init(flow)
    assert not any(b.actnorm.is_initialized for b in flow.blocks) and not flow.whitening.is_initialized
    c = torch.randn(256, 2)
    z = torch.randn(256, 3) * torch.tensor([5.0, 1.0, 0.2]) + 3.0
    train(flow, c, z, TrainConfig(steps=1, batch_size=64, val_fraction=0, progress=False))
    assert not flow.needs_data_init()
    assert all(b.actnorm.is_initialized for b in flow.blocks) and flow.whitening.is_initialized
    # the whitening was fitted to the training targets: it maps them to mean 0, covariance ≈ I
    v, _ = flow.whitening(z)
    assert v.mean(0).abs().max() < 1e-3
    assert (torch.cov(v.T, correction=0) - torch.eye(3)).abs().max() < 0.05  # up to the ridge
    assert objective(flow)[0] == "nll"


class SelfCentring(DiagonalGaussian):
    """A third-party kind with a data-dependent init; ``rows`` training targets asked for besides the batch."""

    kind = "self-centring"
    rows = 0

    def __init__(self, dim: int, condition: ConditionSpec, hidden: int = 32) -> None:
        super().__init__(dim, condition, hidden)
        self.calls: list[tuple[int, int | None]] = []

    def needs_data_init(self) -> bool:
        return not self.calls

    def data_init_rows(self) -> int:
        return self.rows

    def initialize(self, z: torch.Tensor, c: torch.Tensor, **extra: torch.Tensor) -> None:
        assert set(extra) <= {"whitening_rows"}
        rows = extra.get("whitening_rows")
        self.calls.append((z.shape[0], None if rows is None else rows.shape[0]))


@pytest.mark.parametrize("rows", [0, 16])
def test_the_trainer_initialises_any_kind_through_the_contract_with_the_targets_it_asks_for(rows):
    register_kind(TranslatorKind("self-centring", SelfCentring, objective="nll"))
    try:
        module = SelfCentring(3, ConditionSpec.infer((2,)), hidden=8)
        module.rows = rows
        g = torch.Generator().manual_seed(0)
        c, z = torch.randn(256, 2, generator=g), torch.randn(256, 3, generator=g)
        z[::7, 0] = float("nan")  # rows with NaN are never handed to the initialisation
        train(module, c, z, TrainConfig(steps=3, batch_size=64, val_fraction=0.2, progress=False, seed=0))
    finally:
        unregister_kind("self-centring")
    # once, before step 0: the first batch's finite pairs, and (when asked) every finite training target
    (train_c, train_z), _ = held_out_split(c, z, 0.2, seed=0)
    first_c, first_z = TensorBatches(train_c, train_z, 64, seed=0).batch(0)
    finite_first = int(torch.isfinite(first_z).all(dim=1).sum())
    finite_targets = int(torch.isfinite(train_z).all(dim=1).sum())
    assert module.calls == [(finite_first, finite_targets if rows else None)]


def test_an_unregistered_module_cannot_be_trained():
    class Stray(nn.Module):
        kind = "stray"

    with pytest.raises(InputError, match="kind 'stray' is not registered"):
        objective(Stray())
