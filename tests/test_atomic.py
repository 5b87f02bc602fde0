"""Atomic writes give files the mode the umask implies and never touch the process umask."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest


from n2n_hub.base.atomic import atomic_path, atomic_write_bytes


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def proc_umask() -> int | None:
    """The process umask as Linux reports it, read without setting it (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return None


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_atomic_writes_on_many_threads_leave_the_umask_and_other_threads_files_alone(tmp_path, umask_027):
    stop = threading.Event()
    seen_umasks: set[int] = set()
    created_modes: set[int] = set()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(100):
                atomic_write_bytes(tmp_path / "atomic" / f"{i}-{j % 5}.bin", b"x" * 100)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    def creator() -> None:  # files another part of the process creates meanwhile
        k = 0
        while not stop.is_set():
            p = tmp_path / "plain" / f"{k}.txt"
            p.write_text("y")
            created_modes.add(mode(p))
            k += 1

    def watcher() -> None:
        while not stop.is_set():
            got = proc_umask()
            if got is not None:
                seen_umasks.add(got)

    (tmp_path / "plain").mkdir()
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so a window between two calls shows
    try:
        side = [threading.Thread(target=creator), threading.Thread(target=watcher)]
        writers = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in side + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in side:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors
    assert created_modes == {0o640}
    assert seen_umasks <= {0o027}
    assert {mode(p) for p in (tmp_path / "atomic").iterdir()} == {0o640}
    assert not [p for p in (tmp_path / "atomic").iterdir() if p.name.endswith(".tmp")]
    assert os.umask(0o027) == 0o027


def test_a_write_never_calls_os_umask(tmp_path, umask_027, monkeypatch):
    def refuse(mask: int) -> int:
        raise AssertionError("os.umask was called during an atomic write")

    monkeypatch.setattr(os, "umask", refuse)
    atomic_write_bytes(tmp_path / "a.bin", b"data")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"more")
    monkeypatch.undo()
    assert mode(tmp_path / "a.bin") == mode(tmp_path / "b.bin") == 0o640
    assert (tmp_path / "b.bin").read_bytes() == b"more"


def test_a_writer_that_replaces_the_temp_file_still_gets_the_usual_mode(tmp_path, umask_027):
    private = tmp_path / "private.bin"
    private.write_bytes(b"secret-free")
    os.chmod(private, 0o600)
    with atomic_path(tmp_path / "out.bin") as tmp:
        os.replace(private, tmp)  # some libraries write elsewhere and rename onto the path they were given
    assert mode(tmp_path / "out.bin") == 0o640
    assert (tmp_path / "out.bin").read_bytes() == b"secret-free"


def test_a_failed_write_leaves_neither_the_target_nor_a_temp_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "t.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []
