"""Scaling out on one machine: feature extraction and cINN training in 1 and 2 processes (torchrun,
gloo), and what the distributed-capable trainer costs a single process.

* extraction: a deterministic MLP "expert" (1024 → 2048 → 2048 → 512) encodes 4096 rows in batches
  of 256 through the feature store, timed from the first batch to the merged entry (rank 0); the
  1- and 2-process results are compared bit for bit;
* training: a cINN (d = 32, condition 64, 4 blocks, hidden 128) for 60 steps of global batch 256;
  samples/s from the trainer's own accounting;
* single process: this trainer against the trainer of another git revision (``--baseline-rev``,
  default ``main``), alternated twice on the same task.

Processes × threads per process are reported, so the comparison is honest on a small machine:
2 processes × 1 thread use the same cores as 1 process × 2 threads.

    python bench/bench_scaling.py --out bench/scaling_table.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, loadavg  # noqa: E402


def worker_extract(out: Path) -> None:
    import torch

    from n2n_hub.base import distributed
    from n2n_hub.data.features import FeatureStore
    from n2n_hub.data.recipes import encode_batched

    class MLPExpert:
        def __init__(self) -> None:
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 2048),
                                           torch.nn.GELU(), torch.nn.Linear(2048, 512))

        def fingerprint(self) -> str:
            return "bench-mlp"

        def encode(self, x: torch.Tensor, tap: str | None = None) -> torch.Tensor:
            return self.net(x)

    expert = MLPExpert()
    x = torch.randn(4096, 1024, generator=torch.Generator().manual_seed(1))
    store = FeatureStore(out / "store")
    distributed.init()
    distributed.barrier()
    t = time.perf_counter()
    z = store.get_or_compute({"bench": "extract"}, lambda: encode_batched(expert, x, None, 256, "enc", False))
    distributed.barrier()
    seconds = time.perf_counter() - t
    if distributed.world().is_main:
        digest = hashlib.sha256(z.numpy().tobytes()).hexdigest()[:16]
        (out / "extract.json").write_text(json.dumps({"seconds": seconds, "rows": 4096, "sha": digest}))


def worker_train(out: Path) -> None:
    import torch

    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.training import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    c = torch.randn(20_000, 64, generator=g)
    z = torch.tanh(c[:, :32] @ torch.randn(32, 32, generator=g)) + 0.3 * torch.randn(20_000, 32, generator=g)
    flow = ConditionalINN(32, ConditionSpec.infer((64,), "float32"), n_blocks=4, hidden=128, seed=0)
    config = TrainConfig(steps=60, batch_size=256, lr=1e-3, warmup_steps=10, val_every=30, patience=0,
                         progress=False)
    result = train(flow, c, z, config)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        (out / "train.json").write_text(json.dumps({"samples_per_s": result.samples_per_s,
                                                    "best_val_nll": result.best_val_nll}))


def launch(what: str, procs: int, threads: int, out: Path, pythonpath: str | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    script = [str(Path(__file__).resolve()), "--worker", what, "--dir", str(out)]
    if procs == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *script]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads((out / f"{what}.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=["extract", "train"])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--baseline-rev", default="main")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        (worker_extract if args.worker == "extract" else worker_train)(args.dir)
        return

    lines = [f"- {cpu_name()}, {os.cpu_count()} cores, load {loadavg()} at start", "",
             "| work | processes × threads | result | time or rate | vs 1 × 1 |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            r = launch("extract", procs, threads, Path(tmp) / f"x{procs}{threads}")
            base = base or r["seconds"]
            lines.append(f"| extraction, 4096 rows | {procs} × {threads} | sha {r['sha']} | {r['seconds']:.2f} s | "
                         f"{base / r['seconds']:.2f}× |")
            print(lines[-1], flush=True)
            if args.out:
                args.out.write_text("\n".join(lines) + "\n")
        base = None
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            r = launch("train", procs, threads, Path(tmp) / f"t{procs}{threads}")
            base = base or r["samples_per_s"]
            lines.append(f"| training, batch 256 | {procs} × {threads} | NLL {r['best_val_nll']:.4f} | "
                         f"{r['samples_per_s']:.0f} samples/s | {r['samples_per_s'] / base:.2f}× |")
            print(lines[-1], flush=True)
            if args.out:
                args.out.write_text("\n".join(lines) + "\n")
        baseline = Path(tmp) / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_rev, "n2n_hub"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        rates: dict[str, list[float]] = {"this trainer": [], f"trainer at {args.baseline_rev}": []}
        for i in range(2):
            for label, path in (("this trainer", str(ROOT)), (f"trainer at {args.baseline_rev}", str(baseline))):
                r = launch("train", 1, 1, Path(tmp) / f"s{i}{len(label)}", pythonpath=path)
                rates[label].append(r["samples_per_s"])
        ref = statistics.median(rates[f"trainer at {args.baseline_rev}"])
        for label, rs in rates.items():
            lines.append(f"| single process, batch 256 | 1 × 1 | {label} | {statistics.median(rs):.0f} samples/s "
                         f"(median of 2) | {statistics.median(rs) / ref:.2f}× of {args.baseline_rev} |")
            print(lines[-1], flush=True)
            if args.out:
                args.out.write_text("\n".join(lines) + "\n")
    lines.append(f"- load {loadavg()} at end")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
