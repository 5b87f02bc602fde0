"""Pretrained ResNet weights for the segmenter's encoder, from local files only (never downloaded).

``--encoder-weights`` takes ``none`` (random init), a tag that segmentation-models-pytorch
publishes (``imagenet``, ``ssl``, ``swsl``), looked up in the local Hugging Face cache, or
a path to a torchvision/timm ResNet state dict (``.safetensors``, or ``.pth``/``.pt`` read
with ``weights_only=True``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from n2n_hub.kit import InputError, MissingWeightsError

PREFIXES = ("module.", "encoder.", "model.", "backbone.")


def _smp_settings(encoder: str) -> dict[str, dict[str, str]]:
    from segmentation_models_pytorch.encoders import encoders

    return dict(encoders[encoder]["pretrained_settings"])


def resolve(spec: str, encoder: str) -> Path | None:
    """The local file behind ``spec`` (None for ``none``); raise naming what to download where."""
    if spec.lower() in ("none", ""):
        return None
    tags = _smp_settings(encoder)
    if spec in tags:
        from huggingface_hub import try_to_load_from_cache

        repo, rev = tags[spec]["repo_id"], tags[spec]["revision"]
        found = try_to_load_from_cache(repo, "model.safetensors", revision=rev)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
        raise MissingWeightsError(
            f"{encoder} '{spec}' weights are not in the local Hugging Face cache (repo {repo}, revision {rev}); "
            f"n2n-hub never downloads them. On a machine with internet run `hf download {repo} "
            f"--revision {rev}` and copy the cache, or pass --encoder-weights /path/to/{encoder}.safetensors")
    path = Path(spec).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"--encoder-weights {spec}: no such file, and not one of none, {', '.join(tags)}")
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a state dict file, with common wrapper prefixes removed."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path))
        else:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
            raw = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise InputError(f"cannot read encoder weights {path}: {type(e).__name__}: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    out: dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        if not isinstance(v, torch.Tensor):
            continue
        for p in PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def load_into(encoder: nn.Module, path: Path) -> int:
    """Copy a ResNet state dict into ``encoder`` (RGB stem summed for grayscale); return tensors loaded."""
    state = read_state_dict(path)
    own = encoder.state_dict()
    picked: dict[str, torch.Tensor] = {}
    for k, target in own.items():
        if k not in state:
            continue
        v = state[k]
        if k == "conv1.weight" and v.shape[1] != target.shape[1] and target.shape[1] == 1:
            v = v.sum(dim=1, keepdim=True)  # what smp does for grayscale inputs
        if tuple(v.shape) != tuple(target.shape):
            raise InputError(f"encoder weights {path}: {k} has shape {tuple(v.shape)}, the encoder needs "
                             f"{tuple(target.shape)}; is it a state dict of the same ResNet?")
        picked[k] = v.to(target.dtype)
    missing = sorted(set(own) - set(picked))
    if missing:
        raise InputError(f"encoder weights {path} lack {len(missing)} of the encoder's tensors "
                         f"(e.g. {', '.join(missing[:3])}); give a state dict of a torchvision/timm ResNet")
    encoder.load_state_dict(picked, strict=True)
    return len(picked)


def describe(spec: str) -> str:
    return "random initialisation" if spec.lower() in ("none", "") else f"pretrained from {spec}"


__all__ = ["describe", "load_into", "read_state_dict", "resolve"]
