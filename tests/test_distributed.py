"""Under torchrun (gloo, 2 processes on CPU) the hub shards extraction and trains data-parallel,
with the same results as one process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from n2n_hub.base.distributed import shard_range, world
from n2n_hub.data.features import FeatureStore, stable_hash

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


def _worker(name: str):
    spec = importlib.util.spec_from_file_location(f"dist_{name}", DIST / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sharded_extraction_equals_one_process_and_survives_a_dead_rank(tmp_path):
    expected = _worker("extract_worker").run(tmp_path / "single", tmp_path / "store1")  # this process: one rank
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


@pytest.mark.slow
def test_two_ranks_train_like_one_and_a_two_rank_checkpoint_resumes_in_one_process(tmp_path):
    worker = _worker("train_worker")
    r1 = worker.run(tmp_path / "one", tmp_path / "one.ckpt").to_dict()  # this process: one rank
    assert r1["steps"] == 60
    assert r1["best_val_nll"] < r1["reference_nll_per_dim"] - 0.1  # it learnt something

    cut = tmp_path / "cut.ckpt"
    two = torchrun(2, str(DIST / "train_worker.py"), str(tmp_path / "two"), str(cut), env=_env(KILL_AT="30"))
    assert two.returncode == 0 and cut.is_file() and not (tmp_path / "two" / "result.json").exists()
    seen = [json.loads(line) for line in (tmp_path / "two" / "val.jsonl").read_text().splitlines()]
    # Same data, same global batch: two ranks follow one rank's validation curve, up to float
    # summation order (Adam lets the weights drift apart by ~1e-2 without changing the fit).
    assert [h["step"] for h in seen] == [10, 20, 30]
    assert max(abs(a["val"] - b["val"]) for a, b in zip(r1["history"], seen)) < 1e-3

    r3 = worker.run(tmp_path / "resumed", cut).to_dict()  # the 2-rank checkpoint, resumed by one rank
    assert r3["resumed_from"] == 20 and r3["steps"] == 60
    assert abs(r3["best_val_nll"] - r1["best_val_nll"]) < 2e-3


@pytest.mark.slow
def test_torchrun_pair_shards_extraction_and_trains_data_parallel(plugin_env, tmp_path, toy_registry_file,
                                                                  toy_cli_host):
    from click.testing import CliRunner

    from n2n_hub.cli.commands import cli

    done = CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--steps", "40", "--json"], catch_exceptions=False)
    one = json.loads(done.output)  # this process, with the same toy plugin and registry
    h1 = Path(os.environ["N2N_HUB_HOME"])
    h2 = tmp_path / "h2"
    env = _env(PYTHONPATH=plugin_env["PYTHONPATH"], N2N_HUB_HOME=str(h2), N2N_HUB_REGISTRY=str(toy_registry_file))
    ran = torchrun(2, "-m", "n2n_hub", "pair", "toytext", "toygen", "--steps", "40", "--json", env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    two = json.loads(ran.stdout)  # rank 0 alone prints
    assert one["compute"]["world_size"] == 1 and two["compute"]["world_size"] == 2
    assert two["compute"]["samples_seen"] == one["compute"]["samples_seen"]  # same effective batch
    assert two["key"] == one["key"]  # the world size is not part of what was trained
    assert abs(one["metrics"]["best_val_nll"] - two["metrics"]["best_val_nll"]) < 5e-3
    assert [p.name for p in (h2 / "translators").glob("*/*.safetensors")] == [Path(two["path"]).name]
    feats1 = {p.name: FeatureStore(p.parent).load(p.name) for p in (h1 / "features").glob("[0-9a-f]*")}
    feats2 = {p.name: FeatureStore(p.parent).load(p.name) for p in (h2 / "features").glob("[0-9a-f]*")}
    assert feats1.keys() == feats2.keys() and len(feats1) == 2
    assert all(bool((feats1[k] == feats2[k]).all()) for k in feats1)  # the same entries, bit for bit
