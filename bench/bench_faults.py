"""Faults bench: a reader checking a translator while a writer re-publishes it, with and without
the publish lock readers wait on after a mismatch. Counts false "modified or corrupted" alarms.

    python bench/bench_faults.py [--writes 300]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from machine import cpu_name, loadavg  # noqa: E402
from n2n_hub.cinn import ConditionalINN, ConditionSpec  # noqa: E402
from n2n_hub.errors import IntegrityError  # noqa: E402
from n2n_hub.translators.store import TranslatorStore  # noqa: E402


def race(root: Path, writes: int, retry: bool) -> tuple[int, int]:
    """(checks, false alarms) of a reader looping while a forked writer publishes ``writes`` times."""
    store = TranslatorStore(root)
    key, cond = "e" * 32, ConditionSpec.infer((8,), "float32")
    store.save(ConditionalINN(16, cond, n_blocks=2, hidden=32), {}, key, "a--b")
    pid = os.fork()
    if pid == 0:
        for i in range(writes):
            store.save(ConditionalINN(16, cond, n_blocks=2, hidden=32, seed=i), {}, key, "a--b")
        os._exit(0)
    checks = alarms = 0
    patch = mock.patch.object(TranslatorStore, "lock", _no_lock(store)) if not retry else contextlib.nullcontext()
    with patch:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            try:
                store.check(store.find(key))
            except IntegrityError:
                alarms += 1
            checks += 1
            if done:
                return checks, alarms


def _no_lock(store: TranslatorStore):  # the old behaviour: readers take no lock
    real = TranslatorStore.lock

    def lock(self, key, timeout=-1, kind=""):
        if kind == "publish" and os.getpid() == parent:
            return contextlib.nullcontext()
        return real(self, key, timeout, kind)
    return lock


parent = os.getpid()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load {loadavg()}")
    for retry in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            checks, alarms = race(Path(tmp), args.writes, retry)
        name = "reader waits on publish lock" if retry else "reader takes no lock (before)"
        print(f"{name:32s} checks {checks:6d}  false alarms {alarms:4d}  (1 in {checks / max(alarms, 1):.0f})")
