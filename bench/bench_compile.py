"""The training step with and without torch.compile, against the torch.mm roofline and the peers, on CPU.

Every flow trains for the same wall-clock budget on the same data (bench_cinn.py's conditional
mixture), interleaved in slices; we report held-out NLL at that equal wall time, samples/s, effective
matmul GFLOP/s (3 · forward matmul FLOPs per sample · samples/s) and its share of torch.mm's GFLOP/s
on our model's matmul shapes measured in the same run. The compiled flow is compiled (and its
compile time reported) before its clock starts.

    python bench/bench_compile.py --budget 40 --out bench/compile_table.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cinn import (MixtureMap, Ours, build_peers, forward_matmul_flops, heldout_nll,  # noqa: E402
                        matmul_roofline, train_interleaved)
from machine import cpu_name, loadavg, wait_policy  # noqa: E402


class OursCompiled(Ours):
    """Our flow with its training objective compiled by torch.compile (inductor)."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        self._compiled = torch.compile(self.flow.nll)

    def nll(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self._compiled(z, c) if self.training else self.flow.nll(z, c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=40.0, help="training seconds per flow")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--release-freed-memory", action="store_true",
                    help="leave glibc's malloc thresholds alone (n2n-hub's trainer raises them; see n2n_hub/base/allocator.py)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if min(args.batch, args.blocks, args.hidden, args.threads) < 1 or not args.budget > 0:
        ap.error("--budget must be above 0, and --batch, --blocks, --hidden and --threads at least 1")
    torch.set_num_threads(args.threads)
    if not args.release_freed_memory:  # as `pair` trains: every flow in this process keeps the pages it frees
        from n2n_hub.base.allocator import keep_freed_memory

        keep_freed_memory()
    device = torch.device("cpu")
    dim, cond, batch = 268, 768, args.batch
    mix = MixtureMap(dim, cond, seed=0)
    g = torch.Generator().manual_seed(0)
    data, val = mix.sample(40_000, g), mix.sample(1000, g)
    floor = (mix.true_nll(val[1], val[0]).sum() / val[1].numel()).item()
    peers = build_peers(dim, cond, args.blocks, args.hidden, only=["ours", "FrEIA GLOW", "FrEIA AllInOne", "zuko NICE"])
    torch.manual_seed(0)
    compiled = OursCompiled(dim, cond, args.blocks, args.hidden)
    compiled.flow.load_state_dict(peers["ours"].flow.state_dict())
    compiled.flow.initialize(data[1][:batch], data[0][:batch], whitening_rows=data[1])
    t = time.perf_counter()
    compiled.nll(data[1][:batch], data[0][:batch]).mean().backward()  # compile forward and backward
    compiled.zero_grad(set_to_none=True)
    compile_s = time.perf_counter() - t
    peers = {"ours (eager)": peers.pop("ours"), "ours (torch.compile)": compiled, **peers}
    load_before = loadavg()
    roof_before = matmul_roofline(compiled.flow, batch, device)
    zb, cb = data[1][:batch], data[0][:batch]
    fwd = {k: forward_matmul_flops(m, zb, cb) / batch for k, m in peers.items()}
    runs = train_interleaved(peers, data, args.budget, batch, 2e-4, device, False, slice_s=max(2.0, args.budget / 8))
    load_after = loadavg()
    roof_after = matmul_roofline(compiled.flow, batch, device)
    roof = max(roof_before, roof_after)  # the best of interleaved rounds, before and after the runs
    lines = [f"- {cpu_name()}, {args.threads} threads, {wait_policy()}, malloc thresholds {'default' if args.release_freed_memory else 'raised as in pair'}, torch {torch.__version__}, load {load_before} before and "
             f"{load_after} after; d={dim}, condition {cond}, {args.blocks} blocks, hidden {args.hidden}, batch "
             f"{batch}, {args.budget:.0f} s each; torch.mm roofline {roof:.1f} GFLOP/s (best of 7 interleaved "
             f"rounds at the step's shapes, before {roof_before:.1f} / after {roof_after:.1f}); compile time "
             f"{compile_s:.0f} s (not in the budget); exact held-out NLL {floor:.3f}", "",
             "| flow | held-out NLL | samples/s | eff. GFLOP/s | % of mm roofline |", "|---|---|---|---|---|"]
    for k, r in runs.items():
        rate = statistics.median(r.slice_rates)
        gflops = 3 * fwd[k] * rate / 1e9
        lines.append(f"| {k} | {heldout_nll(r.model, val, device):.3f} | {rate:.0f} | {gflops:.1f} | "
                     f"{100 * gflops / roof:.0f} % |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
