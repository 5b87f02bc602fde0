"""How fast the command line answers: ``--help`` and the listings, as whole processes, against a baseline revision.

Each command runs as ``python -m n2n_hub ARGS`` in a fresh process (Python start-up, plugin
loading and all), on an empty ``$N2N_HUB_HOME``, with ``OMP_WAIT_POLICY=PASSIVE``. This
checkout and the code of ``--baseline-rev`` (default ``6c1c59c``, the CLI before plugin commands
became lazy; its ``n2n_hub`` and ``plugins`` are extracted with ``git archive`` and put first on
its own ``PYTHONPATH``) are timed in the same run, interleaved run by run and alternating which
goes first, so load on a shared machine falls on both alike. One untimed run of each warms the
file cache and writes the bytecode.

    python bench/bench_cli.py --runs 9 --out bench/cli_table.md

Target: ``n2n-hub experts`` in at most 0.5 s (median) on 2 idle cores.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, loadavg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["experts"], ["pairs"], ["plugins"], ["cache", "list"]]
TARGET = ("experts", 0.5)  # seconds, median


def extract(rev: str, dest: Path) -> Path:
    """The package and built-in plugins of ``rev``, unpacked into ``dest``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "n2n_hub", "plugins"],
                             check=True, capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def env_for(code: Path, home: Path) -> dict[str, str]:
    path = [str(code), str(code / "plugins"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "N2N_HUB_HOME": str(home),
            "OMP_WAIT_POLICY": "PASSIVE"}


def timed(args: list[str], env: dict[str, str], program: tuple[str, ...] = ("-m", "n2n_hub")) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *program, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"`n2n-hub {' '.join(args)}` failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def imports_torch(args: list[str], env: dict[str, str]) -> bool:
    code = ("import sys; from n2n_hub.cli import main; sys.argv = ['n2n-hub', *sys.argv[1:]]\n"
            "try:\n    main()\nfinally:\n    print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True).stdout
    return out.rstrip().endswith("TORCH True")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-rev", default="6c1c59c")
    ap.add_argument("--runs", type=int, default=9, help="timed runs of each command per version")
    ap.add_argument("--out", type=Path, help="also write the markdown table here")
    args = ap.parse_args()

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "n2n_hub", "plugins"],
                           capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        versions = {f"this checkout ({rev}{'+changes' if dirty else ''})": env_for(ROOT, home),
                    f"baseline {args.baseline_rev}": env_for(extract(args.baseline_rev, tmp_path / "base"), home)}
        lines = [f"- {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
                 f"{md.version('torch')}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
                 f"OMP_WAIT_POLICY=PASSIVE; {args.runs} interleaved runs per command and version",
                 f"- load average (1, 5, 15 min) at start: {loadavg()}"]
        for env in versions.values():  # warm the file cache, write bytecode
            for command in COMMANDS:
                timed(command, env)
        times: dict[tuple[str, str], list[float]] = {}
        names = list(versions)
        python_alone: list[float] = []  # the floor no command can go below
        for run in range(args.runs):
            order = names if run % 2 == 0 else names[::-1]
            python_alone.append(timed([], versions[names[0]], program=("-c", "pass")))
            for command in COMMANDS:
                for name in order:
                    times.setdefault((name, " ".join(command)), []).append(timed(command, versions[name]))
        torch_loaded = {(name, " ".join(c)): imports_torch(c, env) for name, env in versions.items() for c in COMMANDS}
        lines.append(f"- load average at end: {loadavg()}")

    lines += ["", "| command | version | median | min | max | imports torch | median vs baseline |",
              "|---|---|---|---|---|---|---|"]
    for command in COMMANDS:
        cmd = " ".join(command)
        base = statistics.median(times[(names[1], cmd)])
        for name in names:
            t = times[(name, cmd)]
            med = statistics.median(t)
            lines.append(f"| `n2n-hub {cmd}` | {name} | {med:.2f} s | {min(t):.2f} s | {max(t):.2f} s | "
                         f"{'yes' if torch_loaded[(name, cmd)] else 'no'} | {base / med:.1f}× |")
    lines += ["", f"Python start-up alone (`python -c pass`, same runs): median {statistics.median(python_alone):.2f} s, "
                  f"min {min(python_alone):.2f} s, max {max(python_alone):.2f} s."]
    what, limit = TARGET
    got = statistics.median(times[(names[0], what)])
    lines += ["", f"Target `n2n-hub {what}` ≤ {limit} s (median): {got:.2f} s, "
                  f"{'met' if got <= limit else 'NOT met'} at this load."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
