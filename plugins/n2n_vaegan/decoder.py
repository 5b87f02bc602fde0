"""Decoder Λ: a BigGAN generator driven by z alone (Table S2b).

There is no class label: z passes through 3×(FC, LReLU) and an FC with a softmax over
pseudo-classes, whose output is embedded like BigGAN's one-hot class vector. Every
ResBlock is conditioned on [z, h] through conditional batch norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import VAEGANConfig


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose per-channel gain and bias are linear functions of a condition vector."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)
        for lin in (self.gain, self.bias):  # start as plain batch norm
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class UpResBlock(nn.Module):
    """BigGAN up-block: CBN, ReLU, ×2 upsample, conv, CBN, ReLU, conv, plus a 1×1 upsampled skip."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class SelfAttention(nn.Module):
    """BigGAN's non-local block; its output gain starts at 0 so it begins as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = max(1, channels // 8)
        self.theta = nn.Conv2d(channels, k, 1, bias=False)
        self.phi = nn.Conv2d(channels, k, 1, bias=False)
        self.g = nn.Conv2d(channels, max(1, channels // 2), 1, bias=False)
        self.out = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)                              # (B, k, HW)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)                 # (B, k, HW/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)                     # (B, c/2, HW/4)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)     # (B, HW, HW/4)
        o = (g @ attn.transpose(1, 2)).view(b, -1, h, w)
        return x + self.gamma * self.out(o)


class Decoder(nn.Module):
    """Latent ``(B, latent_dim)`` → image ``(B, C, H, W)`` in [-1, 1]."""

    def __init__(self, cfg: VAEGANConfig) -> None:
        super().__init__()
        hid = cfg.class_hidden
        self.pseudo_class = nn.Sequential(
            nn.Linear(cfg.latent_dim, hid), nn.LeakyReLU(0.2),
            nn.Linear(hid, hid), nn.LeakyReLU(0.2),
            nn.Linear(hid, hid), nn.LeakyReLU(0.2),
            nn.Linear(hid, cfg.num_pseudo_classes),
        )
        self.embed = nn.Linear(cfg.num_pseudo_classes, cfg.embed_dim, bias=False)
        cond = cfg.latent_dim + cfg.embed_dim
        widths = [m * cfg.dec_ch for m in cfg.dec_multipliers]
        self.start = widths[0]
        self.fc = nn.Linear(cfg.latent_dim, 16 * widths[0])
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        for i in range(cfg.num_up):
            self.blocks.append(UpResBlock(widths[i], widths[i + 1], cond))
            if 4 * 2 ** (i + 1) == cfg.attention_resolution:
                self.attention[str(i)] = SelfAttention(widths[i + 1])
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = nn.Conv2d(widths[-1], cfg.channels, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Λ_L of Eq. 17: the weight of the final convolution."""
        return self.out_conv.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.embed(torch.softmax(self.pseudo_class(z), dim=1))
        c = torch.cat([z, h], dim=1)
        x = self.fc(z).view(z.shape[0], self.start, 4, 4)
        for i, block in enumerate(self.blocks):
            x = block(x, c)
            if str(i) in self.attention:
                x = self.attention[str(i)](x)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(x))))
