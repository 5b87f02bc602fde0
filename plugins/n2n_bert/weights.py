"""Read a checkpoint's weights without unpickling code, and fingerprint them.

safetensors is preferred; a lone ``pytorch_model.bin`` is read with
``torch.load(weights_only=True)``, which refuses pickles that would run code.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from n2n_hub.kit import MissingWeightsError, read_tensors, sha256_file

_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


def weight_files(folder: Path) -> list[Path]:
    """The files holding the weights, in load order (safetensors first)."""
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    bin_file = folder / "pytorch_model.bin"
    if bin_file.is_file():
        return [bin_file]
    raise MissingWeightsError(
        f"{folder} holds no weights: put model.safetensors (preferred) or pytorch_model.bin there"
    )


def load_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the given weight files, on the CPU."""
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if not f.is_file():
            raise MissingWeightsError(f"weights shard {f} is missing; download the checkpoint again")
        state.update(read_tensors(f))
    return state


def safe_torch_load(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` that accepts only tensors and plain containers, never code (``kit.read_tensors``)."""
    return read_tensors(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file; Hugging Face cache blobs of large files are already named by it."""
    target = path.resolve()
    if path.is_symlink() and _SHA256_NAME.match(target.name) and target.parent.name == "blobs":
        return target.name
    return sha256_file(target)


def fingerprint(hashes: dict[str, str]) -> str:
    """A short hash over the weight files' sha256 (names sorted, so order does not matter)."""
    h = hashlib.sha256()
    for name in sorted(hashes):
        h.update(f"{name}:{hashes[name]}\n".encode())
    return h.hexdigest()[:16]
