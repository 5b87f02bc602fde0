"""How long the default text pair takes to train from cached features, and whether it is as good.

Runs ``n2n-hub pair bert vaegan@animals --force`` in a fresh home that holds only a copy of
``features/`` from ``--home`` (so the caption and image encodings are cached and the time is
the training's own), ``--runs`` times, then scores the held-out prompts
(``bench/prompts/animals.tsv``, 16 samples each) with each trained translator and with the
one in ``--home`` (the shipped file, or whatever that home's current translator is): the
shares of samples that the animals classifier names as the prompted animal, per kind.

    python bench/bench_pair_time.py [--home ~/.cache/n2n-hub] [--runs 1] [--compile]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name, loadavg, wait_policy

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "bench" / "prompts" / "animals.tsv"


def default_home() -> Path:
    env = os.environ.get("N2N_HUB_HOME")
    return Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "n2n-hub"


def train_once(home: Path, extra: list[str]) -> tuple[float, float | None, str]:
    """Wall seconds of the command, the training's own seconds (its cost line), and the log."""
    env = {**os.environ, "N2N_HUB_HOME": str(home), "N2N_HUB_PROGRESS_EVERY": "60"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "n2n_hub", "pair", "bert", "vaegan@animals", "--force", *extra],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"pair failed:\n{out.stderr[-2000:]}")
    m = re.search(r"training cost: ([0-9.]+) s", out.stderr + out.stdout)
    return wall, float(m.group(1)) if m else None, out.stderr


def shares(home: Path) -> dict[str, float]:
    from n2n_hub import Hub

    hub = Hub(home=home, progress=False, log=lambda m: None)
    scored = hub.evaluate_prompts("bert", "vaegan@animals", PROMPTS, n=16, seed=0, train_if_missing=False)
    return dict(scored.top1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, default=default_home(), help="home whose features/ are copied")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="pass --compile to pair")
    args = ap.parse_args()
    features = args.home / "features"
    if not features.is_dir():
        raise SystemExit(f"{features} does not exist: run `n2n-hub pair bert vaegan@animals` once in that home")
    rows = []
    with tempfile.TemporaryDirectory(prefix="n2n-pair-time-") as tmp:
        for run in range(args.runs):
            home = Path(tmp) / f"home{run}"
            home.mkdir()
            shutil.copytree(features, home / "features")
            load = loadavg()
            wall, trained, _ = train_once(home, ["--compile"] if args.compile else ["--no-compile"])
            rows.append((run, load, loadavg(), wall, trained, shares(home)))
        reference = shares(args.home)
    kinds = list(reference)
    print(f"- {cpu_name()}, {os.cpu_count()} cores, {wait_policy()}, {'compiled' if args.compile else 'eager'} step; "
          f"features from {args.home}")
    print()
    print("| run | load before / after | wall (s) | training (s) | " + " | ".join(kinds) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(kinds))
    for run, before, after, wall, trained, top1 in rows:
        print(f"| {run + 1} | {before} / {after} | {wall:.0f} | {trained if trained is not None else '-'} | "
              + " | ".join(f"{top1.get(k, float('nan')):.3f}" for k in kinds) + " |")
    print(f"| {args.home}'s translator | | | | " + " | ".join(f"{reference[k]:.3f}" for k in kinds) + " |")


if __name__ == "__main__":
    main()
