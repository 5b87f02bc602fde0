"""The autoencoder g = Λ∘Θ: encoder, reparameterisation, decoder."""

from __future__ import annotations

import torch
from torch import nn

from .config import VAEGANConfig
from .decoder import Decoder
from .encoder import Encoder


class VAEGAN(nn.Module):
    """Θ (ResNet → Gaussian posterior) and Λ (BigGAN decoder); the loss and D live in :mod:`.losses`."""

    def __init__(self, cfg: VAEGANConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(μ, log σ²)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction of ``x`` from ``z = μ + σ·ε`` (or ``μ`` when ``sample`` is False), with ``μ, log σ²``."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return self.decode(z), mu, logvar
