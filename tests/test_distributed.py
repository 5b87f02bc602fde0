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


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def test_two_ranks_train_like_one_and_a_two_rank_checkpoint_resumes_in_one_process(tmp_path):
    worker = str(DIST / "train_worker.py")
    one = subprocess.run([sys.executable, worker, str(tmp_path / "one"), str(tmp_path / "one.ckpt")],
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(2, worker, str(tmp_path / "two"), str(tmp_path / "two.ckpt"))
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = _result(tmp_path / "one"), _result(tmp_path / "two")
    assert r1["steps"] == r2["steps"] == 60
    assert r1["best_val_nll"] < r1["reference_nll_per_dim"] - 0.1  # it learnt something
    # Same data, same global batch: the runs differ only by float summation order.
    assert abs(r1["best_val_nll"] - r2["best_val_nll"]) < 2e-3
    # Every validation along the way agrees too (Adam lets the weights themselves drift apart
    # by ~1e-2 in 60 steps from float-order differences, without changing the fit).
    assert [h["step"] for h in r1["history"]] == [h["step"] for h in r2["history"]] == [10, 20, 30, 40, 50, 60]
    assert max(abs(a["val"] - b["val"]) for a, b in zip(r1["history"], r2["history"])) < 1e-3

    cut = tmp_path / "cut.ckpt"
    killed = torchrun(2, worker, str(tmp_path / "killed"), str(cut), env=_env(KILL_AT="30"))
    assert killed.returncode == 0 and cut.is_file() and not (tmp_path / "killed").exists()
    resumed = subprocess.run([sys.executable, worker, str(tmp_path / "resumed"), str(cut)],
                             env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    r3 = _result(tmp_path / "resumed")
    assert r3["resumed_from"] == 20 and r3["steps"] == 60
    assert abs(r3["best_val_nll"] - r1["best_val_nll"]) < 2e-3


def test_torchrun_pair_shards_extraction_and_trains_data_parallel(plugin_env, tmp_path, toy_registry_file):
    def pair(home: Path, nproc: int) -> dict:
        env = _env(**{k: v for k, v in plugin_env.items() if k == "PYTHONPATH"}, N2N_HUB_HOME=str(home),
                   N2N_HUB_REGISTRY=str(toy_registry_file))
        args = ["-m", "n2n_hub", "pair", "toytext", "toygen", "--steps", "40", "--json"]
        done = torchrun(nproc, *args, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    one, two = pair(tmp_path / "h1", 1), pair(tmp_path / "h2", 2)
    assert one["compute"]["world_size"] == 1 and two["compute"]["world_size"] == 2
    assert two["compute"]["samples_seen"] == one["compute"]["samples_seen"]  # same effective batch
    assert abs(one["metrics"]["best_val_nll"] - two["metrics"]["best_val_nll"]) < 5e-3
    assert Path(two["path"]).is_file() and len(list((tmp_path / "h2" / "translators").glob("*/*.json"))) == 1
    feats1 = {p.name: FeatureStore(p.parent).load(p.name) for p in (tmp_path / "h1" / "features").glob("[0-9a-f]*")}
    feats2 = {p.name: FeatureStore(p.parent).load(p.name) for p in (tmp_path / "h2" / "features").glob("[0-9a-f]*")}
    assert feats1.keys() == feats2.keys() and len(feats1) == 2
    assert all(bool((feats1[k] == feats2[k]).all()) for k in feats1)  # the same entries, bit for bit
