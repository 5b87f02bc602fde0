"""safetensors files of torch tensors, with torch imported on first use.

``safetensors.torch`` imports torch; a module that only lists or cleans files (the translator
and feature caches behind ``n2n-hub cache list``) imports these names instead and stays torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def save_file(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file as save

    save(tensors, filename, metadata=metadata)


def load_file(filename: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file as load

    return load(filename, device=device)  # type: ignore[no-any-return]
