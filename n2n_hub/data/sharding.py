"""Sharded feature extraction: under torchrun, each process encodes its share of the data.

The data is cut into the same batches a single process would encode (``batch_size``
items each, in order), and each rank takes a contiguous run of those batches, so every
batch the expert sees is the batch it would have seen alone: for a deterministic expert
the merged tensor equals the single-process one bit for bit.

Each rank writes its rows to a *part* file (atomically) under
``features/.parts/<call>/rows-START-END.safetensors``, where ``<call>`` hashes the
expert's fingerprint, the tap, the batch size and the inputs' content. After a barrier
every rank reads all parts in order and returns the full tensor; the feature store then
writes the one entry a single process would write (atomic rename, as always). So:

* a rank that dies leaves at most part files, never a feature entry, and nothing in
  ``.parts`` is ever read as features without every part of the range present;
* a rerun with the same world size reuses the parts that completed and encodes only the
  missing ones;
* several nodes need ``$N2N_HUB_HOME`` on a filesystem they all see (as the translator
  that rank 0 writes must be, too).

What is not sharded: loading the dataset, bridges (captions), and sampling a generator's
prior run on every rank (they are cheap next to the experts' encoders or are needed
whole by every rank).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..base import distributed
from ..base.atomic import atomic_path
from .features import current_root, stable_hash
from ..base.paths import features_dir

PARTS = ".parts"


def content_digest(inputs: Any) -> str | None:
    """sha256 of the inputs (a tensor or a list of strings); ``None`` for anything else."""
    h = hashlib.sha256()
    if isinstance(inputs, torch.Tensor):
        t = inputs.detach().cpu().contiguous()
        h.update(json.dumps([list(t.shape), str(t.dtype)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()
    if isinstance(inputs, list) and all(isinstance(x, str) for x in inputs):
        for x in inputs:
            h.update(x.encode())
            h.update(b"\0")
        return h.hexdigest()
    return None


def parts_folder(expert: Any, tap: str | None, batch_size: int, digest: str) -> Path:
    root = current_root() or features_dir()
    fingerprint = expert.fingerprint() if hasattr(expert, "fingerprint") else type(expert).__qualname__
    return root / PARTS / stable_hash({"expert": fingerprint, "tap": tap, "batch_size": batch_size,
                                      "inputs": digest})[:32]


def _part_name(start: int, end: int) -> str:
    return f"rows-{start:010d}-{end:010d}.safetensors"


def _read_part(path: Path) -> torch.Tensor | None:
    try:
        return load_file(str(path))["rows"]
    except (OSError, KeyError, SafetensorError):
        return None


def encode_sharded(inputs: Any, tap: str | None, batch_size: int, expert: Any,
                   encode_chunks: Callable[[list[Any]], torch.Tensor]) -> torch.Tensor | None:
    """This rank's share of ``encode_chunks`` over ``inputs``, merged with every other rank's.

    Returns ``None`` in a single process, or when the inputs cannot be fingerprinted
    (the caller then encodes everything itself). ``encode_chunks(chunks)`` must encode a
    list of consecutive batches and return their rows concatenated.
    """
    w = distributed.world()
    if not w.distributed:
        return None
    digest = content_digest(inputs)
    if digest is None or len(inputs) == 0:
        return None
    distributed.init()
    n = len(inputs)
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    folder = parts_folder(expert, tap, batch_size, digest)
    folder.mkdir(parents=True, exist_ok=True)
    ranges = []
    for r in range(w.size):
        lo, hi = distributed.shard_range(len(bounds), r, w.size)
        ranges.append((bounds[lo][0] if lo < hi else 0, bounds[hi - 1][1] if lo < hi else 0, lo, hi))

    start, end, lo, hi = ranges[w.rank]
    mine = folder / _part_name(start, end)
    if hi > lo and _read_part(mine) is None:
        rows = encode_chunks([inputs[a:b] for a, b in bounds[lo:hi]])
        with atomic_path(mine) as tmp:
            save_file({"rows": rows.contiguous()}, str(tmp))
    distributed.barrier()  # every part is on disk

    pieces = []
    for start, end, lo, hi in ranges:
        if hi <= lo:
            continue
        part = _read_part(folder / _part_name(start, end))
        if part is None or part.shape[0] != end - start:
            raise RuntimeError(f"feature part {folder / _part_name(start, end)} is missing or damaged after "
                               "every rank reported it written; is $N2N_HUB_HOME on a filesystem all nodes share?")
        pieces.append(part)
    out = torch.cat(pieces)
    distributed.barrier()  # every rank has read every part
    if w.is_main:
        shutil.rmtree(folder, ignore_errors=True)
    return out


__all__ = ["content_digest", "encode_sharded", "parts_folder"]
