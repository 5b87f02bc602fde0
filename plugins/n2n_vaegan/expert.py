"""The ``vaegan`` expert: encode images to the posterior mean μ, decode latents to images."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from n2n_hub import Expert, ExpertSpec, PriorSample, Representation
from n2n_hub.kit import check_batch, check_images, sha256_file

from .checkpoint import WEIGHTS, load_model

WEIGHTS_DIR = Path(__file__).parent / "weights"
NAMED = {"animals": WEIGHTS_DIR / "animals.safetensors"}
BATCH = 256


def weights_file_for(variant: str) -> Path:
    """A named variant's shipped file, or the file behind a user path (``vaegan@/path``)."""
    return WEIGHTS.for_variant(variant, NAMED)


class VAEGANExpert(Expert):
    """Autoencoder g = Λ∘Θ of Sec. F: ``encode`` → μ ``(B, latent)``, ``decode`` → images in [-1, 1].

    ``encode`` returns the deterministic posterior mean (no sampling), so encoding is
    reproducible; ``sample_prior`` draws z ~ N(0, I), the prior the KL term pulls toward.
    """

    def __init__(self, spec: ExpertSpec, variant: str | None, device: str | torch.device = "cpu") -> None:
        variant = variant or spec.default_variant or "animals"
        super().__init__(spec, variant, device)
        self.weights_file = weights_file_for(variant)
        self.model, self.info = load_model(self.weights_file, self.device)
        self.config = self.model.config
        self._fingerprint = sha256_file(self.weights_file)
        latent = Representation((self.config.latent_dim,))
        shape = self.config.image_shape
        if (spec.representation, spec.latent, spec.input_shape, spec.output_shape) != (latent, latent, shape, shape):
            self.spec = dataclasses.replace(spec, representation=latent, latent=latent,
                                            input_shape=shape, output_shape=shape)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def representation_for(self, tap: str | None = None) -> Representation:
        if tap is not None:
            return self.spec.tap_representation(tap)  # raises: vaegan has no taps
        return Representation((self.config.latent_dim,))

    def latent_representation(self) -> Representation:
        return Representation((self.config.latent_dim,))

    def _check_images(self, images: Any) -> torch.Tensor:
        return check_images(images, self.image_shape, f"vaegan@{self.variant}", self.device)

    @torch.no_grad()
    def encode(self, inputs: Any, tap: str | None = None) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] → posterior means μ ``(B, latent_dim)``."""
        if tap is not None:
            self.spec.tap_representation(tap)
        x = self._check_images(inputs)
        mus = [self.model.encode(x[i:i + BATCH])[0] for i in range(0, x.shape[0], BATCH)]
        return torch.cat(mus) if mus else x.new_zeros(0, self.config.latent_dim)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, latent_dim)`` → images ``(B, C, H, W)`` in [-1, 1]."""
        check_batch(z, self.latent_representation(), "vaegan latent")
        z = z.to(self.device, torch.float32)
        outs = [self.model.decode(z[i:i + BATCH]) for i in range(0, z.shape[0], BATCH)]
        return torch.cat(outs) if outs else z.new_zeros(0, *self.image_shape)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> PriorSample:
        """``n`` latents z ~ N(0, I) (drawn on the CPU so a seeded generator gives the same z everywhere)."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return PriorSample(latents=z.to(self.device))

    def fingerprint(self) -> str:
        """sha256 of the weights file."""
        return self._fingerprint
