"""The GPU fast path, checked where it can be: a training step that never waits on the device,
a flow that torch.compile takes whole, and bf16 autocast that keeps the flow's precise maths in
float32. Where CUDA exists the same checks also run on it, with CUDA's own sync detector."""

from __future__ import annotations

import contextlib

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.base.distributed import World
from n2n_hub.training import TrainConfig, objective, train_step
from n2n_hub.training.step import adam, clip_in_update

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _flow(device: str = "cpu") -> tuple[ConditionalINN, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(64, 6, generator=g)
    z = torch.tanh(c @ torch.randn(6, 8, generator=g)) + 0.3 * torch.randn(64, 8, generator=g)
    flow = ConditionalINN(8, ConditionSpec.infer((6,), "float32"), n_blocks=2, hidden=32)
    flow.initialize(z, c)
    return flow.to(device).train(), c.to(device), z.to(device)


@contextlib.contextmanager
def no_host_reads(device: str):
    """Fail on any read of a tensor's value into Python (and on CUDA, on any synchronising call)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the training step read a tensor back to the host")

    names = ("item", "tolist", "__bool__", "__float__", "__int__")
    saved = {n: getattr(torch.Tensor, n) for n in names}
    for n in names:
        setattr(torch.Tensor, n, refuse)
    if device == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("device", DEVICES)
def test_a_training_step_never_reads_back_and_skips_a_bad_batch_on_the_device(device):
    flow, c, z = _flow(device)
    _, f = objective(flow)
    params = list(flow.parameters())
    opt = adam(params, TrainConfig(lr=1e-3))
    with no_host_reads(device):
        good = train_step(f, opt, params, c, z, 10.0, contextlib.nullcontext(), World(), True)
    assert torch.isfinite(good).all() and float(opt.state[params[0]]["step"]) == 1.0
    before = {k: v.detach().clone() for k, v in flow.state_dict().items()}
    moments = [opt.state[p]["exp_avg"].clone() for p in params]
    bad_z = z.clone()
    bad_z[3, 2] = float("nan")
    with no_host_reads(device):
        bad = train_step(f, opt, params, c, bad_z, 10.0, contextlib.nullcontext(), World(), True)
    assert not torch.isfinite(bad).all()
    assert all(torch.equal(before[k], v) for k, v in flow.state_dict().items())  # weights untouched
    assert all(torch.equal(m, opt.state[p]["exp_avg"]) for m, p in zip(moments, params))
    assert float(opt.state[params[0]]["step"]) == 1.0  # Adam's step count did not advance


@pytest.mark.parametrize("clip", [0.02, 1e6, 0.0])
def test_a_fused_adam_clips_inside_its_update_as_clip_grad_norm_would(clip):
    """Same weights after steps as clipping the gradients in place and stepping: clipped, unclipped, clip off."""
    flows = [_flow()[0] for _ in range(2)]
    _, c, z = _flow()
    (mine, mine_loss), (ref, ref_loss) = ((f, objective(f)[1]) for f in flows)
    mine_params, ref_params = list(mine.parameters()), list(ref.parameters())
    mine_opt = adam(mine_params, TrainConfig(lr=1e-2))
    ref_opt = torch.optim.Adam(ref_params, lr=1e-2)  # per-tensor: clips in a pass of its own
    norms = []
    for _ in range(3):
        stat = train_step(mine_loss, mine_opt, mine_params, c, z, clip, contextlib.nullcontext(), World(), False)
        mine_opt.step()
        ref_opt.zero_grad(set_to_none=True)
        ref_loss(z, c).float().mean().backward()
        norm = (torch.nn.utils.clip_grad_norm_(ref_params, clip) if clip > 0
                else torch.nn.utils.get_total_norm([p.grad for p in ref_params]))
        ref_opt.step()
        assert torch.allclose(stat[1], norm, rtol=1e-5)  # the norm before clipping, as clip_grad_norm_ returns it
        # read on the host: no divisor (and no pass of stores over the gradients) while the norm is within the clip
        assert (mine_opt.grad_scale is not None) == (0 < clip < float(norm))
        norms.append(float(norm))
    assert (clip == 0.02) == (min(norms) > clip > 0)  # the first case clips every step, the others never
    for a, b in zip(mine_params, ref_params):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_on_the_device_the_clip_is_always_a_divisor_so_nothing_is_read_back():
    p = torch.nn.Parameter(torch.ones(3))
    opt = adam([p], TrainConfig(lr=1e-2))
    clip_in_update(opt, torch.tensor(0.5), 10.0, on_host=False)
    assert opt.grad_scale is not None and float(opt.grad_scale) == 1.0
    clip_in_update(opt, torch.tensor(40.0), 10.0, on_host=False)
    assert float(opt.grad_scale) == pytest.approx(4.0)
    clip_in_update(opt, torch.tensor(40.0), 0.0, on_host=True)
    assert opt.grad_scale is None


@pytest.mark.slow
def test_the_flow_compiles_whole_for_training_and_sampling():
    flow, c, z = _flow()
    _, f = objective(flow)
    for fn, args in ((lambda z_, c_: f(z_, c_).mean(), (z, c)), (flow.inverse, (z, c))):
        explained = torch._dynamo.explain(fn)(*args)
        assert explained.graph_break_count == 0, explained.break_reasons
        assert explained.graph_count == 1


def test_bf16_autocast_keeps_whitening_and_log_determinants_in_float32():
    flow, c, z = _flow()
    flow.eval()
    seen = []
    flow.whitening.register_forward_hook(lambda m, args, out: seen.append(out[0]))
    with torch.no_grad():
        v32, ld32 = flow(z, c)
        nll32 = flow.nll(z, c)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v16, ld16 = flow(z, c)
            nll16 = flow.nll(z, c)
    assert v16.dtype == ld16.dtype == nll16.dtype == torch.float32
    assert seen[2].dtype == torch.float32 and torch.equal(seen[0], seen[2])  # the whitening is exact
    # bf16 matmuls in the subnets perturb v a little; the log-det sums stay float32.
    assert float((v16 - v32).abs().max()) < 0.1
    assert float((ld16 - ld32).abs().max() / ld32.abs().max()) < 1e-2
    assert float((nll16 - nll32).abs().mean()) / 8 < 0.02  # nats/dim
