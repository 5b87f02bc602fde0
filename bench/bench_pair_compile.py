"""Training the default text pair's flow with and without a compiled step: a proxy for `n2n-hub pair`.

The flow has the shape `bert-vaegan-animals` trains (12 blocks, hidden 256, depth 2, a 128-d
target, a 384-d condition read through a 10-class probe, batch 128, target noise 0.05); the data
are synthetic pairs of those shapes, so the time is the trainer's alone (no expert encodes).
Each run is a fresh process on a fresh hub home: ``eager`` (``compile=False``), ``cold``
(``compile=True``, empty inductor cache) and ``warm`` (``compile=True`` again, same home: the
kernels come from the cache). Each reports its wall time, the step times the trainer measured
and the compile cost it recorded; the last lines extrapolate to the pair's 5000 steps.

    python bench/bench_pair_compile.py --steps 300 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent


def one_run(mode: str, steps: int, threads: int) -> dict:
    import torch

    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.training import TrainConfig, train

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    n = 8000
    labels = torch.randint(0, 10, (n,), generator=g)
    c = torch.randn(10, 384, generator=g)[labels] + 0.5 * torch.randn(n, 384, generator=g)
    z = torch.randn(10, 128, generator=g)[labels] + 0.3 * torch.randn(n, 128, generator=g)
    flow = ConditionalINN(128, ConditionSpec.infer((384,), "float32"), n_blocks=12, hidden=256, depth=2,
                          condition_projection=10)
    events: list[dict] = []
    t = time.perf_counter()
    result = train(flow, c, z, TrainConfig(steps=steps, batch_size=128, lr=1e-3, warmup_steps=100,
                                           val_every=max(1, steps // 2), target_noise=0.05, progress=False,
                                           compile=mode != "eager"), log=events.append, labels=labels)
    wall = time.perf_counter() - t
    said = [e for e in events if e["event"] == "compile"]
    return {"mode": mode, "wall_s": wall, "steps": result.steps, "val_nll": result.val_nll,
            "samples_per_s": result.samples_per_s, "compile_events": [e["message"] for e in said],
            "compile_s": next((e["compile_s"] for e in said if "compiled in" in e["message"]), None),
            "speedup": next((e["speedup"] for e in said if "compiled in" in e["message"]), None),
            "eager_step_s": next((e.get("eager_step_s") for e in said if "eager_step_s" in e), None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one, args.steps, args.threads)))
        return
    sys.path.insert(0, str(HERE))
    from machine import cpu_name, loadavg, wait_policy

    home = Path(tempfile.mkdtemp(prefix="n2n-compile-bench-"))
    env = {**os.environ, "N2N_HUB_HOME": str(home)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    load_before = loadavg()
    runs = {}
    for mode in ("eager", "cold", "warm"):
        out = subprocess.run([sys.executable, __file__, "--one", mode, "--steps", str(args.steps),
                              "--threads", str(args.threads)], env=env, capture_output=True, text=True, check=True)
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(runs[mode]), flush=True)
    print(f"- {cpu_name()}, {args.threads} threads, {wait_policy()}, load {load_before} before and {loadavg()} after; "
          f"{args.steps} steps per run, fresh process each")
    print("| run | wall (s) | samples/s | held-out NLL | compile (s) | speed-up |\n|---|---:|---:|---:|---:|---:|")
    for mode, r in runs.items():
        cost = "-" if r["compile_s"] is None else f"{r['compile_s']:.0f}"
        gain = "-" if r["speedup"] is None else f"{r['speedup']:.2f}×"
        print(f"| {mode} | {r['wall_s']:.0f} | {r['samples_per_s']:.0f} | {r['val_nll']:.3f} | {cost} | {gain} |")
    eager_step = 128 / runs["eager"]["samples_per_s"]
    for mode in ("cold", "warm"):
        r = runs[mode]
        if r["compile_s"] is not None and r["speedup"]:
            total = r["compile_s"] + 5000 * eager_step / r["speedup"]
            print(f"- 5000 steps, {mode} cache: ≈ {total:.0f} s compiled against ≈ {5000 * eager_step:.0f} s eager")


if __name__ == "__main__":
    main()
