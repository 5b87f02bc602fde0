"""Resume checkpoints are verified and bound to their run: a damaged, foreign or forged one restarts training.

Each fault is injected into a real checkpoint left by an interrupted `pair`; the next `pair`
says in one line why it starts afresh, trains from step 0 and caches a good translator.
"""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from n2n_hub.hub import Hub
from n2n_hub.training import checkpoint as checkpoints


class Interrupted(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""


def _interrupted_pair(hub: Hub, monkeypatch, **options):
    """Run `pair` until its first checkpoint is written, then stop it; return the checkpoint's path."""
    real = checkpoints.Checkpointer.save

    def save_then_stop(self, state):
        real(self, state)
        raise Interrupted

    monkeypatch.setattr(checkpoints.Checkpointer, "save", save_then_stop)
    with pytest.raises(Interrupted):
        hub.pair("toytext", "toygen", steps=60, checkpoint_every=20, **options)
    monkeypatch.setattr(checkpoints.Checkpointer, "save", real)
    found = list(hub.home.rglob("*.ckpt.safetensors"))
    assert len(found) == 1
    return found[0]


def _rewrite(path, change_tensors=lambda t: t, change_header=lambda h: h, resign=True):
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = change_tensors(load_file(str(path)))
    header = json.dumps(change_header(json.loads(meta["n2n_hub"])), sort_keys=True)
    sha = checkpoints.digest(header, tensors) if resign else meta["sha256"]
    save_file(tensors, str(path), metadata={"n2n_hub": header, "sha256": sha})


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 64, len(data)):  # the last tensor's bytes, not the header
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _drop_tensor(path):
    _rewrite(path, change_tensors=lambda t: {k: v for k, v in t.items() if k != "rng.cpu"})


def _far_step(path):
    _rewrite(path, change_header=lambda h: {**h, "step": 10**9})


def _unsigned_change(path):
    _rewrite(path, change_header=lambda h: {**h, "step": 50}, resign=False)


@pytest.mark.parametrize("damage, why", [
    (_flip_bytes, "is damaged"),
    (_unsigned_change, "is damaged"),
    (_drop_tensor, "does not fit this run"),
    (_far_step, "says step 1000000000, outside this run's 0..60"),
])
def test_a_damaged_or_forged_checkpoint_restarts_training_and_says_why(toy_hub, monkeypatch, damage, why):
    ckpt = _interrupted_pair(toy_hub, monkeypatch)
    damage(ckpt)
    said: list[str] = []
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=said.append)
    t = hub.pair("toytext", "toygen", steps=60, checkpoint_every=20)
    assert t.metrics["resumed_from"] is None and t.metrics["steps"] == 60
    restarts = [s for s in said if "starting afresh" in s]
    assert len(restarts) == 1 and why in restarts[0] and str(ckpt) in restarts[0]
    assert not ckpt.exists()


def test_another_keys_checkpoint_is_never_resumed(toy_hub, monkeypatch):
    """A checkpoint of the same pair with other settings (target noise), placed where this run's would be."""
    other = _interrupted_pair(toy_hub, monkeypatch, target_noise=0.1)
    real_resume = checkpoints.Checkpointer.resume
    placed = []

    def resume_from_the_other(self, state, device):
        if not placed:  # once: the restart after the refusal starts from nothing
            shutil.copyfile(other, self.path)
            placed.append(self.path)
        return real_resume(self, state, device)

    monkeypatch.setattr(checkpoints.Checkpointer, "resume", resume_from_the_other)
    said: list[str] = []
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=said.append)
    t = hub.pair("toytext", "toygen", steps=60, checkpoint_every=20)
    assert placed and placed[0] != other
    assert t.metrics["resumed_from"] is None
    restarts = [s for s in said if "starting afresh" in s]
    assert len(restarts) == 1 and "belongs to another run" in restarts[0] and "run_key" in restarts[0]
