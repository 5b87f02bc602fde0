"""The trainer: NaN guard, early stopping, exact resume, seeded reproducibility, config checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from n2n_hub.cinn.baseline import MLPTranslator
from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.errors import InputError, ShapeError, TrainingError
from n2n_hub.training import TrainConfig, TrainResult, evaluate, lr_at, train, train_loader

SPEC = ConditionSpec((3,), "vector")



def flow(seed: int = 0) -> ConditionalINN:
    return ConditionalINN(4, SPEC, n_blocks=2, hidden=16, seed=seed)


def data(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, 3, generator=g)
    z = torch.cat([c, c[:, :1] * c[:, 1:2]], dim=1) + 0.3 * torch.randn(n, 4, generator=g)
    return c, z


def cfg(**kw) -> TrainConfig:
    base = dict(steps=30, batch_size=32, lr=3e-3, warmup_steps=5, val_every=10, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- the objective and the result ---------------------------------------------------------
def test_cinn_training_lowers_the_validation_nll_and_reports_it_per_dim() -> None:
    c, z = data()
    model = flow()
    before = evaluate(model, c, z)
    result = train(model, c, z, cfg(steps=60))
    assert isinstance(result, TrainResult) and result.objective == "nll"
    assert result.best_val_nll is not None and result.best_val_nll < before
    assert result.val_bits_per_dim == pytest.approx(result.val_nll / math.log(2))
    assert result.reference_nll_per_dim == pytest.approx(0.5 * math.log(2 * math.pi * math.e))
    assert result.steps == 60 and result.skipped_steps == 0 and not result.stopped_early
    assert result.samples_per_s > 0 and result.wall_time_s > 0 and math.isfinite(result.train_loss)
    assert [h["step"] for h in result.history] == [10, 20, 30, 40, 50, 60]
    assert result.val_mse is None
    assert set(result.to_dict()) >= {"val_nll", "best_val_nll", "best_step", "samples_per_s", "history"}
    assert not model.training  # handed back ready to use


def test_the_mlp_baseline_trains_on_mean_squared_error_per_dim() -> None:
    c, z = data()
    torch.manual_seed(0)
    model = MLPTranslator(4, SPEC, hidden=32)
    before = evaluate(model, c, z)
    result = train(model, c, z, cfg(steps=60))
    assert result.objective == "mse" and result.val_nll is None
    assert result.best_val_mse < before
    with torch.no_grad():
        assert evaluate(model, c, z) == pytest.approx(((model(c) - z) ** 2).mean().item(), rel=1e-5)


def test_first_batch_initialises_actnorm_before_the_first_step() -> None:
    c, z = data()
    model = flow()
    seen: list[dict] = []
    train(model, c, z * 10 + 5, cfg(steps=1, val_fraction=0.0), log=seen.append)
    assert all(bool(b.actnorm.initialized) for b in model.blocks)
    assert not any(e["event"] == "val" for e in seen)  # val_fraction 0 and no val: no validation


def test_the_whitening_is_fitted_to_every_training_target_not_just_the_first_batch() -> None:
    c, z = data()
    z = z @ torch.tensor([[2.0, 1.0, 0, 0], [0, 1.0, 0, 0], [0, 0.5, 3.0, 0], [1.0, 0, 0, 0.2]]) + 4
    model = flow()
    train(model, c, z, cfg(steps=1), val=(c[:64], z[:64]))
    w = model.whitening
    assert torch.allclose(w.mean, z.mean(0), atol=1e-5)
    cov = torch.cov(z.T.double(), correction=0)
    ridge = 1e-4 * cov.diagonal().mean()
    assert torch.allclose((w.lower @ w.lower.T).double(), cov + ridge * torch.eye(4, dtype=torch.float64), atol=1e-4)


def test_peeking_at_a_loader_for_the_whitening_keeps_the_batch_order() -> None:
    c, z = data(96)
    batches = [(c[i:i + 32], z[i:i + 32]) for i in (0, 32, 64)]
    reference = flow()
    reference.initialize(z[:32], c[:32], whitening_rows=z)  # what the trainer should do by itself
    train_loader(reference, batches, constant_lr(steps=5))
    model = flow()
    train_loader(model, batches, constant_lr(steps=5))
    assert torch.allclose(model.whitening.mean, z.mean(0), atol=1e-6)
    assert_same_weights(weights(model), weights(reference))


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_the_floor() -> None:
    config = TrainConfig(steps=110, lr=1e-3, warmup_steps=10, min_lr_ratio=0.01)
    assert lr_at(0, config) == pytest.approx(1e-4)
    assert lr_at(9, config) == pytest.approx(1e-3)
    assert lr_at(10, config) == pytest.approx(1e-3)
    assert lr_at(109, config) == pytest.approx(1e-5)
    lrs = [lr_at(s, config) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


# -- NaN guard ----------------------------------------------------------------------------
def constant_lr(**kw) -> TrainConfig:
    return cfg(warmup_steps=0, min_lr_ratio=1.0, **kw)


def test_a_nan_batch_is_skipped_without_touching_weights_or_adam_state() -> None:
    c, z = data(96)
    good1, good2 = (c[:32], z[:32]), (c[32:64], z[32:64])
    poisoned = (c[64:], z[64:].clone())
    poisoned[1][5, 2] = float("nan")

    reference = flow()
    reference.initialize(good1[1], good1[0], whitening_rows=z[:64])  # both fitted to the same data
    train_loader(reference, [good1, good2], constant_lr(steps=2))
    events: list[dict] = []
    model = flow()
    model.initialize(good1[1], good1[0], whitening_rows=z[:64])
    result = train_loader(model, [good1, poisoned, good2], constant_lr(steps=3), log=events.append)

    # Same weights as if the poisoned batch had never been there: no update, no Adam moment or count.
    assert_same_weights(weights(model), weights(reference))
    assert result.skipped_steps == 1
    skips = [e for e in events if e["event"] == "skip"]
    assert [e["step"] for e in skips] == [1] and "non-finite loss" in skips[0]["message"]


def test_repeated_non_finite_steps_raise_training_error_with_a_fix() -> None:
    c, z = data(64)
    bad = (c[32:], torch.full_like(z[32:], float("inf")))
    model = flow()
    with pytest.raises(TrainingError, match="3 consecutive.*Lower the learning rate.*normalise.*NaN"):
        train_loader(model, [(c[:32], z[:32])] + [bad] * 5, constant_lr(steps=6, max_bad_steps=3))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_an_exploding_learning_rate_never_leaves_non_finite_weights() -> None:
    c, z = data()
    model = flow()
    try:
        train(model, c, z * 1e3, cfg(steps=40, lr=1e4, warmup_steps=0, grad_clip=0.0, max_bad_steps=2))
    except TrainingError:
        pass
    assert all(torch.isfinite(p).all() for p in model.parameters())


# -- validation and early stopping --------------------------------------------------------
def test_early_stopping_restores_the_best_weights() -> None:
    # Validation pairs contradict the training pairs: the better the fit, the worse validation gets.
    c, z = data()
    val = (c[:128], -z[:128])
    torch.manual_seed(0)
    model = MLPTranslator(4, SPEC, hidden=32)
    events: list[dict] = []
    result = train(model, c, z, cfg(steps=200, val_every=5, patience=2), val=val, log=events.append)
    assert result.stopped_early and result.steps < 200
    assert len(result.history) == 3  # the first check sets the best; two without gain stop it
    assert result.best_step == 5 and result.steps == 15
    assert result.best_val_mse == min(h["val"] for h in result.history) < result.val_mse
    assert evaluate(model, *val) == pytest.approx(result.best_val_mse, rel=1e-12)
    assert any(e["event"] == "early_stop" for e in events)


def test_patience_zero_never_stops_early() -> None:
    c, z = data()
    torch.manual_seed(0)
    model = MLPTranslator(4, SPEC, hidden=32)
    result = train(model, c, z, cfg(steps=30, val_every=5, patience=0), val=(c[:64], -z[:64]))
    assert not result.stopped_early and result.steps == 30


def test_the_held_out_split_is_carved_from_the_seed() -> None:
    c, z = data()
    a = train(flow(), c, z, cfg(steps=10, val_every=10))
    b = train(flow(), c, z, cfg(steps=10, val_every=10))
    d = train(flow(), c, z, cfg(steps=10, val_every=10, seed=1))
    assert a.history == b.history != d.history


# -- reproducibility and resume -----------------------------------------------------------
def test_the_same_seed_gives_bit_identical_weights_and_another_seed_does_not() -> None:
    c, z = data()
    runs = []
    for seed in (0, 0, 1):
        model = flow()
        train(model, c, z, cfg(seed=seed))
        runs.append(weights(model))
    assert_same_weights(runs[0], runs[1])
    assert not torch.equal(runs[0]["cond_proj.weight"], runs[2]["cond_proj.weight"])


def test_training_leaves_the_global_rng_untouched() -> None:
    c, z = data()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    train(flow(), c, z, cfg(steps=5))
    assert torch.equal(torch.get_rng_state(), state)


class Crash(Exception):
    pass


def test_resuming_from_a_checkpoint_ends_with_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    c, z = data()
    config = cfg(steps=40, val_every=10, patience=3, checkpoint_every=10)

    uninterrupted = flow()
    expected = train(uninterrupted, c, z, config)

    ckpt = tmp_path / "run" / "ckpt.safetensors"
    resumable = TrainConfig(**{**config.to_dict(), "checkpoint_path": ckpt})

    def crash_after_step_25(event: dict) -> None:  # dies between checkpoints, mid-way through the run
        if event["event"] == "val" and event["step"] == 30:
            raise Crash

    model = flow()
    with pytest.raises(Crash):
        train(model, c, z, resumable, log=crash_after_step_25)
    assert ckpt.exists() and sorted(p.name for p in ckpt.parent.iterdir()) == ["ckpt.safetensors"]

    resumed_model = flow()  # a fresh process would rebuild the model from scratch
    resumed = train(resumed_model, c, z, resumable)
    assert resumed.resumed_from == 20
    assert_same_weights(weights(resumed_model), weights(uninterrupted))
    assert resumed.history == expected.history
    assert (resumed.best_step, resumed.best_val_nll) == (expected.best_step, expected.best_val_nll)


@pytest.mark.parametrize("kind", ["noisy cinn", "mlp"])
def test_a_run_resumed_between_checkpoints_ends_bit_identical_to_an_uninterrupted_one(tmp_path: Path, kind: str):
    """Noise draws, Adam moments, the loss average and the skip count all continue where the checkpoint left them."""
    c, z = data()
    z[7, 1] = float("nan")  # the batches holding this row are skipped: the count must survive the resume
    config = cfg(steps=45, val_every=10, patience=0, checkpoint_every=15, weight_decay=0.01,
                 **({"condition_noise": 0.1, "target_noise": 0.05} if kind == "noisy cinn" else {}))

    def build() -> torch.nn.Module:
        torch.manual_seed(3)
        return flow() if kind == "noisy cinn" else MLPTranslator(4, SPEC, hidden=16)

    uninterrupted = build()
    expected = train(uninterrupted, c, z, config)

    resumable = TrainConfig(**{**config.to_dict(), "checkpoint_path": tmp_path / "ckpt.safetensors"})

    def crash_at_step_40(event: dict) -> None:
        if event["event"] == "val" and event["step"] == 40:
            raise Crash

    with pytest.raises(Crash):
        train(build(), c, z, resumable, log=crash_at_step_40)
    resumed_model = build()
    resumed = train(resumed_model, c, z, resumable)
    assert resumed.resumed_from == 30
    assert_same_weights(weights(resumed_model), weights(uninterrupted))
    assert resumed.history == expected.history and resumed.train_loss == expected.train_loss
    assert resumed.skipped_steps == expected.skipped_steps > 0


def test_a_checkpoint_from_another_run_is_refused(tmp_path: Path) -> None:
    c, z = data()
    ckpt = tmp_path / "ckpt.safetensors"
    train(flow(), c, z, cfg(steps=10, checkpoint_path=ckpt, checkpoint_every=5))
    with pytest.raises(TrainingError, match="another run.*delete it"):
        train(flow(), c, z, cfg(steps=10, lr=1e-2, checkpoint_path=ckpt, checkpoint_every=5))
    ckpt.write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="unreadable.*delete it"):
        train(flow(), c, z, cfg(steps=10, checkpoint_path=ckpt))


def test_checkpoints_hold_no_pickle(tmp_path: Path) -> None:
    c, z = data()
    ckpt = tmp_path / "ckpt.safetensors"
    train(flow(), c, z, cfg(steps=10, checkpoint_path=ckpt, checkpoint_every=5))
    from safetensors.torch import load_file

    keys = load_file(str(ckpt)).keys()  # a plain safetensors file: tensors only, scalars as JSON
    assert any(k.startswith("model.") for k in keys) and any(k.startswith("optim.") for k in keys)
    assert any(k.startswith("best.") for k in keys) and "rng.cpu" in keys


# -- inputs -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,pattern", [
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"batch_size": 1.5}, "batch_size must be an integer"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"lr": float("nan")}, "lr must be a positive number"),
    ({"min_lr_ratio": 2.0}, r"min_lr_ratio must be in \[0, 1\]"),
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
    ({"patience": -1}, "patience must be an integer >= 0"),
    ({"grad_clip": -1.0}, "grad_clip must be >= 0"),
    ({"device": "tpu"}, "device"),
    ({"max_bad_steps": 0}, "max_bad_steps must be an integer >= 1"),
    ({"target_noise": -0.1}, "target_noise must be >= 0"),
    ({"target_noise": float("inf")}, "target_noise must be >= 0"),
])
def test_invalid_config_values_are_refused_with_the_field_named(kw: dict, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        TrainConfig(**kw)


def test_mismatched_data_raises_shape_error() -> None:
    c, z = data()
    with pytest.raises(ShapeError, match=r"target has shape \(512, 3\), expected \(N, 4\)"):
        train(flow(), c, z[:, :3], cfg())
    with pytest.raises(ShapeError, match="512 source rows but 100 target rows"):
        train(flow(), c, z[:100], cfg())
    with pytest.raises(ShapeError, match=r"expected \(B, 3\)"):
        train(flow(), c[:, :2], z, cfg())


def test_bf16_on_cpu_is_ignored_and_said_so() -> None:
    c, z = data()
    events: list[dict] = []
    result = train(flow(), c, z, cfg(steps=5, bf16=True), log=events.append)
    assert any("bf16" in e["message"] and e["event"] == "warning" for e in events)
    assert math.isfinite(result.val_nll)


def test_a_data_loader_with_a_validation_loader_trains_and_validates() -> None:
    c, z = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(c[:448], z[:448]), batch_size=32,
                                         shuffle=True, generator=torch.Generator().manual_seed(0))
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(c[448:], z[448:]), batch_size=32)
    result = train_loader(flow(), loader, cfg(steps=20), val_loader=val)
    assert result.steps == 20 and [h["step"] for h in result.history] == [10, 20]


# -- target noise -------------------------------------------------------------------------
def test_target_noise_widens_what_the_flow_learns_by_its_variance_and_enters_the_config_record() -> None:
    """Targets N(0, 0.2²) with noise σ = 0.3 are learnt as N(0, 0.2² + 0.3²): the flow models the noisy targets."""
    g = torch.Generator().manual_seed(1)
    z = 0.2 * torch.randn(2048, 4, generator=g)
    c = torch.zeros(2048, 3)
    variances = {}
    for noise in (0.0, 0.3):
        model = flow()
        train(model, c, z, cfg(steps=400, lr=5e-3, val_every=400, target_noise=noise))
        with torch.no_grad():
            variances[noise] = model.sample(c[:1], n=8192).reshape(-1, 4).var(dim=0).mean().item()
    assert variances[0.0] == pytest.approx(0.04, rel=0.15)
    assert variances[0.3] == pytest.approx(0.04 + 0.09, rel=0.15)
    assert "target_noise" not in cfg().to_dict()  # off: the keys of translators trained before it stay valid
    assert cfg(target_noise=0.05).to_dict()["target_noise"] == 0.05


# -- held-out items -----------------------------------------------------------------------
def test_with_groups_validation_holds_out_whole_items_never_copies_of_training_items() -> None:
    from n2n_hub.training.batches import held_out_split

    items = torch.arange(100)
    groups = items.repeat(4)  # every item four times (four captions of one image, or mirrors)
    c = torch.randn(400, 3)
    z = groups.float()[:, None].repeat(1, 4)  # a target that names its item
    (tc, tz), (vc, vz) = held_out_split(c, z, 0.1, seed=0, groups=groups)
    train_items, val_items = set(tz[:, 0].long().tolist()), set(vz[:, 0].long().tolist())
    assert len(val_items) == 10 and not train_items & val_items and len(train_items) == 90
    assert vz.shape[0] == 40 and tz.shape[0] == 360
    again = held_out_split(c, z, 0.1, seed=0, groups=groups)
    assert torch.equal(again[1][1], vz)  # deterministic from the seed
    assert set(held_out_split(c, z, 0.1, seed=1, groups=groups)[1][1][:, 0].long().tolist()) != val_items


def test_too_few_items_to_hold_one_out_is_an_input_error_naming_items() -> None:
    from n2n_hub.training.batches import held_out_split

    with pytest.raises(InputError, match="1 items are too few"):
        held_out_split(torch.randn(8, 3), torch.randn(8, 4), 0.1, 0, groups=torch.zeros(8, dtype=torch.long))


def test_recipes_give_item_groups_so_the_hub_holds_out_whole_images(toy_host, tmp_path, monkeypatch) -> None:
    from test_recipes import _hub

    body = ('[pairs.toy-shapes]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "dataset"\ndataset = "toyshapes"\n'
            'source_from = "label"\nbridges = ["label-caption"]\npairs_per_item = 3\n'
            '[pairs.toy-shapes.options]\naugment = ["hflip"]\n')
    hub = _hub(toy_host, tmp_path, monkeypatch, body)
    pairs = hub.training_pairs(hub.plan("toytext", "toygen"))
    n_images = pairs.target.shape[0] // 6  # 3 captions of each image and of its mirror
    assert pairs.groups is not None and torch.equal(torch.bincount(pairs.groups), torch.full((n_images,), 6))
    # Rows of one group are one image: its own encoding or its mirror's.
    first = pairs.target[pairs.groups == 0]
    assert len(torch.unique(first, dim=0)) <= 2


# -- the package's shape ------------------------------------------------------------------
def test_the_trainer_reaches_the_flow_only_through_the_translator_contract_and_shares_only_public_names() -> None:
    import ast

    import n2n_hub.training

    for path in Path(n2n_hub.training.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "cinn" not in module, f"{path.name} imports {module}"
                if node.level == 1:  # a sibling module
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, f"{path.name} imports {private} from {module}"
            elif isinstance(node, ast.Import):
                assert not any("cinn" in a.name for a in node.names), path.name
