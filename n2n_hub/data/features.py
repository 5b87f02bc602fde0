"""Cached expert encodings, so training never runs an expert twice on the same data.

An entry is a folder ``features/<key>/`` holding ``shard-NNNNN.safetensors`` files (rows in
order) and ``meta.json``. The key hashes whatever determines the tensor: the expert's
fingerprint and tap, and the data's fingerprint. A folder is built under a temporary
name and renamed into place when complete, so readers never see half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from filelock import FileLock
from safetensors import SafetensorError

from ..base.tensor_files import load_file, save_file
from ..errors import CacheError

if TYPE_CHECKING:  # torch loads when features are read or written, not to list or clean the cache
    import torch

SHARD_ROWS = 50_000
TEMP_RE = re.compile(r"^\.(?P<key>[0-9a-f]{64})-")  # a folder being built (or left by a crash)


def feature_lock(root: Path, key: str, timeout: float = -1) -> FileLock:
    """Held while a folder for ``key`` is built, so a cleanup never removes a live one."""
    locks = Path(root) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"{key}.lock"), timeout=timeout)

_ROOT: ContextVar[Path | None] = ContextVar("n2n_hub_feature_root", default=None)


def current_root() -> Path | None:
    """The feature store whose entry is being computed now (sharded extraction keeps its parts there)."""
    return _ROOT.get()


@contextmanager
def _computing_in(root: Path) -> Iterator[None]:
    token = _ROOT.set(root)
    try:
        yield
    finally:
        _ROOT.reset(token)


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON-serialisable object with sorted keys (a cache key)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class FeatureStore:
    """Get a tensor from the cache, or compute it once and cache it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "meta.json").is_file()

    def load(self, key: str) -> torch.Tensor:
        import torch

        folder = self.path(key)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            shards = [load_file(str(folder / name))["rows"] for name in meta["shards"]]
        except (OSError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as e:
            raise CacheError(f"cached features {folder} are incomplete or corrupted ({e}); delete that folder") from None
        out = torch.cat(shards) if shards else torch.empty(0)
        if list(out.shape) != meta["shape"]:
            raise CacheError(f"cached features {folder} have shape {list(out.shape)}, expected {meta['shape']}; delete that folder")
        return out

    def save(self, key: str, tensor: torch.Tensor, description: dict[str, Any]) -> None:
        folder = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        with feature_lock(self.root, key):
            self._save_locked(key, folder, tensor, description)

    def _save_locked(self, key: str, folder: Path, tensor: torch.Tensor, description: dict[str, Any]) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
        try:
            tensor = tensor.detach().cpu().contiguous()
            names = []
            for i, start in enumerate(range(0, max(len(tensor), 1), SHARD_ROWS)):
                name = f"shard-{i:05d}.safetensors"
                save_file({"rows": tensor[start:start + SHARD_ROWS].contiguous()}, str(tmp / name))
                names.append(name)
            meta = {"shape": list(tensor.shape), "dtype": str(tensor.dtype), "shards": names, **description}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str), encoding="utf-8")
            try:
                os.rename(tmp, folder)
            except OSError:
                if not self.has(key):  # not a concurrent writer who finished first: a real failure
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def get_or_compute(self, key_parts: dict[str, Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached tensor for ``key_parts``; on a miss, ``compute()`` it and cache it."""
        key = stable_hash(key_parts)
        if self.has(key):
            return self.load(key)
        with _computing_in(self.root):
            tensor = compute()
        self.save(key, tensor, {"key_parts": key_parts})
        return tensor
