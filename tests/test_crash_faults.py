"""kill -9 at named points of pairing, and a reader racing a writer: nothing half-done is ever trusted.

A forked child process pairs the toy experts and SIGKILLs itself at one named point
(while the weights are written, between the weights and the sidecar, while the sidecar
is written, while features are encoded, after a training checkpoint). The parent then
checks what a user sees: `cache verify` names the leftovers, `cache gc` removes them and
says so, the next `pair` works, and interrupted training resumes from its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from click.testing import CliRunner

import n2n_hub.data.features
import n2n_hub.translators.store
import n2n_hub.training.checkpoint
import n2n_hub.translators.file
from n2n_hub.base.atomic import atomic_path
from n2n_hub.cli.commands import cli
from n2n_hub.hub import Hub


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(monkeypatch, module, name, when=lambda *a, **k: True) -> None:
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        if when(*args, **kwargs):
            _die()
        return out
    monkeypatch.setattr(module, name, wrapped)


def _inject(point: str, monkeypatch) -> None:
    if point == "weights-write":      # the temp file is complete, the rename has not happened
        _after(monkeypatch, n2n_hub.translators.file, "save_file")
    elif point == "before-sidecar":   # weights renamed into place, no sidecar yet
        monkeypatch.setattr(n2n_hub.translators.store.TranslatorStore, "_write_sidecar", lambda self, path, meta: _die())
    elif point == "sidecar-write":    # the sidecar's temp file is written, not renamed
        def write(path, data):
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                _die()
        monkeypatch.setattr(n2n_hub.translators.store, "atomic_write_bytes", write)
    elif point == "features-write":   # one shard of the encodings written
        _after(monkeypatch, n2n_hub.data.features, "save_file")
    elif point == "training":         # a checkpoint at step 40 of 60 is on disk
        _after(monkeypatch, n2n_hub.training.checkpoint, "save_checkpoint", lambda path, m, o, b, state: state["step"] >= 40)


def kill_at(point: str, hub: Hub, **options) -> None:
    """Pair in a forked child that SIGKILLs itself at ``point``; fail unless it died that way."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            mp = pytest.MonkeyPatch()
            _inject(point, mp)
            Hub(home=hub.home, host=hub.host, progress=False, log=lambda m: None).pair(
                "toytext", "toygen", steps=60, checkpoint_every=20, **options)
            os._exit(3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{point}: status {status}"


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


@pytest.mark.slow
@pytest.mark.parametrize("point, leftover", [
    ("weights-write", r"^translators/[^/]+/\.[0-9a-f]{32}\.safetensors\..*\.tmp$"),
    ("before-sidecar", r"^translators/[^/]+/[0-9a-f]{32}\.safetensors$"),
    ("sidecar-write", r"^translators/[^/]+/\.[0-9a-f]{32}\.json\..*\.tmp$"),
    ("features-write", r"^features/\.[0-9a-f]{64}-[^/]+/shard-00000\.safetensors$"),
])
def test_leftovers_of_a_kill_are_shown_by_verify_and_removed_by_gc(toy_hub, run, point, leftover):
    home = toy_hub.home
    kill_at(point, toy_hub)
    left = [f for f in files(home) if re.match(leftover, f)]
    assert left, files(home)
    listed = run("cache", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output) == []  # nothing half-done is an entry
    assert re.match(r"[12] leftover\(s\) of interrupted runs", run("cache", "list").output)
    verify = run("cache", "verify")
    assert verify.exit_code == 0 and "LEFTOVER" in verify.output and "cache gc" in verify.output
    gc = run("cache", "gc")
    assert gc.exit_code == 0 and "removed" in gc.output and "interrupted" in gc.output
    assert not [f for f in files(home) if re.match(leftover, f)], files(home)
    assert "nothing to remove" in run("cache", "gc").output
    assert run("pair", "toytext", "toygen", "--steps", "60").exit_code == 0
    assert run("cache", "verify").output.count("OK ") == 1


def test_gc_never_removes_what_a_live_process_is_writing(tmp_path):
    from n2n_hub.translators.store import TranslatorStore

    store = TranslatorStore(tmp_path / "home" / "translators")
    key = "0123456789abcdef" * 2
    folder = store.root / "a--b"
    folder.mkdir(parents=True)
    temp = folder / f".{key}.safetensors.abc123.tmp"
    temp.write_bytes(b"half")
    with store.lock(key):  # a trainer holds the key
        assert store.gc() == [] and temp.exists()
    assert [p for p, _ in store.gc()] == [temp] and not temp.exists()


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint_and_force_starts_afresh(toy_hub):
    kill_at("training", toy_hub)
    ckpts = [f for f in files(toy_hub.home) if f.endswith(".ckpt.safetensors")]
    assert len(ckpts) == 1
    said: list[str] = []
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=said.append)
    t = hub.pair("toytext", "toygen", steps=60, checkpoint_every=20)
    assert t.metrics["resumed_from"] == 40 and t.metrics["steps"] == 60
    assert any("resuming from checkpoint" in s for s in said)
    assert not [f for f in files(toy_hub.home) if f.endswith(".ckpt.safetensors")]  # finished: removed

    kill_at("training", toy_hub, force=True)  # a --force retrain killed at step 40
    said.clear()
    fresh = hub.pair("toytext", "toygen", steps=60, checkpoint_every=20, force=True)
    assert fresh.metrics["resumed_from"] is None and not any("resuming" in s for s in said)


@pytest.mark.slow
def test_a_reader_never_sees_a_half_published_translator(tmp_path):
    """A forked writer re-publishes one key in a loop; the reader checks it all the while."""
    import torch

    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.errors import IntegrityError
    from n2n_hub.translators.store import TranslatorStore

    store = TranslatorStore(tmp_path / "translators")
    key = "f" * 32
    cond = ConditionSpec.infer((4,), "float32")
    store.save(ConditionalINN(8, cond, n_blocks=2, hidden=16), {}, key, "a--b")
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(150):
                torch.manual_seed(i)
                store.save(ConditionalINN(8, cond, n_blocks=2, hidden=16, seed=i), {"i": i}, key, "a--b")
            os._exit(0)
        except BaseException:
            os._exit(4)
    checks, errors = 0, []
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        try:
            store.check(store.find(key))
        except IntegrityError as e:
            errors.append(str(e))
        checks += 1
        if done:
            break
    assert os.WEXITSTATUS(status) == 0
    assert errors == [] and checks >= 50
