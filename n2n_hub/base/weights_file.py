"""Expert weights files for plugins that train their own weights: one safetensors file with
the model's config (JSON) and training facts in its metadata.

No pickle anywhere: a file is tensors plus strings, so loading one cannot run code.
A plugin fixes its ``format`` string and its train command; this module does the rest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_path
from ..errors import CacheError, InputError, MissingWeightsError, UnknownExpertError


@dataclass(frozen=True)
class WeightsFormat:
    """How one expert's weights files are named and described.

    ``expert_id`` names the expert in messages and the preferred file name
    (``<expert_id>.safetensors``); ``train_command`` is what users run to make a file.
    """

    expert_id: str
    format: str
    train_command: str
    format_version: str = "1"

    def save(self, module: torch.nn.Module, config_json: str, path: str | os.PathLike[str],
             info: dict[str, Any] | None = None, dtype: torch.dtype = torch.float32) -> Path:
        """Write ``module`` atomically; floating tensors are stored as ``dtype`` (fp16 halves the size)."""
        tensors = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
                   for k, v in module.state_dict().items()}
        metadata = {"format": self.format, "format_version": self.format_version, "config": config_json,
                    "info": json.dumps(info or {}, sort_keys=True)}
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A ``.safetensors`` file, or a folder holding exactly one (``<expert_id>.safetensors`` wins)."""
        p = Path(path).expanduser()
        preferred = f"{self.expert_id}.safetensors"
        if p.is_file():
            return p
        if p.is_dir():
            files = sorted(p.glob("*.safetensors"))
            named = [f for f in files if f.name == preferred]
            if named:
                return named[0]
            if len(files) == 1:
                return files[0]
            if not files:
                raise MissingWeightsError(f"no .safetensors file in {p}; train one with "
                                          f"'{self.train_command} --out {p / preferred}'")
            raise InputError(f"{p} holds several .safetensors files ({', '.join(f.name for f in files)}); "
                             f"name one file, or call the one to use {preferred}")
        raise MissingWeightsError(f"{self.expert_id} weights not found at {p}; train them with "
                                  f"'{self.train_command} --out {p}'")

    def for_variant(self, variant: str, named: dict[str, Path]) -> Path:
        """A named variant's shipped file, or the file behind a user path (``<expert_id>@/path``)."""
        if variant in named:
            return self.resolve(named[variant])
        looks_like_path = os.sep in variant or variant.endswith(".safetensors") or variant.startswith((".", "~"))
        if looks_like_path or Path(variant).expanduser().exists():
            return self.resolve(variant)
        raise UnknownExpertError(
            f"{self.expert_id} has no variant {variant!r}; named variants: {', '.join(sorted(named))}, or give "
            f"a path to a .safetensors file written by '{self.train_command}' ({self.expert_id}@/path/to/file)")

    def read(self, path: str | os.PathLike[str]) -> tuple[str, dict[str, torch.Tensor], dict[str, Any], Path]:
        """``(config JSON, float32 state dict, training info, file)`` of a weights file."""
        file = self.resolve(path)
        try:
            with safe_open(str(file), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CacheError(f"{file} is not a readable safetensors file ({e}); delete it and train it again "
                             f"with '{self.train_command}'") from e
        if meta.get("format") != self.format or "config" not in meta:
            raise CacheError(f"{file} is not a {self.expert_id} weights file (metadata format="
                             f"{meta.get('format')!r}); use a file written by '{self.train_command}'")
        try:
            info = json.loads(meta.get("info", "{}"))
        except ValueError as e:
            raise CacheError(f"{file} has invalid training info in its metadata ({e}); train it again") from e
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        return meta["config"], state, info, file

    def load_into(self, module: torch.nn.Module, state: dict[str, torch.Tensor], file: Path,
                  device: str | torch.device = "cpu") -> torch.nn.Module:
        """Load ``state`` strictly; a mismatch is a corrupt file, reported as such."""
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CacheError(f"{file} does not match its own config ({str(e)[:300]}); train it again") from e
        return module.to(device).eval().requires_grad_(False)


class ModelWeights:
    """A plugin's weights file for one model class: ``WeightsFormat`` plus how to rebuild the model.

    ``config_cls`` has ``from_json(str)``; ``model_cls(config)`` builds the model, which keeps
    its config as ``model.config`` (with ``to_json()``). One instance replaces a plugin's whole
    checkpoint module::

        WEIGHTS = ModelWeights(WeightsFormat("myexpert", "my-format", "n2n-hub train-expert myexpert"),
                               MyConfig, MyModel)
        WEIGHTS.save(model, path); model, info = WEIGHTS.load_model(path)
    """

    def __init__(self, fmt: WeightsFormat, config_cls: Any, model_cls: Any,
                 dtype: torch.dtype = torch.float32) -> None:
        self.format = fmt
        self.config_cls = config_cls
        self.model_cls = model_cls
        self.dtype = dtype

    def save(self, model: torch.nn.Module, path: str | os.PathLike[str], info: dict[str, Any] | None = None,
             dtype: torch.dtype | None = None) -> Path:
        """Write ``model`` atomically; floating tensors are stored as ``dtype`` (default: this format's)."""
        return self.format.save(model, model.config.to_json(), path, info, dtype or self.dtype)

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A ``.safetensors`` file, or a folder holding exactly one (``<expert_id>.safetensors`` wins)."""
        return self.format.resolve(path)

    def for_variant(self, variant: str, named: dict[str, Path]) -> Path:
        """A named variant's shipped file, or the file behind a user path (``<expert_id>@/path``)."""
        return self.format.for_variant(variant, named)

    def read(self, path: str | os.PathLike[str]) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
        """Config, float32 state dict and training info of a weights file."""
        config_json, state, info, file = self.format.read(path)
        try:
            cfg = self.config_cls.from_json(config_json)
        except (ValueError, TypeError) as e:
            raise CacheError(f"{file} has an invalid {self.format.expert_id} config in its metadata ({e}); "
                             f"train it again with '{self.format.train_command}'") from e
        return cfg, state, info

    def load_model(self, path: str | os.PathLike[str],
                   device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
        """Rebuild the model of a weights file, in eval mode on ``device``."""
        cfg, state, info = self.read(path)
        return self.format.load_into(self.model_cls(cfg), state, self.resolve(path), device), info


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a third-party weights file, on the CPU: safetensors, or a plain-tensor ``.bin``.

    A ``.bin`` goes through ``torch.load(weights_only=True)``, which refuses pickles that would run
    code; a ``{"state_dict": {...}}`` wrapper is unwrapped; anything but a table of tensors is a
    :class:`CacheError` that says what to fetch instead.
    """
    import pickle

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises several error types
            raise CacheError(f"{path} is not a readable safetensors file ({e}); get it again") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        raise CacheError(
            f"refusing to load {path}: it is not a plain tensor checkpoint ({type(e).__name__}). It may be "
            "corrupted or carry code; get the weights from a trusted source, preferably as model.safetensors"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CacheError(f"{path} is not a state dict of tensors; use the checkpoint's weights file")
    return dict(obj)
