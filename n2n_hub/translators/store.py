"""The translator cache: content-keyed files under ``$N2N_HUB_HOME/translators``.

Layout (one folder per pair, one file pair per key)::

    translators/<source>--<target>/<key>.safetensors       weights + JSON metadata (with the request record)
    translators/<source>--<target>/<key>.json              sha256 of the weights file + summary
    translators/<source>--<target>/<key>.ckpt.safetensors  training checkpoint while <key> is unfinished
    translators/<source>--<target>/current.json            the pair's current translator (set by `pair`)
    translators/.locks/<key>.lock                          held while one process trains the key
    translators/.locks/<key>.publish.lock                  held while the two files of <key> are replaced
    translators/.locks/<key>.fetch.lock                    held while <key> is downloaded (`cache gc` waits)

A download is bounded: at most the registry's ``size`` (else :data:`MAX_DOWNLOAD_BYTES`)
and :data:`FETCH_DEADLINE_S` seconds in all, however the remote trickles.

The key is 32 hex digits hashing expert ids, versions, weight fingerprints, recipe and
hyperparameters. Both files are written atomically (temp file + rename) under the
publish lock; a reader whose sha256 check fails waits for that lock and checks once
more, so a concurrent re-publish never looks like corruption.

Only names this module writes, in folders that are real directories inside the root,
are ever listed or removed: a foreign ``notes.json``, a symlinked folder or a garbage
file in the cache is left alone and never crashes a command.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from filelock import FileLock, Timeout

from . import file as translator_file
from ..base.atomic import atomic_path, atomic_write_bytes, sha256_file
from ..errors import CacheError, IntegrityError, OfflineError
from ..base.paths import is_offline
from ..catalog.registry import Published

if TYPE_CHECKING:  # listing the cache imports no torch
    from torch import nn

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")
KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_TEMP_RE = re.compile(r"^\.(?P<key>[0-9a-f]{32})\..*\.tmp$")  # atomic_path's temp files
_FETCH_RE = re.compile(r"^\.fetch-(?P<key>[0-9a-f]{32})-")
CURRENT = "current.json"
CHECKPOINT_SUFFIX = ".ckpt.safetensors"
LOCK_KINDS = ("", "publish", "fetch")  # training, replacing the files, downloading
MAX_DOWNLOAD_BYTES = 2 * 1024**3  # a paper-size flow is a few hundred MB; more is not a translator
FETCH_DEADLINE_S = 600.0  # the whole download, not one socket read
FETCH_READ_TIMEOUT_S = 30.0  # one socket read


class RecordMismatch(CacheError):
    """A translator file answers other settings than the request it was meant for."""


def safe_label(text: str) -> str:
    """A folder name for a pair: readable, filesystem-safe, bounded length."""
    return _UNSAFE.sub("_", text).strip("_")[:120] or "pair"


def read_record(path: Path) -> dict[str, Any]:
    """A JSON object written by the store, or :class:`CacheError` (garbage, not an object, unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CacheError(f"cache record {path} is unreadable ({type(e).__name__}); remove it with "
                         f"`n2n-hub cache rm {path.name.split('.')[0]}` and pair again") from None
    if not isinstance(data, dict):
        raise CacheError(f"cache record {path} is not a JSON object; remove it with "
                         f"`n2n-hub cache rm {path.name.split('.')[0]}` and pair again")
    return data


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    summary: dict[str, Any]

    @property
    def pair(self) -> str:
        return self.path.parent.name

    def to_dict(self) -> dict[str, Any]:
        size = self.path.stat().st_size if self.path.is_file() else None
        return {"key": self.key, "pair": self.pair, "path": str(self.path), "size": size, **self.summary}


class TranslatorStore:
    """Find, load, save, verify, fetch, collect and remove cached translators."""

    fetch_deadline_s: float = FETCH_DEADLINE_S

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"the cache folder {self.root} is a file, not a folder; point N2N_HUB_HOME at a "
                             "folder (or remove that file)")

    # -- names we own -----------------------------------------------------------------
    def path_for(self, key: str, label: str) -> Path:
        return self.root / safe_label(label) / f"{key}.safetensors"

    def checkpoint_for(self, key: str, label: str) -> Path:
        return self.root / safe_label(label) / f"{key}{CHECKPOINT_SUFFIX}"

    def _inside(self, path: Path, root: Path | None = None) -> bool:
        """True if ``path`` is a plain file or folder whose real location is inside ``root`` (ours by default)."""
        try:
            real, root = path.resolve(), (root or self.root).resolve()
        except OSError:
            return False
        return not path.is_symlink() and root in real.parents

    def _folders(self) -> list[Path]:
        """Pair folders: real directories directly under the root (never a symlink)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir()
                      if not p.name.startswith(".") and p.is_dir() and not p.is_symlink() and self._inside(p))

    def lock(self, key: str, timeout: float = -1, kind: str = "") -> FileLock:
        """A lock that keeps two processes from training (or, ``kind='publish'``, publishing) one key."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / f"{key}{'.' + kind if kind else ''}.lock"), timeout=timeout)

    def _is_busy(self, key: str) -> bool:
        """Whether a process holds the training, publish or fetch lock of ``key`` right now."""
        for kind in LOCK_KINDS:
            lock = self.lock(key, timeout=0, kind=kind)
            try:
                lock.acquire()
            except Timeout:
                return True
            lock.release()
        return False

    def find(self, key: str) -> Path | None:
        """The complete cached file for ``key`` (weights and sidecar present), if any."""
        if not KEY_RE.match(key):
            return None
        for folder in self._folders():
            sidecar, weights = folder / f"{key}.json", folder / f"{key}.safetensors"
            if sidecar.is_file() and weights.is_file() and not weights.is_symlink():
                return weights
        return None

    def _sidecar(self, path: Path) -> dict[str, Any]:
        return read_record(path.with_suffix(".json"))

    # -- integrity ----------------------------------------------------------------------
    def check(self, path: Path) -> None:
        """Raise :class:`IntegrityError` if the weights file changed since it was written."""
        if self._matches(path):
            return
        # A writer may be between its two renames: wait for it, then look again.
        with self.lock(path.name.split(".")[0], kind="publish"):
            if self._matches(path):
                return
        expected = self._sidecar(path).get("sha256")
        raise IntegrityError(
            f"cached translator {path} does not match the sha256 recorded when it was written "
            f"(expected {expected}, got {sha256_file(path)}): it was modified or corrupted. Remove it with "
            f"`n2n-hub cache rm {path.name.split('.')[0]}` and pair again."
        )

    def _matches(self, path: Path) -> bool:
        expected = self._sidecar(path).get("sha256")
        try:
            return expected == sha256_file(path)
        except OSError as e:
            raise CacheError(f"cached translator {path} cannot be read ({e})") from None

    def load(self, path: Path, map_location: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
        self.check(path)
        return translator_file.load(path, map_location=map_location)

    def save(self, module: nn.Module, metadata: dict[str, Any], key: str, label: str) -> Path:
        """Write weights, then the sidecar that marks the entry complete, under the publish lock."""
        path = self.path_for(key, label)
        with self.lock(key, kind="publish"):
            meta = translator_file.save(path, module, metadata)
            self._write_sidecar(path, meta)
        return path

    def _write_sidecar(self, path: Path, meta: dict[str, Any]) -> None:
        def addr(side: Any) -> Any:
            return side.get("address") if isinstance(side, dict) else None

        summary = {
            "sha256": sha256_file(path),
            "source": addr(meta.get("source")),
            "target": addr(meta.get("target")),
            "kind": meta.get("kind"),
            "created": meta.get("created"),
            "metrics": meta.get("metrics", {}),
            "steps": (meta.get("training") or {}).get("steps") if isinstance(meta.get("training"), dict) else None,
            "compute": meta.get("compute"),
        }
        drawn = (meta.get("recipe") or {}).get("from_route") if isinstance(meta.get("recipe"), dict) else None
        if isinstance(drawn, dict):  # distilled from a route: `cache list` names it, routes check its hops
            hops = (meta.get("request") or {}).get("route") if isinstance(meta.get("request"), dict) else None
            summary["from_route"] = drawn.get("nodes")
            summary["route_translators"] = [{"key": h.get("key"), "sha256": h.get("sha256")} for h in hops or ()
                                            if isinstance(h, dict) and h.get("kind") == "translator"]
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(summary, indent=2, sort_keys=True).encode())

    # -- listing ------------------------------------------------------------------------
    def entries(self) -> list[CacheEntry]:
        """Entries the store wrote: ``<key>.json`` sidecars in pair folders. Garbage is reported, not raised."""
        out = []
        for folder in self._folders():
            for sidecar in sorted(folder.glob("*.json")):
                key = sidecar.name[:-len(".json")]
                if not KEY_RE.match(key) or sidecar.is_symlink() or not sidecar.is_file():
                    continue
                try:
                    summary = read_record(sidecar)
                except CacheError:
                    summary = {"problem": "unreadable cache record"}
                out.append(CacheEntry(key, folder / f"{key}.safetensors", summary))
        return out

    def verify(self) -> list[tuple[CacheEntry, str | None]]:
        """Each entry with ``None`` if intact, else the problem.

        Checks the sha256, that the file is a translator we can rebuild, and that its
        request record hashes to its key and describes the module actually stored.
        """
        results = []
        for entry in self.entries():
            try:
                if not entry.path.is_file():
                    raise CacheError(f"{entry.path} is missing")
                self.check(entry.path)
                meta = translator_file.read_metadata(entry.path)
                check_record(meta, entry.key, entry.path)
                translator_file.load(entry.path)
                results.append((entry, None))
            except CacheError as e:
                results.append((entry, str(e)))
        return results

    # -- current translator of a pair ---------------------------------------------------
    def set_current(self, key: str, label: str) -> None:
        folder = self.root / safe_label(label)
        atomic_write_bytes(folder / CURRENT, json.dumps({"key": key}).encode())

    def current(self, label: str) -> str | None:
        """The key ``pair`` last made current for this pair, if it is still cached."""
        path = self.root / safe_label(label) / CURRENT
        if not path.is_file() or not self._inside(path):
            return None
        try:
            key = read_record(path).get("key")
        except CacheError:
            return None
        return key if isinstance(key, str) and self.find(key) is not None else None

    # -- removal ------------------------------------------------------------------------
    def _unlink(self, path: Path, root: Path | None = None) -> None:
        if path.is_symlink():
            path.unlink()  # the link is ours to drop; what it points at is not
        elif path.exists() and self._inside(path, root):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def remove(self, selector: str | None = None) -> list[CacheEntry]:
        """Remove entries whose key starts with ``selector`` or whose pair folder equals it; all if None.

        ``None`` also removes crash leftovers (:meth:`gc`).
        """
        removed = []
        for entry in self.entries():
            if selector is None or entry.key.startswith(selector) or entry.pair == selector:
                folder = entry.path.parent
                for p in (entry.path, entry.path.with_suffix(".json"), folder / f"{entry.key}{CHECKPOINT_SUFFIX}"):
                    self._unlink(p)
                cur = folder / CURRENT
                if cur.is_file():
                    try:
                        if read_record(cur).get("key") == entry.key:
                            self._unlink(cur)
                    except CacheError:
                        self._unlink(cur)
                removed.append(entry)
        if selector is None:
            self.gc()
        self._drop_empty_folders()
        return removed

    def _drop_empty_folders(self) -> None:
        for folder in self._folders():
            if not any(folder.iterdir()):
                folder.rmdir()

    def leftovers(self, features: Path | None = None) -> list[tuple[Path, str]]:
        """What crashed writers left behind and nobody is writing now: ``(path, reason)``."""
        found: list[tuple[Path, str]] = []
        for folder in self._folders():
            names = {p.name for p in folder.iterdir()}
            for p in sorted(folder.iterdir()):
                m = _TEMP_RE.match(p.name) or _FETCH_RE.match(p.name)
                if m and not self._is_busy(m["key"]):
                    found.append((p, "temporary file of an interrupted write"))
                    continue
                if p.name.endswith(".safetensors") and not p.name.endswith(CHECKPOINT_SUFFIX):
                    key = p.name[:-len(".safetensors")]
                    if KEY_RE.match(key) and f"{key}.json" not in names and not self._is_busy(key):
                        found.append((p, "weights without a sidecar (an interrupted save)"))
                elif p.name.endswith(CHECKPOINT_SUFFIX):
                    key = p.name[:-len(CHECKPOINT_SUFFIX)]
                    if KEY_RE.match(key) and f"{key}.json" in names and not self._is_busy(key):
                        found.append((p, "checkpoint of a translator that has finished training"))
        if features is not None and features.is_dir() and not features.is_symlink():
            from ..data.features import TEMP_RE, feature_lock

            for p in sorted(features.iterdir()):
                m = TEMP_RE.match(p.name)
                if m and p.is_dir() and not p.is_symlink():
                    lock = feature_lock(features, m["key"], timeout=0)
                    try:
                        lock.acquire()
                    except Timeout:
                        continue
                    lock.release()
                    found.append((p, "partial feature folder of an interrupted encoding"))
        return found

    def gc(self, features: Path | None = None) -> list[tuple[Path, str]]:
        """Remove :meth:`leftovers`; return what was removed and why."""
        found = self.leftovers(features)
        for p, _ in found:
            self._unlink(p, features if features is not None and p.parent == features else None)
        self._drop_empty_folders()
        return found

    # -- fetching -----------------------------------------------------------------------
    def fetch(self, published: Published, key: str, label: str,
              accept: Callable[[dict[str, Any]], None] | None = None) -> Path:
        """Download a published translator, verify its sha256 and (``accept``) its record, then cache it.

        ``accept`` raises :class:`CacheError` when the file does not answer the request;
        such a file is never placed in the cache.
        """
        if is_offline() and not (published.url or "").startswith("file:"):  # a local file is no download
            raise OfflineError("offline mode is on (N2N_HUB_OFFLINE / HF_HUB_OFFLINE): not fetching "
                               f"{published.url or published.hf_repo}")
        path = self.path_for(key, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        where = published.url or published.hf_repo
        cap = published.size or MAX_DOWNLOAD_BYTES
        with self.lock(key, kind="fetch"), \
                tempfile.TemporaryDirectory(dir=path.parent, prefix=f".fetch-{key}-") as tmpdir:
            found = self.find(key)  # another process fetched it while we waited for the lock
            if found is not None:
                return found
            tmp = Path(tmpdir) / "download.safetensors"
            try:
                if published.url:
                    download(published.url, tmp, cap, self.fetch_deadline_s)
                else:
                    from huggingface_hub import hf_hub_download

                    got = hf_hub_download(published.hf_repo, published.hf_file, local_dir=tmpdir)
                    tmp = Path(got)
                    if tmp.stat().st_size > cap:
                        raise OfflineError(f"cannot fetch the published translator from {where}: it has "
                                           f"{tmp.stat().st_size} bytes, more than the {cap} allowed")
            except OfflineError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise OfflineError(f"cannot fetch the published translator from {where} ({_quoted(e)}); "
                                   "it will be trained instead") from None
            digest = sha256_file(tmp)
            if digest != published.sha256:
                raise IntegrityError(
                    f"the published translator from {where} has sha256 {digest}, "
                    f"but the registry says {published.sha256}: refusing it"
                )
            meta = translator_file.read_metadata(tmp)
            if accept is not None:
                accept(meta)
            with self.lock(key, kind="publish"):
                with atomic_path(path) as final_tmp:
                    shutil.copyfile(tmp, final_tmp)
                self._write_sidecar(path, meta)
        return path


def _quoted(e: BaseException) -> str:
    """An error's text as one short printable line: a remote's raw bytes never reach the terminal."""
    text = f"{type(e).__name__}: {e}"
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def download(url: str, dest: Path, cap: int, deadline_s: float) -> None:
    """Stream ``url`` into ``dest``: at most ``cap`` bytes, within ``deadline_s`` seconds in all.

    Reads take what the socket has (``read1``), so a remote that trickles a byte at a time
    still meets the deadline; a declared length over the cap is refused before reading.
    """
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=FETCH_READ_TIMEOUT_S) as resp, open(dest, "wb") as out:
        declared = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise OfflineError(f"cannot fetch the published translator from {url}: it declares {declared} bytes, "
                               f"more than the {cap} allowed (the registry's published.size, or the hub's maximum)")
        got = 0
        while True:
            chunk = resp.read1(1 << 20) if hasattr(resp, "read1") else resp.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if got > cap:
                raise OfflineError(f"cannot fetch the published translator from {url}: it sends more than the "
                                   f"{cap} bytes allowed; stopped")
            out.write(chunk)
            if time.monotonic() - start > deadline_s:
                raise OfflineError(f"cannot fetch the published translator from {url}: not done after "
                                   f"{deadline_s:.0f} s ({got} bytes so far); stopped")


def _normal(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def check_record(meta: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """Check that a translator file's own request record hashes to ``key`` and describes its module.

    Returns the record. A file without one, or whose record answers another key, is refused.
    """
    from ..data.features import stable_hash

    record = meta.get("request")
    if not isinstance(record, dict):
        raise CacheError(f"{path} carries no request record, so what it answers cannot be checked; "
                         f"remove it with `n2n-hub cache rm {key}` and pair again")
    if stable_hash(record)[:32] != key or meta.get("key") != key:
        raise CacheError(f"{path} was trained for other settings than key {key} (its record hashes to "
                         f"{stable_hash(record)[:32]}); remove it with `n2n-hub cache rm {key}`")
    module = record.get("module") if isinstance(record.get("module"), dict) else {}
    if module.get("kind") != meta.get("kind") or _normal(module.get("config")) != _normal(meta.get("config")):
        raise CacheError(f"{path} holds a {meta.get('kind')} whose configuration is not the one its record "
                         f"names ({module.get('kind')}); remove it with `n2n-hub cache rm {key}`")
    return record


def differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    """Top-level fields of two request records that differ (for one readable message)."""
    a, b = _normal(want), _normal(have)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
