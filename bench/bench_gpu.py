"""The Net2Net-sized comparison on one GPU, in one command: ours against FrEIA GLOW, FrEIA AllInOne and
zuko NICE at batch 25, 1024 and 8192, in float32 and in bf16 autocast.

For each (batch, precision) every peer trains for the same wall-clock budget on the same data (the
4-component conditional Gaussian mixture of bench_cinn.py, d = 268, 768-d condition, 20 blocks,
hidden 1024), interleaved in short slices; then we report held-out NLL (nats/dim, with the exact
NLL of the data as the floor), training samples/s, effective matmul TFLOP/s
(3 · forward matmul FLOPs per sample · samples/s) and its share of the torch.mm roofline measured
in the same run on our model's matmul shapes in the same precision, and batch-1 sampling latency.

Targets on one H200: ours ≥ 2× FrEIA GLOW's training samples/s at batch ≥ 1024 in bf16 at equal
held-out NLL, and ≥ 40 % of the bf16 matmul roofline at batch 8192.

    python bench/bench_gpu.py --out bench/gpu_table.md            # on the GPU machine (~6 min)
    python bench/bench_gpu.py --tiny --device cpu                 # the same code end to end on CPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cinn import (MixtureMap, Ours, build_peers, forward_matmul_flops, heldout_nll, matmul_roofline,  # noqa: E402
                        sampling_speed, sync, train_interleaved)
from machine import cpu_name, loadavg  # noqa: E402


def roofline(model: nn.Module, batch: int, device: torch.device, dtype: torch.dtype, reps: int = 10) -> float:
    """torch.mm TFLOP/s on the forward and backward matmul shapes of ``model``'s Linear layers, FLOP-weighted."""
    return matmul_roofline(model, batch, device, reps=reps, dtype=dtype) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--budget", type=float, default=12.0, help="training seconds per peer per setting")
    ap.add_argument("--batches", default="25,1024,8192")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--tiny", action="store_true", help="small sizes and budgets: tries every path on a CPU")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.tiny:
        dim, cond, blocks, hidden, n_train, budget, batches = 16, 24, 2, 32, 4000, min(args.budget, 1.0), [25, 64, 128]
    else:
        dim, cond, blocks, hidden, n_train, budget = 268, 768, 20, 1024, 200_000, args.budget
        batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    mix = MixtureMap(dim, cond, seed=0)
    g = torch.Generator().manual_seed(0)
    train_data = mix.sample(n_train, g)
    val = mix.sample(2000, g)
    floor = (mix.true_nll(val[1], val[0]).sum() / val[1].numel()).item()
    train_data = (train_data[0].to(device), train_data[1].to(device))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    lines = [f"- {name}, torch {torch.__version__}, load {loadavg()}; d={dim}, condition {cond}, {blocks} blocks, "
             f"hidden {hidden}, {budget:.0f} s per peer per row; exact held-out NLL {floor:.3f} nats/dim", "",
             "| batch | precision | flow | held-out NLL | samples/s | eff. TFLOP/s | % of mm roofline "
             "| batch-1 sample (ms) |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for batch in batches:
        for precision in args.precisions.split(","):
            bf16 = precision == "bf16"
            if bf16 and device.type != "cuda":
                continue  # CPU bf16 autocast is slower than fp32 here: not a fast path we offer
            peers = build_peers(dim, cond, blocks, hidden, only=None)
            ours = next(m.flow for m in peers.values() if isinstance(m, Ours))
            roof = roofline(ours, batch, device, torch.bfloat16 if bf16 else torch.float32)
            zb, cb = train_data[1][:batch], train_data[0][:batch]
            for m in peers.values():
                m.to(device)
            fwd = {k: forward_matmul_flops(m, zb, cb) / batch for k, m in peers.items()}
            runs = train_interleaved(peers, train_data, budget, batch, 1e-4, device, bf16,
                                     slice_s=max(0.5, budget / 6))
            for k, r in runs.items():
                rate = statistics.median(r.slice_rates) if r.slice_rates else 0.0
                nll = heldout_nll(r.model, val, device)
                tflops = 3 * fwd[k] * rate / 1e12
                latency, _ = sampling_speed(r.model, cond, device, 256)
                row = (f"| {batch} | {precision} | {k} | {nll:.3f} | {rate:.0f} | {tflops:.3g} | "
                       f"{100 * tflops / roof:.0f} % | {latency:.2f} |")
                lines.append(row)
                print(row, flush=True)
            del peers, runs
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
