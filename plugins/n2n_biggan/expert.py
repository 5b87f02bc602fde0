"""The loaded ``biggan`` expert: sample z_Θ = [z̃, ĥ] from its prior, decode it to images.

``decode`` feeds [z̃, ĥ] to the generator as its conditioning vector, i.e. through the
embedding path: ĥ replaces W c directly, so no class is ever picked by argmax and a
translated ĥ between classes renders as such.

``biggan@random-embedding`` (or :meth:`BigGANExpert.from_class_embedding`) builds the
expert on a class-embedding matrix alone, without generator weights: sampling,
dequantising and ``describe_latent`` work; ``decode`` raises.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import torch

from n2n_hub import Expert, ExpertSpec, PriorSample, Representation
from n2n_hub.kit import InputError, MissingWeightsError, ShapeError, check_batch, using_home

from . import DEFAULT_TRUNCATION, DEFAULT_VARIANT, RANDOM_EMBEDDING, VARIANTS, biggan_spec
from .dequantizer import DequantizerReport, DequantizerSettings, DequantizerVAE, class_spacing, load_or_train
from .latent import LatentLayout, check_truncation, truncated_normal


def random_class_embedding(num_classes: int = 1000, dim: int = 128, seed: int = 0) -> torch.Tensor:
    """The fixed ``(num_classes, dim)`` N(0, 1) matrix behind ``biggan@random-embedding``."""
    return torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(seed))


class BigGANExpert(Expert):
    """BigGAN-deep as a translation target; see the module docstring."""

    def __init__(
        self,
        spec: ExpertSpec,
        variant: str | None = None,
        device: str | torch.device = "cpu",
        *,
        truncation: float | None = None,
        dequantizer: DequantizerSettings | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(spec, variant or DEFAULT_VARIANT, device)
        settings = _variant_settings(spec, self.variant)
        t = check_truncation(truncation if truncation is not None else settings.get("truncation", DEFAULT_TRUNCATION))
        self.weights_location = None  # set when weights are loaded from files
        if self.variant == RANDOM_EMBEDDING:
            embedding = random_class_embedding(settings["num_classes"], settings["dim"], settings["seed"])
            self._setup(embedding, None, settings["z_dim"], t, dequantizer, progress, None)
            return
        from .weights import build_biggan, resolve_weights, weights_fingerprint

        location = resolve_weights(self.variant)
        model = build_biggan(location)
        self.weights_location = location
        self._setup(model.embeddings.weight.detach().t().contiguous(), model, int(model.config.z_dim), t,
                    dequantizer, progress, weights_fingerprint(location))

    @classmethod
    def from_class_embedding(
        cls,
        embedding: torch.Tensor,
        *,
        noise_dim: int | None = None,
        truncation: float = DEFAULT_TRUNCATION,
        class_names: Sequence[str] | None = None,
        dequantizer: DequantizerSettings | None = None,
        device: str | torch.device = "cpu",
        progress: bool = True,
        spec: ExpertSpec | None = None,
    ) -> "BigGANExpert":
        """An expert on an explicit ``(num_classes, dim)`` class embedding and no generator.

        ``noise_dim`` (z̃'s size) defaults to ``dim``, as in BigGAN-deep. The weights
        fingerprint (which keys the dequantiser cache) is a hash of the matrix.
        """
        embedding = torch.as_tensor(embedding, dtype=torch.float32)
        if embedding.ndim != 2:
            raise ShapeError(f"a class embedding must be (num_classes, dim), got {tuple(embedding.shape)}")
        self = cls.__new__(cls)
        Expert.__init__(self, spec or biggan_spec(), "class-embedding", device)
        self.weights_location = None
        self._names = tuple(class_names) if class_names is not None else None
        self._setup(embedding, None, int(noise_dim or embedding.shape[1]), truncation, dequantizer, progress, None)
        return self

    def _setup(self, embedding: torch.Tensor, model: torch.nn.Module | None, noise_dim: int, truncation: float,
               dequantizer: DequantizerSettings | None, progress: bool, weights_fp: str | None) -> None:
        self.model = model.to(self.device) if model is not None else None
        self.embedding = embedding.float().cpu()
        self.layout = LatentLayout(noise_dim, int(embedding.shape[1]))
        self.truncation = check_truncation(truncation)
        self.weights_fingerprint = weights_fp or "emb-" + hashlib.sha256(
            self.embedding.contiguous().numpy().tobytes()).hexdigest()[:16]
        self._dq_settings = dequantizer
        self._progress = progress
        self._dequantizer: DequantizerVAE | None = None
        self._dq_report: DequantizerReport | None = None
        self._dq_path: Path | None = None
        self._spacing = float(class_spacing(self.embedding).mean())
        if not hasattr(self, "_names"):
            self._names = None
        if self._names is not None and len(self._names) != self.num_classes:
            raise InputError(f"{len(self._names)} class names for {self.num_classes} classes")

    # -- shapes and identity -------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.embedding.shape[0])

    @property
    def class_names(self) -> tuple[str, ...] | None:
        if self._names is not None:
            return self._names
        names = self.spec.class_names
        return names if names is not None and len(names) == self.num_classes else None

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(3, H, W)`` of decoded images, or None without a generator."""
        return (3, int(self.model.config.output_dim), int(self.model.config.output_dim)) if self.model else None

    def latent_representation(self) -> Representation:
        return Representation((self.layout.dim,))

    def representation_for(self, tap: str | None = None) -> Representation:
        """BigGAN cannot encode; its only representation is the latent ``[z̃, ĥ]``."""
        if tap is not None:
            return self.spec.tap_representation(tap)
        return self.latent_representation()

    def fingerprint(self) -> str:
        """Hash of the weight files (or the class embedding), plus the truncation (it changes the prior)."""
        h = hashlib.sha256(f"{self.weights_fingerprint};truncation={self.truncation!r}".encode())
        return f"biggan-{h.hexdigest()[:16]}"

    # -- the dequantiser -------------------------------------------------------------------
    @property
    def dequantizer(self) -> DequantizerVAE:
        """The class-embedding VAE, loaded from the cache or trained on first use."""
        if self._dequantizer is None:
            with using_home(self.home):  # cached under the home of the hub that loaded this expert
                vae, report, path = load_or_train(self.embedding, self.weights_fingerprint, self._dq_settings,
                                                  progress=self._progress)
            self._dequantizer, self._dq_report, self._dq_path = vae, report, path
        return self._dequantizer

    @property
    def dequantizer_report(self) -> DequantizerReport:
        """Reconstruction error of ĥ vs the spacing between classes (loads the dequantiser)."""
        self.dequantizer  # noqa: B018
        assert self._dq_report is not None
        return self._dq_report

    @property
    def dequantizer_path(self) -> Path:
        """Where the dequantiser is cached (loads it)."""
        self.dequantizer  # noqa: B018
        assert self._dq_path is not None
        return self._dq_path

    def dequantize(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """ĥ for class ids: the VAE's stochastic reconstruction of their embedding rows."""
        labels = self._check_labels(labels)
        vae = self.dequantizer
        with torch.no_grad():
            return vae(self.embedding[labels], generator=generator)

    # -- prior, decoding, description ---------------------------------------------------
    def sample_prior(self, n: int, generator: torch.Generator | None = None,
                     labels: torch.Tensor | Sequence[int] | None = None) -> PriorSample:
        """``n`` latents [z̃, ĥ(c)] with c uniform over classes (or the given ``labels``)."""
        if labels is None:
            labels = torch.randint(self.num_classes, (int(n),), generator=generator)
        labels = self._check_labels(labels)
        if labels.numel() != n:
            raise ShapeError(f"got {labels.numel()} labels for {n} samples")
        noise = truncated_normal(int(n), self.layout.noise_dim, self.truncation, generator)
        z = self.layout.join(noise, self.dequantize(labels, generator))
        return PriorSample(latents=z.to(self.device), extras={"label": labels})

    def decode(self, z: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """``(B, noise_dim + embed_dim)`` → images ``(B, 3, H, W)`` in [-1, 1]."""
        if self.model is None:
            raise MissingWeightsError(
                f"biggan@{self.variant} has a class embedding but no generator, so it cannot render images; "
                f"use biggan@{DEFAULT_VARIANT} (or another variant with weights) to decode"
            )
        check_batch(z, self.latent_representation(), "biggan latent")
        out = []
        with torch.no_grad():
            for chunk in z.to(self.device, torch.float32).split(batch_size):
                out.append(self.model.generator(chunk, self.truncation))
        return torch.cat(out) if out else torch.empty(0, *self.image_shape, device=self.device)

    def describe_latent(self, z: torch.Tensor) -> list[dict[str, Any]]:
        """Per sample: the class whose embedding is nearest to ĥ, its distance, and that distance
        relative to the mean spacing between classes."""
        check_batch(z, self.latent_representation(), "biggan latent")
        _, h = self.layout.split(z.detach().float().cpu())
        dist, idx = torch.cdist(h, self.embedding).min(dim=1)
        names = self.class_names
        return [
            {"class_id": int(i), "class_name": names[int(i)] if names else str(int(i)),
             "distance": float(d), "distance_to_spacing": float(d) / self._spacing}
            for d, i in zip(dist, idx)
        ]

    def class_scores(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, classes)`` scores of each latent's ĥ: minus its distance to every class embedding."""
        check_batch(z, self.latent_representation(), "biggan latent")
        _, h = self.layout.split(z.detach().float().cpu())
        return -torch.cdist(h, self.embedding)

    def _check_labels(self, labels: torch.Tensor | Sequence[int]) -> torch.Tensor:
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).cpu()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise InputError(f"class ids must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        return labels


def _variant_settings(spec: ExpertSpec, variant: str) -> dict[str, Any]:
    found = spec.variant(variant) or next((v for v in VARIANTS if v.name == variant), None)
    return dict(found.settings) if found else {}
