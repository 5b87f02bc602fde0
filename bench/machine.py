"""What machine a benchmark ran on, for the results tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def wait_policy() -> str:
    """How OpenMP threads wait between parallel regions in this run, as the results tables cite it.

    The benchmarks leave ``OMP_WAIT_POLICY`` as users have it (unset: libgomp spins a while,
    then sleeps). ``PASSIVE`` puts a waiting thread to sleep at once, which is kinder to other
    jobs on a shared machine but wakes a thread for every parallel region: on two cores it made
    the default pair's step 1.3–2× slower and ``torch.mm`` at the step's shapes 117 instead of
    190 GFLOP/s (bench/RESULTS.md, "The OpenMP wait policy").
    """
    spin = os.environ.get("GOMP_SPINCOUNT")
    return f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY') or 'unset'}" + (f", GOMP_SPINCOUNT={spin}" if spin else "")


def write_table(lines: list[str], out: Path) -> None:
    """Print a results table and write it to ``out`` (its folder made if missing)."""
    text = "\n".join(lines) + "\n"
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """Median seconds per call of each function over ``rounds`` rounds of ``calls`` calls, the
    functions taking turns in every round so that load from other processes falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - t) / calls)
    return {name: statistics.median(ts) for name, ts in times.items()}
