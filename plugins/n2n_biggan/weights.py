"""Find and load BigGAN-deep weights without running code from a checkpoint.

A variant resolves to a folder holding ``config.json`` and ``model.safetensors`` or
``pytorch_model.bin``. Named variants are looked up, in order, in this library's own
cache (``experts_dir("biggan")/<variant>/``), the Hugging Face cache, and (online, when a
Hugging Face repo is known) downloaded there. The model is built from ``BigGANConfig``
and the state dict is loaded by us: safetensors first, ``.bin`` only through
``torch.load(weights_only=True)``; ``BigGAN.from_pretrained`` (which fetches URLs and
unpickles freely) is never called.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from n2n_hub.kit import (CacheError, InputError, MissingWeightsError, OfflineError, atomic_path, experts_dir,
                         hf_cache_dir, is_offline, read_tensors, sha256_file)

from . import VARIANTS

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
BIN = "pytorch_model.bin"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class WeightsLocation:
    """A config file and one weights file, and where they were found."""

    config: Path
    weights: Path
    source: str  # "local", "cache", "hf-cache" or "hub"


def named_variants() -> dict[str, dict]:
    return {v.name: v.settings for v in VARIANTS if "resolution" in v.settings}


def own_cache_dir(variant: str) -> Path:
    """Where a user can drop a named variant's files for offline use."""
    return experts_dir("biggan") / variant


def find_in_folder(folder: Path) -> WeightsLocation | None:
    """config.json plus model.safetensors (preferred) or pytorch_model.bin, if all there."""
    if not (folder / CONFIG).is_file():
        return None
    for name in (SAFETENSORS, BIN):
        if (folder / name).is_file():
            return WeightsLocation(folder / CONFIG, folder / name, "local")
    return None


def resolve_weights(variant: str) -> WeightsLocation:
    """Map ``biggan@variant`` to local files, downloading only through the Hugging Face hub."""
    named = named_variants()
    if variant in named:
        return _resolve_named(variant, named[variant])
    if variant.startswith(("/", "./", "../", "~")) or Path(variant).expanduser().is_dir():
        folder = Path(variant).expanduser().resolve()
        found = find_in_folder(folder) if folder.is_dir() else None
        if found is None:
            raise MissingWeightsError(
                f"{folder} does not hold BigGAN weights: it needs {CONFIG} and {SAFETENSORS} (or {BIN}), "
                f"e.g. the files of pytorch-pretrained-biggan renamed to those names"
            )
        return found
    if _HUB_ID.match(variant):
        return _from_hub(variant, _how_to(variant, None, variant))
    raise InputError(
        f"unknown biggan variant {variant!r}: use one of {', '.join(v.name for v in VARIANTS)}, a folder "
        "with config.json + model.safetensors/pytorch_model.bin, or a Hugging Face repo id 'org/name'"
    )


def _resolve_named(variant: str, settings: dict) -> WeightsLocation:
    found = find_in_folder(own_cache_dir(variant))
    if found is not None:
        return WeightsLocation(found.config, found.weights, "cache")
    repo = settings.get("hf_repo")
    how = _how_to(variant, settings, repo)
    if repo:
        return _from_hub(repo, how)
    raise (OfflineError if is_offline() else MissingWeightsError)(f"BigGAN weights for {variant!r} are not here. {how}")


def _how_to(variant: str, settings: dict | None, repo: str | None) -> str:
    dest = own_cache_dir(variant) if settings else None
    lines = []
    if settings:
        urls = settings.get("urls", {})
        lines.append(
            f"Put {CONFIG} and {SAFETENSORS} (or {BIN}) into {dest}: for example download "
            + " and ".join(f"{url} as {dest / name}" for name, url in urls.items())
        )
    if repo:
        lines.append(f"or run `hf download {repo}` on a machine with internet and copy its "
                     "Hugging Face cache here")
    lines.append(f"or pass a folder holding {CONFIG} + {SAFETENSORS}/{BIN} as 'biggan@/path/to/folder'")
    return "; ".join(lines) + "."


