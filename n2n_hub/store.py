"""The translator cache: content-keyed files under ``$N2N_HUB_HOME/translators``.

Layout (one folder per pair, one file pair per key)::

    translators/<source>--<target>/<key>.safetensors   weights + JSON metadata
    translators/<source>--<target>/<key>.json          sha256 of the weights file + summary
    translators/.locks/<key>.lock                      held while one process trains the key

The key hashes expert ids, versions, weight fingerprints, recipe and hyperparameters.
Both files are written atomically (temp file + rename); the ``.json`` goes last, so a
translator without it is incomplete and is ignored. Loading checks the sha256, so a
file changed after it was written is refused instead of silently used.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from torch import nn

from . import translator_file
from .atomic import atomic_path, atomic_write_bytes, sha256_file
from .errors import CacheError, IntegrityError, OfflineError
from .paths import is_offline
from .registry import Published

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_label(text: str) -> str:
    """A folder name for a pair: readable, filesystem-safe, bounded length."""
    return _UNSAFE.sub("_", text).strip("_")[:120] or "pair"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    summary: dict[str, Any]

    @property
    def pair(self) -> str:
        return self.path.parent.name

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "pair": self.pair, "path": str(self.path),
                "size": self.path.stat().st_size if self.path.exists() else None, **self.summary}


class TranslatorStore:
    """Find, load, save, verify, fetch and remove cached translators."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str, label: str) -> Path:
        return self.root / safe_label(label) / f"{key}.safetensors"

    def lock(self, key: str, timeout: float = -1) -> FileLock:
        """A lock that keeps two processes from training the same key at once."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / f"{key}.lock"), timeout=timeout)

    def find(self, key: str) -> Path | None:
        """The complete cached file for ``key`` (weights and sidecar present), if any."""
        if not self.root.is_dir():
            return None
        for sidecar in self.root.glob(f"*/{key}.json"):
            weights = sidecar.with_suffix(".safetensors")
            if weights.is_file():
                return weights
        return None

    def _sidecar(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise CacheError(f"cache record {path.with_suffix('.json')} is unreadable ({e}); "
                             f"remove it with `n2n-hub cache rm {path.stem}` and pair again") from None

    def check(self, path: Path) -> None:
        """Raise :class:`IntegrityError` if the weights file changed since it was written."""
        expected = self._sidecar(path).get("sha256")
        actual = sha256_file(path)
        if expected != actual:
            raise IntegrityError(
                f"cached translator {path} does not match the sha256 recorded when it was written "
                f"(expected {expected}, got {actual}): it was modified or corrupted. Remove it with "
                f"`n2n-hub cache rm {path.stem}` and pair again."
            )

    def load(self, path: Path, map_location: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
        self.check(path)
        return translator_file.load(path, map_location=map_location)

    def save(self, module: nn.Module, metadata: dict[str, Any], key: str, label: str) -> Path:
        """Write weights, then the sidecar that marks the entry complete. Both atomic."""
        path = self.path_for(key, label)
        meta = translator_file.save(path, module, metadata)
        self._write_sidecar(path, meta)
        return path

    def _write_sidecar(self, path: Path, meta: dict[str, Any]) -> None:
        summary = {
            "sha256": sha256_file(path),
            "source": meta.get("source", {}).get("address"),
            "target": meta.get("target", {}).get("address"),
            "kind": meta.get("kind"),
            "created": meta.get("created"),
            "metrics": meta.get("metrics", {}),
        }
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(summary, indent=2, sort_keys=True).encode())

    def entries(self) -> list[CacheEntry]:
        if not self.root.is_dir():
            return []
        out = []
        for sidecar in sorted(self.root.glob("*/*.json")):
            weights = sidecar.with_suffix(".safetensors")
            try:
                summary = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                summary = {"problem": "unreadable cache record"}
            out.append(CacheEntry(sidecar.stem, weights, summary))
        return out

    def verify(self) -> list[tuple[CacheEntry, str | None]]:
        """Each entry with ``None`` if intact, else the problem."""
        results = []
        for entry in self.entries():
            try:
                if not entry.path.is_file():
                    raise CacheError(f"{entry.path} is missing")
                self.check(entry.path)
                translator_file.read_metadata(entry.path)
                results.append((entry, None))
            except CacheError as e:
                results.append((entry, str(e)))
        return results

    def remove(self, selector: str | None = None) -> list[CacheEntry]:
        """Remove entries whose key starts with ``selector`` or whose pair folder equals it; all if None."""
        removed = []
        for entry in self.entries():
            if selector is None or entry.key.startswith(selector) or entry.pair == selector:
                for p in (entry.path, entry.path.with_suffix(".json")):
                    p.unlink(missing_ok=True)
                removed.append(entry)
        for folder in list(self.root.glob("*/")) if self.root.is_dir() else []:
            if folder.name != ".locks" and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return removed

    def fetch(self, published: Published, key: str, label: str) -> Path:
        """Download a published translator, verify its sha256, then move it into the cache."""
        if is_offline() and not (published.url or "").startswith("file:"):  # a local file is no download
            raise OfflineError("offline mode is on (N2N_HUB_OFFLINE / HF_HUB_OFFLINE): not fetching "
                               f"{published.url or published.hf_repo}")
        path = self.path_for(key, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fetch-") as tmpdir:
            tmp = Path(tmpdir) / "download.safetensors"
            try:
                if published.url:
                    with urllib.request.urlopen(published.url, timeout=60) as resp, open(tmp, "wb") as out:
                        shutil.copyfileobj(resp, out)
                else:
                    from huggingface_hub import hf_hub_download

                    got = hf_hub_download(published.hf_repo, published.hf_file, local_dir=tmpdir)
                    tmp = Path(got)
            except OSError as e:
                raise OfflineError(f"cannot fetch the published translator ({e}); it will be trained instead") from None
            digest = sha256_file(tmp)
            if digest != published.sha256:
                raise IntegrityError(
                    f"the published translator from {published.url or published.hf_repo} has sha256 {digest}, "
                    f"but the registry says {published.sha256}: refusing it"
                )
            meta = translator_file.read_metadata(tmp)
            with atomic_path(path) as final_tmp:
                shutil.copyfile(tmp, final_tmp)
        self._write_sidecar(path, meta)
        return path
