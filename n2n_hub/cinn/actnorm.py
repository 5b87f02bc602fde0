"""Activation normalisation (Glow) with data-dependent initialisation."""

from __future__ import annotations

import torch
from torch import nn


class ActNorm(nn.Module):
    """Per-channel affine map ``y = (x + bias) * exp(log_scale)`` over dim 1.

    The first batch seen in training mode sets bias and scale so that the output has
    zero mean and unit variance per channel. Whether that happened is a Python flag
    mirrored in a buffer, so the forward pass never reads a tensor back to the host.
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.log_scale = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self._initialized = False

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set bias and scale from a batch so its output is standardised per channel."""
        dims = [d for d in range(x.dim()) if d != 1]
        mean = x.mean(dim=dims)
        std = x.std(dim=dims, unbiased=False) if x.numel() // self.num_features > 1 else torch.ones_like(mean)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)
        self._initialized = True

    def initialize_from(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation from batch ``x`` (what the first training forward does)."""
        self.initialize(x)

    @property
    def is_initialized(self) -> bool:
        """Whether bias and scale have been set from data (or loaded)."""
        return self._initialized

    def reset(self) -> None:
        """Forget the initialisation, so the next training-mode forward sets it again."""
        self.initialized.fill_(False)
        self._initialized = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        key = prefix + "initialized"
        if key in state_dict:
            self._initialized = bool(state_dict[key])

    def forward(self, x: torch.Tensor, rev: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(y, log|det dy/dx|)``; the log-det is per sample, shape ``(B,)``."""
        if not rev and self.training and not self._initialized:
            self.initialize(x)
        spatial = x[0, 0].numel() if x.dim() > 2 else 1
        logdet = self.log_scale.sum() * spatial
        if rev:
            y = x * torch.exp(-self._view(self.log_scale, x)) - self._view(self.bias, x)
            return y, (-logdet).expand(x.shape[0])
        y = (x + self._view(self.bias, x)) * torch.exp(self._view(self.log_scale, x))
        return y, logdet.expand(x.shape[0])
