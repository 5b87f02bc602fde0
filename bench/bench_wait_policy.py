"""What OpenMP's wait policy does to a training step and to torch.mm on two cores.

Each measurement is a fresh process (the policy is read once, when torch loads its
OpenMP runtime), run with ``OMP_WAIT_POLICY`` unset (what users get) and ``PASSIVE``
(what the benchmarks used to set), interleaved over ``--rounds``. A process times
``--steps`` training steps of the flow (loss, backward, clip, fused Adam, as the trainer
takes them) after 5 warm-up steps, then ``torch.mm`` at the step's forward shapes.

    python bench/bench_wait_policy.py [--rounds 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from machine import cpu_name, loadavg

# (name, blocks, hidden, batch, dim, condition)
SHAPES = (("default text pair (12 blocks, hidden 256, batch 128, d=128)", 12, 256, 128, 128, 10),
          ("bench_compile size (8 blocks, hidden 512, batch 256, d=268)", 8, 512, 256, 268, 768))

CHILD = r"""
import json, sys, time
import torch
from n2n_hub.cinn import ConditionalINN, ConditionSpec
blocks, hidden, batch, dim, cond, steps = map(int, sys.argv[1:7])
torch.set_num_threads(2)
torch.manual_seed(0)
flow = ConditionalINN(dim, ConditionSpec((cond,), "vector"), n_blocks=blocks, hidden=hidden)
z, c = torch.randn(4096, dim), torch.randn(4096, cond)
with torch.no_grad():
    flow.initialize(z[:batch], c[:batch], whitening_rows=z)
flow.train()
params = [p for p in flow.parameters() if p.requires_grad]
opt = torch.optim.Adam(params, lr=1e-4, fused=True)
def step(i):
    j = (i * batch) % (4096 - batch)
    opt.zero_grad(set_to_none=True)
    flow.nll(z[j:j + batch], c[j:j + batch]).mean().backward()
    torch.nn.utils.clip_grad_norm_(params, 10.0)
    opt.step()
for i in range(5):
    step(i)
t = time.perf_counter()
for i in range(steps):
    step(i)
step_ms = (time.perf_counter() - t) / steps * 1e3
a, w = torch.randn(batch, hidden), torch.randn(hidden, hidden)
for _ in range(5):
    a @ w
best = float("inf")
for _ in range(7):
    t = time.perf_counter()
    for _ in range(50):
        a @ w
    best = min(best, (time.perf_counter() - t) / 50)
print(json.dumps({"step_ms": step_ms, "mm_gflops": 2 * batch * hidden * hidden / best / 1e9}))
"""


def measure(policy: str | None, shape: tuple, steps: int) -> dict[str, float]:
    """One fresh process; ``policy`` is None (unset), an OMP_WAIT_POLICY value, or ``GOMP_SPINCOUNT=N``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy and "=" in policy:
        key, value = policy.split("=", 1)
        env[key] = value
    elif policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, shape[1:]), str(steps)], env=env,
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--policies", nargs="+", default=["unset", "PASSIVE", "GOMP_SPINCOUNT=10000"],
                    help="unset, an OMP_WAIT_POLICY value, or GOMP_SPINCOUNT=N")
    args = ap.parse_args()
    policies = [None if p == "unset" else p for p in args.policies]
    results: dict[tuple[str, str | None], list[dict[str, float]]] = {}
    before = loadavg()
    for _ in range(args.rounds):
        for shape in SHAPES:
            for policy in policies:
                results.setdefault((shape[0], policy), []).append(measure(policy, shape, args.steps))
    print(f"- {cpu_name()}, {os.cpu_count()} cores, 2 threads; load {before} before and {loadavg()} after; "
          f"median of {args.rounds} interleaved fresh processes, {args.steps} steps each")
    print()
    print("| flow | wait policy | step (ms) | torch.mm at batch × hidden² (GFLOP/s) | step vs unset |")
    print("|---|---|---:|---:|---:|")
    for shape in SHAPES:
        base = statistics.median(r["step_ms"] for r in results[(shape[0], None)])
        for policy in policies:
            rs = results[(shape[0], policy)]
            step = statistics.median(r["step_ms"] for r in rs)
            mm = statistics.median(r["mm_gflops"] for r in rs)
            print(f"| {shape[0]} | {policy or 'unset'} | {step:.1f} | {mm:.0f} | {step / base:.2f}× |")


if __name__ == "__main__":
    main()
