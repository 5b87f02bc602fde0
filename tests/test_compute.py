"""Every translator records what its training cost (Sec. A / Table S1): time, device, processes, steps,
samples and matmul FLOPs, and `pair`, `cache list --json` and `evaluate` show it."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from n2n_hub.cli.commands import cli
from n2n_hub.training.compute import EnergyMeter, Stopwatch, step_flops


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


def test_step_flops_match_the_analytic_count_of_a_two_layer_mlp():
    b, i, h, o = 16, 12, 32, 5
    net = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))
    z, c = torch.randn(b, o), torch.randn(b, i)
    flops = step_flops(lambda z_, c_: (net(c_) - z_).pow(2).sum(1), list(net.parameters()), c, z)
    forward = 2 * b * (i * h + h * o)
    weight_grads = 2 * b * (i * h + h * o)
    hidden_grad = 2 * b * h * o  # the input needs no gradient, so the first layer's is not computed
    assert flops == forward + weight_grads + hidden_grad
    assert all(p.grad is None for p in net.parameters())  # counting leaves the gradients alone


def test_flow_flops_per_sample_do_not_depend_on_the_batch():
    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.training import objective

    flow = ConditionalINN(8, ConditionSpec.infer((6,), "float32"), n_blocks=2, hidden=16)
    flow.initialize(torch.randn(64, 8), torch.randn(64, 6))
    _, f = objective(flow)
    params = list(flow.parameters())
    small = step_flops(f, params, torch.randn(4, 6), torch.randn(4, 8))
    large = step_flops(f, params, torch.randn(32, 6), torch.randn(32, 8))
    assert small > 0 and large / 32 == pytest.approx(small / 4, rel=1e-2)


def test_energy_is_absent_on_cpu_never_guessed():
    assert EnergyMeter(torch.device("cpu")).kwh() is None
    rec = Stopwatch(torch.device("cpu")).record(steps=3, samples_seen=30, flops_per_sample=10.0, world_size=1)
    assert rec.energy_kwh is None and rec.energy_source is None and rec.train_flops == 300.0


def test_pair_records_the_training_cost_and_every_view_shows_it(run):
    out = run("pair", "toytext", "toygen", "--steps", "30", "--batch-size", "16")
    assert out.exit_code == 0 and "training cost:" in out.output and "30 steps, 480 samples" in out.output
    [entry] = json.loads(run("cache", "list", "--json").output)
    cost = entry["compute"]
    assert cost["device"] == "cpu" and cost["world_size"] == 1 and cost["steps"] == entry["metrics"]["steps"] == 30
    assert cost["samples_seen"] == 30 * 16 and cost["flops_per_sample"] > 0
    assert cost["train_flops"] == pytest.approx(cost["flops_per_sample"] * 30 * 16)
    assert 0 < cost["wall_time_s"] < 60 and cost["energy_kwh"] is None
    run("cache", "rm", "--all")
    run("pair", "toytext", "toygen", "--steps", "30")  # evaluate selects the translator by steps only
    report = json.loads(run("evaluate", "toytext", "toygen", "--steps", "30", "--per-condition", "3", "--json").output)
    assert report["compute"]["steps"] == 30 and report["compute"]["train_flops"] > 0
    table = run("evaluate", "toytext", "toygen", "--steps", "30", "--per-condition", "3")
    assert "training cost:" in table.output and "TFLOP" in table.output


def test_gpu_energy_comes_from_the_driver_counter_and_says_so(monkeypatch):
    import sys
    import types

    readings = iter([5_000_000, 5_000_000 + 1_800_000_000])  # millijoules: 0.5 kWh apart
    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: next(readings))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    watch = Stopwatch(torch.device("cuda", 0))
    rec = watch.record(steps=10, samples_seen=100, flops_per_sample=1.0, world_size=2)
    assert rec.energy_kwh == pytest.approx(1.0) and "nvml" in rec.energy_source  # rank 0's 0.5 kWh × 2
    assert rec.device_name == "Fake GPU" and "kWh (nvml" in rec.summary()
