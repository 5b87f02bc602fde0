"""The training step is compiled where the run repays it, says so, and reuses compiled kernels across runs."""

from __future__ import annotations

import json

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.training import TrainConfig, train
from n2n_hub.training.compiling import CostRecord, compile_dir, pays, shape_signature


def _flow() -> ConditionalINN:
    return ConditionalINN(4, ConditionSpec((3,), "vector"), n_blocks=2, hidden=16)


def _data(n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(n, 3, generator=g)
    return c, torch.cat([c, c[:, :1] * c[:, 1:2]], dim=1) + 0.3 * torch.randn(n, 4, generator=g)


def _run(steps: int, compile: bool | None, **kw) -> tuple[ConditionalINN, list[dict]]:
    events: list[dict] = []
    model = _flow()
    train(model, *_data(), TrainConfig(steps=steps, batch_size=32, lr=3e-3, warmup_steps=5, val_every=10,
                                       progress=False, compile=compile, **kw), log=events.append)
    return model, [e for e in events if e["event"] == "compile"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    return tmp_path


def test_compiling_pays_only_when_the_steps_left_save_more_than_it_costs():
    assert pays(10_000, 0.1, 1.25, 60.0)  # 200 s saved for 60 s of compiling
    assert not pays(100, 0.1, 1.25, 60.0)  # 2 s saved
    assert not pays(10_000, 0.1, 1.0, 0.0)  # no speed-up, nothing to gain


def test_a_short_run_stays_eager_and_says_why(home):
    _, said = _run(30, None)
    assert [e["compiled"] for e in said] == [False]
    assert "not compiling the training step" in said[0]["message"] and "--compile" in said[0]["message"]
    _, said = _run(30, False)
    assert said == []  # asked not to: nothing to decide
    assert not (home / "compile" / "costs.json").exists()


def test_a_recorded_cost_for_these_shapes_decides_and_each_compile_is_recorded(home, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn: compiled.append(fn) or fn)  # the decision, not inductor
    signature = shape_signature(_flow(), 32, torch.device("cpu"))
    record = CostRecord(compile_dir() / "costs.json")
    record.put(signature, compile_s=0.0, speedup=2.0)
    _, said = _run(30, None)
    assert compiled and said[0]["compiled"] is True and "recorded for these shapes" in said[0]["message"]
    saved = json.loads((home / "compile" / "costs.json").read_text())[signature]
    assert set(saved) == {"compile_s", "speedup"} and saved["speedup"] > 0  # measured again, for the next run


def test_compile_is_how_a_step_is_computed_not_part_of_a_translators_key():
    assert "compile" not in TrainConfig().to_dict()
    from n2n_hub.hub import _KEYLESS_TRAIN_FIELDS

    assert "compile" in _KEYLESS_TRAIN_FIELDS


@pytest.mark.slow
def test_a_compiled_run_trains_like_eager_and_a_second_run_reuses_the_compiled_kernels(home):
    from torch._dynamo.utils import counters

    eager, _ = _run(12, False)
    torch._dynamo.reset()
    counters.clear()
    first, said = _run(12, True)
    assert said[0]["compiled"] is True
    assert any((home / "compile").rglob("*.py")), "inductor's kernels go under the hub's home"
    cold_misses = counters["inductor"]["fxgraph_cache_miss"]
    assert cold_misses > 0
    torch._dynamo.reset()  # a new process as far as dynamo is concerned: only the disk cache remains
    counters.clear()
    second, _ = _run(12, True)
    assert counters["inductor"]["fxgraph_cache_hit"] >= cold_misses
    assert counters["inductor"]["fxgraph_cache_miss"] == 0
    for name, p in eager.state_dict().items():
        assert torch.allclose(first.state_dict()[name], p, atol=1e-4), name
        assert torch.equal(first.state_dict()[name], second.state_dict()[name]), name
