"""Under torchrun (gloo, 2 processes on CPU) the hub shards extraction and trains data-parallel,
with the same results as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from n2n_hub.distributed import shard_range, world
from n2n_hub.features import FeatureStore, stable_hash

DIST = Path(__file__).resolve().parent / "dist"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update({"OMP_NUM_THREADS": "1", **extra})
    return env


def torchrun(nproc: int, *args: str, env: dict[str, str] | None = None, timeout: float = 240
             ) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def test_shard_ranges_cover_everything_once_and_differ_by_at_most_one():
    for n in (0, 1, 5, 13, 14):
        for size in (1, 2, 3, 4):
            spans = [shard_range(n, r, size) for r in range(size)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            lengths = [e - s for s, e in spans]
            assert max(lengths) - min(lengths) <= 1


def test_a_plain_process_is_a_world_of_one(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    w = world()
    assert (w.rank, w.size, w.is_main, w.distributed) == (0, 1, True, False)


def test_sharded_extraction_equals_one_process_and_survives_a_dead_rank(tmp_path):
    single = subprocess.run([sys.executable, str(DIST / "extract_worker.py"), str(tmp_path / "single"),
                             str(tmp_path / "store1")], env=_env(), capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr
    expected = load_file(str(tmp_path / "single" / "rank0.safetensors"))["z"]
    assert expected.shape == (53, 3)
    assert json.loads((tmp_path / "single" / "calls0.json").read_text()) == 14  # ceil(53 / 4) batches

    store = tmp_path / "store2"
    key = stable_hash({"what": "tiny"})
    dead = torchrun(2, str(DIST / "extract_worker.py"), str(tmp_path / "dead"), str(store),
                    env=_env(DIE_RANK="1"))
    assert dead.returncode != 0
    assert not FeatureStore(store).has(key)  # nothing that looks complete
    parts = sorted(p.name for p in (store / ".parts").glob("*/rows-*.safetensors"))
    assert parts == ["rows-0000000000-0000000028.safetensors"]  # rank 0 finished its 7 batches

    again = torchrun(2, str(DIST / "extract_worker.py"), str(tmp_path / "again"), str(store))
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "again" / "calls0.json").read_text()) == 0  # its part was reused
    assert json.loads((tmp_path / "again" / "calls1.json").read_text()) == 7
    for rank in (0, 1):
        got = load_file(str(tmp_path / "again" / f"rank{rank}.safetensors"))["z"]
        assert got.dtype == expected.dtype and bool((got == expected).all())  # bit for bit
    assert bool((FeatureStore(store).load(key) == expected).all())
    assert not any((store / ".parts").glob("*/*"))  # parts are cleaned up once merged
