"""Crash- and race-safe file writes: write a temp file beside the target, then rename.

A reader sees either the old file or the complete new one, never a partial write;
two writers of the same path both succeed and the last rename wins.

Files get the mode any new file gets (``0o666`` less the umask) without asking the
process for its umask: ``os.umask`` can only be read by setting it, and setting it is
process-wide, so a thread creating a file meanwhile (the server loads pairs on threads)
would get the wrong mode. The temp file is created by ``os.open(..., 0o666)``, which lets
the kernel apply the umask, and that mode is what the finished file keeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new empty file beside ``path`` (named ``.<name>.<random>.tmp``) and its mode, set by the kernel."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, _FLAGS, 0o666)
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path, mode = _create_temp(path)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        if stat.S_IMODE(tmp_path.stat().st_mode) != mode:  # a writer that replaced the file: restore the mode
            os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
