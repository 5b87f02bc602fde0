"""What machine a benchmark ran on, for the results tables."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
