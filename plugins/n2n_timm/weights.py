"""Model folders in timm's Hugging Face layout: finding them, fetching them, loading them.

A folder holds ``config.json`` and ``model.safetensors`` (preferred) or
``pytorch_model.bin`` (read with ``weights_only=True``, so no code runs). Downloads go
through ``huggingface_hub`` into its cache and never happen when ``HF_HUB_OFFLINE`` or
``N2N_HUB_OFFLINE`` is set; a missing file is one line saying where to put it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from n2n_hub.kit import (InputError, MissingWeightsError, OfflineError, experts_dir, is_offline, read_tensors,
                         sha256_file)

from .names import CONFIG

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .source import ModelSource

SAFETENSORS = "model.safetensors"
BIN = "pytorch_model.bin"
_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


def _hf_cache_dir() -> str | None:
    """The Hugging Face cache as the environment says now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def how_to_get(repo: str, name: str | None = None, home: Path | None = None) -> str:
    """Where to put the files by hand, for an error message (``name``: a timm model name)."""
    drop = f"into {experts_dir('timm', home) / name}, or " if name else ""
    return (f"run `hf download {repo}` on a machine with internet and copy its Hugging Face cache here "
            f"(HF_HUB_CACHE), or put {CONFIG} + {SAFETENSORS} from that repo {drop}into any folder and use "
            "timm@/path/to/folder")


def _fetch_error(repo: str, what: str, e: BaseException, how: str) -> Exception:
    from huggingface_hub.utils import RepositoryNotFoundError

    if isinstance(e, RepositoryNotFoundError):
        return MissingWeightsError(f"{what}: Hugging Face repo {repo!r} was not found; {how}")
    if is_offline():
        return OfflineError(f"{what}: offline, and {repo} is not in the Hugging Face cache; {how}")
    return MissingWeightsError(f"{what}: downloading {repo} failed ({type(e).__name__}); {how}")


def hub_file(repo: str, filename: str, what: str) -> Path:
    """One file of a Hugging Face repo, from the cache (downloaded first unless offline)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, cache_dir=_hf_cache_dir(), local_files_only=is_offline()))
    except (OSError, ValueError) as e:  # LocalEntryNotFoundError and HTTP errors are OSErrors
        raise _fetch_error(repo, what, e, how_to_get(repo)) from None


def snapshot(repo: str, what: str, name: str | None = None, home: Path | None = None) -> Path:
    """The cached folder of a repo holding config.json and the weights (fetched unless offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError

    how = how_to_get(repo, name, home)
    offline = is_offline()
    try:
        try:
            folder = Path(snapshot_download(repo, allow_patterns=[CONFIG, SAFETENSORS], cache_dir=_hf_cache_dir(),
                                            local_files_only=offline))
            if not (folder / SAFETENSORS).is_file() and not offline:  # no safetensors published: the .bin
                folder = Path(snapshot_download(repo, allow_patterns=[CONFIG, BIN], cache_dir=_hf_cache_dir()))
        except LocalEntryNotFoundError as e:
            partial = getattr(e, "snapshot_path", None)
            if not partial or find_weights(Path(partial)) is None:
                raise
            folder = Path(partial)
    except (OSError, ValueError) as e:
        raise _fetch_error(repo, what, e, how) from None
    if find_weights(folder) is None or not (folder / CONFIG).is_file():
        raise (OfflineError if offline else MissingWeightsError)(
            f"{what}: the Hugging Face cache of {repo} lacks {CONFIG} or {SAFETENSORS}; {how}")
    return folder


def find_weights(folder: Path) -> Path | None:
    for name in (SAFETENSORS, BIN):
        if (folder / name).is_file():
            return folder / name
    return None


def weights_folder(source: ModelSource, home: Path | None = None) -> Path:
    """The folder with the source's config.json and weights, fetched if need be."""
    if source.folder is not None:
        if find_weights(source.folder) is None:
            raise MissingWeightsError(f"{source.folder} holds {CONFIG} but no weights: put {SAFETENSORS} "
                                      f"(or {BIN}) beside it")
        return source.folder
    if source.hf_repo:
        name = source.label if source.origin == "timm" else None  # a timm name may be dropped in the experts dir
        return snapshot(source.hf_repo, f"timm@{source.variant}", name, home)
    raise MissingWeightsError(
        f"timm has no pretrained weights for {source.label} on the Hugging Face hub; train it here with "
        f"`n2n-hub train-expert timm --model {source.architecture} --dataset DATASET`, or save weights in timm's "
        f"layout (timm.models.save_for_hf) and use timm@/path/to/folder")


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a plain-tensor ``.bin``; anything else is refused (``kit.read_tensors``)."""
    return read_tensors(path)


def load_into(model: nn.Module, state: dict[str, Any], weights: Path, architecture: str) -> None:
    """Copy ``state`` into ``model``; weights of another architecture are one line naming both."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} of its tensors missing (e.g. {', '.join(missing[:2])})" if missing else "",
                 f"{len(unexpected)} unknown to it (e.g. {', '.join(unexpected[:2])})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]})" if wrong else ""]
        raise InputError(f"the weights {weights} do not fit the architecture {architecture}: "
                         f"{'; '.join(p for p in parts if p)}. Are they another model's? Their {CONFIG} must "
                         "name the architecture and model_args they were trained with")
    model.load_state_dict({k: state[k].to(v.dtype) for k, v in own.items()}, strict=True)


def weights_sha256(path: Path) -> str:
    """sha256 of a weights file; Hugging Face cache blobs of large files are already named by it."""
    target = path.resolve()
    if path.is_symlink() and _SHA256_NAME.match(target.name) and target.parent.name == "blobs":
        return target.name
    return sha256_file(target)
