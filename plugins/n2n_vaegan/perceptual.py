"""The perceptual (LPIPS / VGG-16) reconstruction term, used only when its weights are on disk.

Nothing is ever downloaded: LPIPS needs the ``lpips`` package and torchvision's VGG-16
checkpoint in the torch hub cache. Without them the reconstruction term is L1 alone and
one warning says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from n2n_hub.kit import MissingWeightsError

log = logging.getLogger(__name__)
VGG16_FILE = "vgg16-397923af.pth"
_warned = False


def vgg16_checkpoint() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


class LPIPSLoss(nn.Module):
    """Per-sample LPIPS distance; grayscale inputs are repeated to three channels."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)
        return self.net(x, y)


def perceptual_loss(mode: str) -> nn.Module | None:
    """LPIPS when ``mode`` allows it and its weights are local; None means "L1 only"."""
    global _warned
    if mode == "l1":
        return None
    try:
        import lpips  # type: ignore[import-not-found]
    except ImportError:
        lpips = None
    if lpips is not None and vgg16_checkpoint().is_file():
        return LPIPSLoss(lpips.LPIPS(net="vgg", verbose=False))
    reason = ("the lpips package is not installed" if lpips is None
              else f"VGG-16 weights are not at {vgg16_checkpoint()}")
    if mode == "lpips":
        raise MissingWeightsError(f"the perceptual loss needs LPIPS but {reason}; install lpips and put {VGG16_FILE} "
                                  "in the torch hub cache, or use perceptual='l1'")
    if not _warned:
        log.warning("perceptual loss unavailable (%s); the reconstruction term is L1 only", reason)
        _warned = True
    return None
