"""The training objective of Sec. F (Eqs. 14-18).

Generator side: ``L_rec = Σ_pixels(‖y − ŷ‖ / γ + log γ)`` with a learnable scalar
``log γ`` (Eq. 18), plus ``kl_weight · KL(q(z|y) ‖ N(0, I))`` (Eq. 14), plus
``λ · L_GAN`` once the discriminator has started, with the adaptive weight of Eq. 17
``λ = ‖∇_{Λ_L} L_rec‖ / (‖∇_{Λ_L} L_GAN‖ + δ)``. The discriminator uses the hinge loss.
Sums run over pixels and latent dimensions and average over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import VAEGANConfig
from .discriminator import PatchDiscriminator
from .perceptual import perceptual_loss


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over dimensions, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def adaptive_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                    delta: float = 1e-4, max_value: float = 1e4) -> torch.Tensor:
    """Eq. 17: balance the GAN gradient against the reconstruction gradient at Λ_L (detached, clamped)."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    lam = g_rec.norm() / (g_gan.norm() + delta)
    return lam.clamp(0.0, max_value).detach()


@dataclass
class LossParts:
    """The generator objective and its parts (floats for logging)."""

    total: torch.Tensor
    rec: float
    l1: float
    kl: float
    gan: float
    lam: float
    log_gamma: float


class VAEGANLoss(nn.Module):
    """Holds log γ and the discriminator; computes both players' losses."""

    def __init__(self, cfg: VAEGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.log_gamma = nn.Parameter(torch.tensor(float(cfg.logvar_init)))
        self.discriminator = PatchDiscriminator(cfg.channels, cfg.disc_ch, cfg.disc_layers)
        self.perceptual = perceptual_loss(cfg.perceptual)

    def distance(self, x: torch.Tensor, xrec: torch.Tensor) -> torch.Tensor:
        """Per-pixel reconstruction distance ‖y − ŷ‖: L1, plus LPIPS when available."""
        d = (x - xrec).abs()
        if self.perceptual is not None:
            d = d + self.perceptual(x, xrec)
        return d

    def rec_loss(self, x: torch.Tensor, xrec: torch.Tensor) -> torch.Tensor:
        """Eq. 18: ‖y − ŷ‖ / γ + log γ, summed over pixels, averaged over the batch."""
        nll = self.distance(x, xrec) / self.log_gamma.exp() + self.log_gamma
        return nll.sum() / x.shape[0]

    def gan_active(self, step: int) -> bool:
        return self.cfg.disc_weight > 0 and step >= self.cfg.disc_start

    def generator_loss(self, x: torch.Tensor, xrec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                       last_layer: torch.Tensor, step: int) -> LossParts:
        rec = self.rec_loss(x, xrec)
        kl = kl_to_standard_normal(mu, logvar)
        total = rec + self.cfg.kl_weight * kl
        gan_value, lam_value = 0.0, 0.0
        if self.gan_active(step):
            gan = -self.discriminator(xrec).mean()
            lam = adaptive_weight(rec, gan, last_layer, self.cfg.adaptive_delta, self.cfg.adaptive_max)
            total = total + self.cfg.disc_weight * lam * gan
            gan_value, lam_value = gan.item(), lam.item()
        return LossParts(total=total, rec=rec.item(), l1=(x - xrec).detach().abs().mean().item(), kl=kl.item(),
                         gan=gan_value, lam=lam_value, log_gamma=self.log_gamma.item())

    def discriminator_loss(self, x: torch.Tensor, xrec: torch.Tensor) -> torch.Tensor:
        """Hinge loss on real images and (detached) reconstructions."""
        real = self.discriminator(x)
        fake = self.discriminator(xrec.detach())
        return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