def _from_hub(repo: str, how: str) -> WeightsLocation:
    """The Hugging Face cache copy of a repo (downloaded first unless offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = is_offline()
    patterns = [CONFIG, SAFETENSORS, BIN]
    try:
        try:
            folder = Path(snapshot_download(repo, allow_patterns=[CONFIG, SAFETENSORS], cache_dir=hf_cache_dir(),
                                            local_files_only=offline))
            if find_in_folder(folder) is None and not offline:  # no safetensors published: take the .bin
                folder = Path(snapshot_download(repo, allow_patterns=patterns, cache_dir=hf_cache_dir()))
        except LocalEntryNotFoundError as e:
            partial = getattr(e, "snapshot_path", None)
            if not partial or find_in_folder(Path(partial)) is None:
                raise
            folder = Path(partial)
    except RepositoryNotFoundError as e:
        raise MissingWeightsError(f"Hugging Face repo {repo!r} was not found. {how}") from e
    except OSError as e:  # LocalEntryNotFoundError and HTTP errors are OSErrors
        why = "offline mode is on and they are not in the Hugging Face cache" if offline else \
            f"the download failed ({type(e).__name__})"
        raise (OfflineError if offline else MissingWeightsError)(f"BigGAN weights from {repo!r}: {why}. {how}") from e
    found = find_in_folder(folder)
    if found is None:
        raise (OfflineError if offline else MissingWeightsError)(f"{folder} lacks {CONFIG} or weights. {how}")
    return WeightsLocation(found.config, found.weights, "hub")


# -- loading -------------------------------------------------------------------------------
def read_config(path: Path):  # -> pytorch_pretrained_biggan.BigGANConfig
    from pytorch_pretrained_biggan import BigGANConfig

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CacheError(f"{path} is not a readable BigGAN config.json ({e})") from e
    if not isinstance(data, dict) or "z_dim" not in data or "layers" not in data:
        raise CacheError(f"{path} is not a BigGAN config (it needs z_dim, layers, ...)")
    return BigGANConfig.from_dict(data)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or plain-tensor ``.bin`` file; anything else is refused (``kit.read_tensors``)."""
    return read_tensors(path)


def build_biggan(location: WeightsLocation) -> torch.nn.Module:
    """BigGAN from its config, with every generator tensor taken from the weights file."""
    from pytorch_pretrained_biggan import BigGAN

    config = read_config(location.config)
    model = BigGAN(config)
    state = load_state(location.weights)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise CacheError(
            f"{location.weights} does not fit {location.config}: {len(result.missing_keys)} tensors missing "
            f"(e.g. {result.missing_keys[:3]}); the two files come from different models"
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def file_sha256(path: Path) -> str:
    """sha256 of a file; Hugging Face cache blobs of large files are already named by it."""
    target = path.resolve()
    if path.is_symlink() and _SHA256_NAME.match(target.name) and target.parent.name == "blobs":
        return target.name
    return sha256_file(target)


def weights_fingerprint(location: WeightsLocation) -> str:
    """Short hash over the sha256 of config.json and the weights file."""
    h = hashlib.sha256()
    for p in (location.config, location.weights):
        h.update(f"{p.name}:{file_sha256(p)}\n".encode())
    return h.hexdigest()[:16]


def convert_to_safetensors(src: Path, dest: Path) -> Path:
    """Write a safetensors copy of a folder's weights (plus its config) into ``dest``.

    Loading the copy never unpickles anything. Its fingerprint differs from the ``.bin``'s,
    so translators made with one are not reused with the other.
    """
    from safetensors.torch import save_file

    found = find_in_folder(Path(src))
    if found is None:
        raise MissingWeightsError(f"{src} needs {CONFIG} and {SAFETENSORS} or {BIN}")
    state = {k: v.contiguous() for k, v in load_state(found.weights).items()}
    dest = Path(dest)
    with atomic_path(dest / SAFETENSORS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    with atomic_path(dest / CONFIG) as tmp:
        tmp.write_bytes(found.config.read_bytes())
    return dest
