"""Encoder Θ: a timm ResNet whose pooled features predict a diagonal Gaussian over z (Table S2a)."""

from __future__ import annotations

import torch
from torch import nn
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from .config import VAEGANConfig

LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(log σ²) finite early in training


class Encoder(nn.Module):
    """Image ``(B, C, H, W)`` → ``(μ, log σ²)``, each ``(B, latent_dim)``."""

    def __init__(self, cfg: VAEGANConfig) -> None:
        super().__init__()
        block = Bottleneck if cfg.enc_block == "bottleneck" else BasicBlock
        self.backbone = ResNet(
            block=block, layers=cfg.enc_layers, channels=cfg.enc_channels, in_chans=cfg.channels,
            num_classes=0, global_pool="avg",
        )
        if not cfg.enc_stem_pool:
            self.backbone.maxpool = nn.Identity()  # 32-px inputs would lose too much detail
        self.head = nn.Linear(self.backbone.num_features, 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.backbone(x)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)
