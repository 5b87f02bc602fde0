"""The main job's cold time: the README's first command in an empty home, with the translator
shipped inside the package (fetched from it and verified) and without it (trained: --force).

Run: ``OMP_NUM_THREADS=2 python bench/bench_cold_start.py`` (a few minutes: the second run trains).
Both runs are the real command in a fresh process, so they include Python and torch start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, loadavg  # noqa: E402

COMMAND = ["translate", "bert", "vaegan", "a photo of a zebra", "an elephant", "a bird", "-n", "8", "--seed", "0"]


def run(extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "N2N_HUB_HOME": home}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "n2n_hub", *COMMAND, "-o", str(Path(home) / "animals.png"), *extra],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load before {loadavg()}")
    shipped = run([])
    print(f"cold, shipped published translator (fetch + sha256 check): {shipped:.1f} s  (load {loadavg()})")
    trained = run(["--force"])
    print(f"cold, trained here (--force):                              {trained:.1f} s  (load {loadavg()})")
    print(f"ratio: {trained / shipped:.0f}x")


if __name__ == "__main__":
    main()
