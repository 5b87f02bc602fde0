"""Evaluations kept on disk, one file per translator and setting, so a diagnosis grows by cells.

A diagnosis of many models is a table of cells (model × tap × translator kind), each the
held-out metrics of one cached translator. A cell's result depends only on that translator
(its key names the request record; a digest of its weights tells a retrained file from the
old one, since ``pair --force`` keeps the key), the evaluation settings and the metrics'
code, so it is stored under a hash of exactly those: adding a model to a
diagnosis evaluates only its own cells, and changing ``--samples`` or the feature space
evaluates again instead of reusing numbers measured otherwise.

Files are JSON, written atomically. One that cannot be read (cut short, edited, from
another version of this format) is reported through ``log`` and measured again: a cell is
derived data, so recomputing it loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch

from ..base.atomic import atomic_write_bytes
from ..errors import CacheError
from .metrics import Evaluation

if TYPE_CHECKING:
    from ..translators.translator import Translator

FORMAT = 1
# Raise when what evaluate_translator measures changes, so no cell measured the old way is reused.
METRICS_VERSION = 1


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's tensors (names, shapes, dtypes and bytes), in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cell_key(translator: Translator, settings: Mapping[str, Any]) -> str:
    """32 hex digits naming one evaluation: the translator (key and weights) and every setting that moves a number."""
    record = {"format": FORMAT, "metrics": METRICS_VERSION, "translator": str(translator.metadata.get("key")),
              "weights": weights_digest(translator.module), "settings": dict(settings)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


class CellCache:
    """Evaluations under ``folder``, as ``<key>.json`` holding the :class:`Evaluation` and its extras."""

    def __init__(self, folder: str | os.PathLike[str], log: Callable[[str], None] = lambda _: None) -> None:
        self.folder = Path(folder)
        self.log = log

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> tuple[Evaluation, dict[str, Any]] | None:
        """The stored evaluation and its extras, or None (missing, or unreadable and therefore redone)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != FORMAT or record.get("key") != key:
                raise ValueError("written for another cell or format")
            return Evaluation(**record["evaluation"]), dict(record.get("extras") or {})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            self.log(f"evaluation cache {path} is unreadable ({e}); measuring it again")
            return None

    def put(self, key: str, evaluation: Evaluation, extras: Mapping[str, Any] | None = None) -> None:
        record = {"format": FORMAT, "key": key, "evaluation": evaluation.to_dict(), "extras": dict(extras or {})}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path(key), json.dumps(record, indent=1, sort_keys=True).encode())
        except OSError as e:
            raise CacheError(f"cannot keep an evaluation in {self.folder} ({e.strerror or e}): it must be a "
                             "writable folder; move what is there away") from None


__all__ = ["CellCache", "cell_key", "METRICS_VERSION"]
