"""Where a training step of the flow spends its time: GEMM, and everything that is not GEMM.

Runs the hub's own training step (``n2n_hub.training.train_step``: loss, backward, clip,
Adam) under torch.profiler and sorts every op's self CPU time into a few kinds: GEMM,
elementwise, permutations, log-det sums and other reductions, allocation and copies, the
optimizer, and the rest. It prints the shares and the ten costliest ops, and, beside the
step, one plain sampling call (``sample``) profiled the same way.

Then it times the step against its floor, interleaved: the same matrix products on copies of
the same weights (every forward product, then every gradient product in reverse, as the step
runs them), the gradient norm and the fused Adam update, with nothing else, beside the
torch.mm roofline at the step's shapes (bench_cinn's, measured before and after, the best
counts). No implementation of this step, eager
or compiled, does less than the floor's work, so its share of the roofline bounds the step's.

    python bench/profile_step.py                       # 8 blocks, hidden 512, batch 256 (bench_compile's size)
    python bench/profile_step.py --blocks 20 --hidden 1024 --batch 64   # the Net2Net size (bench_cinn's)
    python bench/profile_step.py --compile             # the compiled step beside the eager one and the floor
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own start/stop chatter

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cinn import forward_matmul_flops, matmul_roofline  # noqa: E402
from machine import cpu_name, interleaved, loadavg, wait_policy  # noqa: E402

KINDS = (
    ("GEMM", ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm", "addmv", "mv")),
    ("optimizer", ("adam", "_foreach", "lerp", "addcdiv", "addcmul", "sqrt_", "_fused")),
    ("permutation", ("index_select", "gather", "scatter", "index", "flip", "roll", "permute", "take")),
    ("log-det and reductions", ("sum", "mean", "norm", "logsumexp", "prod", "amax", "max", "min")),
    ("allocation and copies", ("empty", "zeros", "ones", "full", "copy_", "clone", "contiguous", "cat", "stack",
                               "to", "_to_copy", "resize_", "fill_", "zero_", "split", "chunk", "narrow",
                               "slice", "select", "view", "reshape", "expand", "t", "transpose", "unsqueeze",
                               "squeeze", "detach", "as_strided", "alias")),
    ("elementwise", ("add", "sub", "mul", "div", "exp", "log", "tanh", "atan", "sigmoid", "leaky_relu", "relu",
                     "where", "clamp", "neg", "pow", "rsqrt", "square", "abs", "sign", "threshold", "gelu",
                     "softplus", "maximum", "minimum", "lt", "gt", "ge", "le", "eq", "ne", "isfinite", "all",
                     "any", "bitwise", "logical", "masked_fill", "native_dropout", "silu")),
)


def kind_of(op: str) -> str:
    name = op.removeprefix("aten::").lower()
    base = name.rstrip("_")
    for kind, stems in KINDS:
        for stem in stems:
            if base == stem.rstrip("_") or base.startswith(stem + "_") or (stem.startswith("_") and stem in name):
                return kind
    if "backward" in name:
        return "autograd bookkeeping"
    return "other"


def breakdown(prof: profile) -> tuple[dict[str, float], list[tuple[str, float]]]:
    by_kind: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for evt in prof.key_averages():
        if not evt.key.startswith("aten::"):
            continue
        by_kind[kind_of(evt.key)] += evt.self_cpu_time_total
        by_op[evt.key] += evt.self_cpu_time_total
    return dict(by_kind), sorted(by_op.items(), key=lambda kv: -kv[1])[:10]


def show(title: str, prof: profile, steps: int) -> None:
    by_kind, top = breakdown(prof)
    total = sum(by_kind.values()) or 1.0
    print(f"\n{title}: {total / steps / 1e3:.1f} ms of op time per call")
    print("| kind | share | ms per call |\n|---|---|---|")
    for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {100 * us / total:.1f} % | {us / steps / 1e3:.2f} |")
    print("\ncostliest ops: " + ", ".join(f"{k.removeprefix('aten::')} {100 * v / total:.1f} %" for k, v in top))


def floor_step(flow: torch.nn.Module, batch: int, lr: float, clip: float, update: bool = True) -> Callable[[], None]:
    """The step's products, gradient norm and fused Adam update alone, on copies of the flow's weights
    (without ``update``, the products alone)."""
    from n2n_hub.cinn.wide_linear import wide_linear
    from n2n_hub.training.step import clip_in_update

    g = torch.Generator().manual_seed(1)
    linears = [m for m in flow.modules() if isinstance(m, torch.nn.Linear)]
    weights = [(m.weight.detach().clone().requires_grad_(),
                None if m.bias is None else m.bias.detach().clone().requires_grad_()) for m in linears]
    params = [t for pair in weights for t in pair if t is not None]
    inputs = [torch.randn(batch, m.in_features, generator=g).requires_grad_() for m in linears]
    grads = [torch.randn(batch, m.out_features, generator=g) for m in linears]
    opt = torch.optim.Adam(params, lr=lr, fused=True)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        outs = [wide_linear(x, w, b) for x, (w, b) in zip(inputs, weights)]
        torch.autograd.backward(outs[::-1], grads[::-1])  # gradient products in reverse, as backward runs
        if not update:
            return
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        clip_in_update(opt, norm, clip, on_host=True)  # as train_step does on the CPU
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=268)
    ap.add_argument("--cond", type=int, default=768)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the step against its floor")
    ap.add_argument("--compile", action="store_true", help="also time the step with its loss compiled (torch.compile)")
    ap.add_argument("--release-freed-memory", action="store_true",
                    help="leave glibc's malloc settings alone (pair's trainer changes them; see n2n_hub/base/allocator.py)")
    args = ap.parse_args()
    if min(args.blocks, args.hidden, args.batch, args.dim, args.cond, args.steps, args.threads,
           args.rounds) < 1 or args.dim < 2:
        ap.error("sizes, --steps, --threads and --rounds must be at least 1 (--dim at least 2)")
    torch.set_num_threads(args.threads)
    if not args.release_freed_memory:  # as pair trains
        from n2n_hub.base.allocator import keep_freed_memory

        keep_freed_memory()
    import contextlib

    from n2n_hub.base.distributed import world
    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.training import TrainConfig
    from n2n_hub.training.step import adam, train_step

    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(args.batch, args.dim, generator=g), torch.randn(args.batch, args.cond, generator=g)
    flow = ConditionalINN(args.dim, ConditionSpec.infer((args.cond,), "float32"), n_blocks=args.blocks,
                          hidden=args.hidden)
    flow.initialize(z, c, whitening_rows=torch.randn(16 * args.dim, args.dim, generator=g))
    params = [p for p in flow.parameters() if p.requires_grad]
    opt = adam(params, TrainConfig(lr=2e-4))
    flow.train()

    def step() -> None:  # the trainer's step on the CPU: loss, backward, clip, then the update
        train_step(flow.loss, opt, params, c, z, 10.0, contextlib.nullcontext(), world(), False)
        opt.step()
    for _ in range(3):
        step()
    malloc = "" if args.release_freed_memory else ", malloc settings as in pair"
    print(f"- {cpu_name()}, {args.threads} threads, {wait_policy()}{malloc}, torch {torch.__version__}, load {loadavg()}; d={args.dim}, "
          f"condition {args.cond}, {args.blocks} blocks, hidden {args.hidden}, batch {args.batch}; "
          f"{sum(p.numel() for p in flow.parameters()):,} parameters")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    show("training step (loss, backward, clip, Adam)", prof, args.steps)
    flow.eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            flow.sample(c[:1], n=1)
    show("sampling, batch 1", prof, args.steps)

    flow.train()
    fns = {"training step": step}
    if args.compile:
        compiled_loss = torch.compile(flow.loss)

        def compiled_step() -> None:
            train_step(compiled_loss, opt, params, c, z, 10.0, contextlib.nullcontext(), world(), False)
            opt.step()
        t0 = time.perf_counter()
        compiled_step()
        print(f"\ncompiling the step's loss took {time.perf_counter() - t0:.0f} s")
        fns["training step, compiled"] = compiled_step
    fns["floor: its products, gradient norm and fused Adam"] = floor_step(flow, args.batch, 2e-4, 10.0)
    fns["its products alone"] = floor_step(flow, args.batch, 2e-4, 10.0, update=False)
    for fn in fns.values():
        fn()
    roofs = [matmul_roofline(flow, args.batch, torch.device("cpu"))]
    seconds = interleaved(fns, args.rounds, calls=2)
    roofs.append(matmul_roofline(flow, args.batch, torch.device("cpu")))
    roof = max(roofs)
    flops = 3 * forward_matmul_flops(flow, z, c)
    print(f"\nthe step against its floor ({args.rounds} interleaved rounds of 2 calls, median; torch.mm roofline "
          f"{roof:.1f} GFLOP/s at the step's shapes, best of 7 interleaved rounds before ({roofs[0]:.1f}) and "
          f"after ({roofs[1]:.1f}); load {loadavg()}):")
    print("| | ms | eff. GFLOP/s | % of roofline |\n|---|---:|---:|---:|")
    for name, sec in seconds.items():
        print(f"| {name} | {sec * 1e3:.1f} | {flops / sec / 1e9:.1f} | {100 * flops / sec / 1e9 / roof:.0f} % |")


if __name__ == "__main__":
    main()
