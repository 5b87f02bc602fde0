"""The translator file: one ``.safetensors`` with the weights and JSON metadata.

The metadata (under the key ``n2n_hub``) holds everything needed to rebuild and
trust the module: format version, module kind and config, condition and target
shapes, recipe, metrics, package version, creation time, and whatever the hub adds
(expert ids and fingerprints). Loading executes no code and unpickles nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from safetensors import SafetensorError

from ..base.atomic import atomic_path
from ..base.tensor_files import load_file, save_file
from ..errors import TranslatorFileError

if TYPE_CHECKING:  # torch loads when a file is written or read, not to list the cache
    import torch
    from torch import nn

FORMAT = "n2n-hub-translator"
FORMAT_VERSION = 1
META_KEY = "n2n_hub"

_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}


def register_module_kind(kind: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Make ``load`` rebuild modules whose metadata says ``kind`` with ``builder``.

    Kinds registered with :func:`n2n_hub.spec.kinds.register_kind` need no builder: their
    ``from_config`` is used. This overrides it (or serves a kind that is not registered).
    """
    _BUILDERS[kind] = builder


def _builders() -> dict[str, Callable[[dict[str, Any]], nn.Module]]:
    from ..spec.kinds import get_kind, kind_names

    return {**{k: get_kind(k).from_config for k in kind_names()}, **_BUILDERS}


def _arch_version(kind: str, builder: Callable[[dict[str, Any]], nn.Module]) -> int:
    from ..spec.kinds import get_kind, kind_names

    if kind not in _BUILDERS and kind in kind_names():
        return get_kind(kind).arch_version
    return int(getattr(getattr(builder, "__self__", None), "arch_version", 1))


def package_version() -> str:
    from ..base.version import VERSION as __version__

    return __version__


def save(path: str | os.PathLike[str], module: nn.Module, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``module`` and its metadata to ``path`` atomically; return the metadata written."""
    kind = getattr(module, "kind", None)
    if kind is None or not hasattr(module, "config"):
        raise TypeError("only modules with `kind` and `config()` (a translator kind, see n2n_hub.spec.kinds) can be saved")
    meta = dict(metadata or {})
    meta.update({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "arch_version": getattr(module, "arch_version", 1),
        "config": module.config(),
        "package_version": package_version(),
    })
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    return meta


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read only the metadata (cheap: the header, no tensors)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise TranslatorFileError(f"translator file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        raise TranslatorFileError(
            f"{path} is not a readable safetensors file ({e}); it is truncated or corrupted: delete it "
            "(`n2n-hub cache rm`) and pair again"
        ) from None
    if raw is None:
        raise TranslatorFileError(f"{path} is a safetensors file but not an n2n-hub translator (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise TranslatorFileError(f"{path} has corrupted metadata ({e})") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("format_version"), int):
        raise TranslatorFileError(f"{path} does not declare the {FORMAT} format")
    if meta["format_version"] > FORMAT_VERSION:
        raise TranslatorFileError(
            f"{path} uses translator format version {meta['format_version']}, newer than this n2n-hub "
            f"understands ({FORMAT_VERSION}); upgrade n2n-hub (`pip install -U n2n-hub`)"
        )
    return meta


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the module stored in ``path``; return ``(module in eval mode, metadata)``."""
    meta = read_metadata(path)
    builders = _builders()
    kind = meta.get("kind")
    if kind not in builders:
        raise TranslatorFileError(f"{path} holds a module of unknown kind {kind!r}; known: {sorted(builders)}")
    expected_arch = _arch_version(kind, builders[kind])
    if meta.get("arch_version", 1) != expected_arch:
        raise TranslatorFileError(
            f"{path} holds a {kind} of layout version {meta.get('arch_version', 1)}, but this n2n-hub builds "
            f"version {expected_arch}; train it again (`n2n-hub pair ... --force`, or remove it with "
            "`n2n-hub cache rm`)")
    try:
        module = builders[kind](meta["config"])
    except Exception as e:  # a config we cannot build is a corrupt file, not a bug to trace
        raise TranslatorFileError(f"{path} has an invalid {kind} config ({e})") from None
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise TranslatorFileError(f"{path} is truncated or corrupted ({e}); delete it and pair again") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TranslatorFileError(
            f"{path}: weights do not match the module its metadata describes ({first[0] if first else e})"
        ) from None
    module.to(map_location)
    module.eval()
    return module, meta


def verify_written(path: str | os.PathLike[str], module: nn.Module) -> dict[str, Any]:
    """Check that ``path`` holds exactly ``module``'s weights and config; return its metadata.

    What lets the hub hand out a module it just trained and saved without rebuilding it
    from the file: the caller gets the object, the file is proven to be the same thing.
    """
    meta = read_metadata(path)
    if meta.get("kind") != getattr(module, "kind", None) or meta.get("config") != json.loads(
            json.dumps(module.config())):  # type: ignore[operator]
        raise TranslatorFileError(f"{path} does not describe the module just written to it; delete it and pair again")
    import torch

    try:
        written = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise TranslatorFileError(f"{path} is truncated or corrupted ({e}); delete it and pair again") from None
    state = module.state_dict()
    if set(written) != set(state) or not all(
            torch.equal(written[k], v.detach().to("cpu")) for k, v in state.items()):
        raise TranslatorFileError(f"{path} does not hold the weights just written to it; delete it and pair again")
    return meta
