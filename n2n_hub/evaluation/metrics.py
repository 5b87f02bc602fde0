"""How good is a trained translator on held-out data? Likelihood, sample quality, diversity, consistency.

Every number is computed on the pair's held-out split (a :class:`HeldOut`: the test pairs
and, for recipes whose rows are dataset items, the dataset's raw test items), for a translator
given as a value: one the hub paired, or one built by hand, are evaluated the same way:

* ``nll``: NLL of the real target latents under the cINN, nats/dim (cINN only; the MLP
  reports its squared error per dimension as ``mse`` instead);
* ``fd_latent``: Fréchet distance between generated and real target latents (one sample
  per held-out condition). ``fd_latent_floor`` is what an independent set of real latents
  of the same size (from the training split) scores: with ~1000 samples the estimator's
  bias is not small, so a sampler of the true p(z | c) lands near the floor, while a
  translator that reproduces each held-out item almost exactly (a near-invertible layer)
  can score far below it;
* ``fd_latent_unpaired``: the generated latents against that independent real set instead:
  copying each held-out item earns nothing here, so a sampler of the true p(z | c) scores
  about ``fd_latent_floor`` at every layer, and only a translator whose samples lose the
  distribution (an MLP returning conditional means) rises above it;
* ``fd_features``: the same in a feature space of images: an expert's encoding of the
  decoded samples vs. of the real images (Inception's when installed, as FID; otherwise
  another image expert). Spatial features are averaged over positions, as FID pools
  Inception's last feature map. ``fd_features_reconstruction`` is the value for decoded
  *real* latents (what the target's autoencoder itself loses) and ``fd_features_floor``
  the value for independent real items (recipes whose rows are dataset items);
* ``diversity_latent`` / ``diversity_pixels``: mean pairwise distance among ``n`` samples
  for the same condition, as a root mean square per dimension (0 for the deterministic MLP);
* ``consistency_cosine`` / ``consistency_rel_l2``: re-encode each decoded sample with the
  source expert and compare it with the condition it came from (only when the source
  reads what the target outputs); ``*_reconstruction`` are the same for decoded real latents.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import IncompatiblePairError, InputError, ShapeError
from ..spec.expert import Expert, ExpertAddress, ExpertSpec
from ..spec.kinds import get_kind
from ..data.recipes import PairData, encode_batched

if TYPE_CHECKING:
    from ..catalog.planning import PairPlan
    from ..translators.translator import Translator

# Feature spaces tried in order when none is given; the first one installed and loadable wins.
PREFERRED_FEATURES = ("inception", "segmenter:middle")
BATCH = 256


# -- the Fréchet distance -----------------------------------------------------------------
def _as_float64(x: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ShapeError(f"{what} must be a matrix (N, D) with N >= 2 rows, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ShapeError(f"{what} contains NaN or inf")
    return a


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues → 0)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_from_moments(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), the Fréchet (2-Wasserstein²) distance of two Gaussians.

    Tr((Σ1Σ2)^½) is computed as Tr((Σ1^½ Σ2 Σ1^½)^½), whose argument is symmetric PSD, so
    only symmetric eigen-decompositions are needed: no complex parts, no failing sqrtm on
    singular covariances (fewer samples than dimensions).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ShapeError(f"moments do not match: means {mu1.shape}, {mu2.shape}; covariances "
                         f"{sigma1.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    cross = root1 @ sigma2 @ root1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((cross + cross.T) / 2), 0.0, None)).sum())
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def frechet_distance(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sample sets ``(N, D)`` and ``(M, D)``."""
    a, b = _as_float64(x, "first sample set"), _as_float64(y, "second sample set")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"sample sets have {a.shape[1]} and {b.shape[1]} dimensions")
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def mean_pairwise_rms(samples: torch.Tensor) -> float:
    """Mean over conditions and sample pairs of ‖a−b‖/√dim, for ``samples`` of shape ``(B, n, ...)``."""
    if samples.dim() < 3 or samples.shape[1] < 2:
        raise ShapeError(f"diversity needs (conditions, n >= 2 samples, ...), got {tuple(samples.shape)}")
    flat = samples.reshape(samples.shape[0], samples.shape[1], -1).double()
    d = torch.cdist(flat, flat)  # (B, n, n)
    n = flat.shape[1]
    return float(d.sum() / (flat.shape[0] * n * (n - 1)) / math.sqrt(flat.shape[2]))


def pooled(features: torch.Tensor) -> torch.Tensor:
    """Per-sample feature vectors: spatial maps are averaged over positions, the rest flattened."""
    if features.dim() == 4:
        return features.mean(dim=(2, 3))
    return features.reshape(features.shape[0], -1)


# -- the report ---------------------------------------------------------------------------
METRICS: tuple[tuple[str, str], ...] = (
    ("nll", "NLL of real latents (nats/dim)"),
    ("mse", "squared error of the prediction (per dim)"),
    ("fd_latent", "Fréchet distance, latents"),
    ("fd_latent_unpaired", "  same against independent real latents"),
    ("fd_latent_floor", "  same for independent real latents"),
    ("fd_features", "Fréchet distance, image features"),
    ("fd_features_reconstruction", "  same for reconstructions of the real items"),
    ("fd_features_floor", "  same for independent real items"),
    ("diversity_latent", "diversity per condition, latents (RMS)"),
    ("diversity_pixels", "diversity per condition, pixels (RMS)"),
    ("consistency_cosine", "consistency: cosine(source(sample), condition)"),
    ("consistency_rel_l2", "consistency: relative L2 error"),
    ("consistency_cosine_reconstruction", "  cosine for reconstructions (ceiling)"),
)


@dataclass
class Evaluation:
    """One translator's held-out metrics (``None`` where a metric does not apply)."""

    source: str
    target: str
    kind: str
    translator_path: str | None
    conditions: int
    per_condition: int
    features: str | None
    seed: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    compute: dict[str, Any] | None = None  # what training the translator cost (n2n_hub.training.compute)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A two-column text table of the metrics that apply."""
        head = (f"{self.source} -> {self.target} ({self.kind}; {self.conditions} held-out conditions, "
                f"{self.per_condition} samples each for diversity; features: {self.features or 'none'})")
        rows = [(label, self.metrics.get(key)) for key, label in METRICS if self.metrics.get(key) is not None]
        width = max((len(label) for label, _ in rows), default=10)
        lines = [head] + [f"  {label:<{width}}  {format_value(v)}" for label, v in rows]
        if self.compute:
            from ..training.compute import ComputeRecord

            lines.append(f"  training cost: {ComputeRecord(**self.compute).summary()}")
        return "\n".join(lines)


def format_value(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.1f}"


# -- what a translator is evaluated on ------------------------------------------------------
@dataclass
class HeldOut:
    """A pair's held-out pairs, its training pairs, and the dataset items behind them.

    ``test_items`` / ``train_items`` are the dataset's splits (``{domain: data}``) when the
    recipe's rows are dataset items (``RecipeSpec.rows_are_items``): row ``i`` of ``test``
    comes from item ``i % N`` of ``test_items``. Without them, decoded real latents stand in
    for the real images and the floors that need independent real items are not measured.
    """

    test: PairData
    train: PairData
    test_items: dict[str, Any] | None = None
    train_items: dict[str, Any] | None = None


@dataclass(frozen=True)
class FeatureSpace:
    """An expert whose encodings of images are compared (as FID compares Inception's); ``name`` is
    how reports cite it (``id[:tap][@variant]``)."""

    name: str
    expert: Expert
    tap: str | None = None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return pooled(encode_batched(self.expert, images, self.tap, BATCH, f"features with {self.name}", False))


def check_features(name: str, spec: ExpertSpec, target: Expert) -> None:
    """Refuse a feature expert that does not read what the target outputs."""
    domain = target.spec.output_domain
    if spec.input_domain != domain:
        raise IncompatiblePairError(f"--features {name}: it reads '{spec.input_domain}', but "
                                    f"{target.spec.id} outputs '{domain}'")


def fits_as_default_features(spec: ExpertSpec, target: Expert) -> bool:
    """Whether a :data:`PREFERRED_FEATURES` candidate reads the target's images as they come out."""
    return spec.input_domain == "image" and not (spec.input_shape and target.spec.output_shape
                                                 and tuple(spec.input_shape) != tuple(target.spec.output_shape))


def target_features(target: Expert) -> FeatureSpace | None:
    """The last resort for image targets: the target's own encoder (None if it has none)."""
    if not target.spec.can_encode:
        return None
    return FeatureSpace(str(ExpertAddress(target.spec.id, None, target.variant)), target)


def target_items(translator: Translator, items: dict[str, Any] | None) -> Any | None:
    """What the target encoded from a split's items (None when the rows are not dataset items)."""
    return None if items is None else items[translator.target.spec.input_domain]


def _consistency(source: Expert, tap: str | None, images: torch.Tensor, c: torch.Tensor) -> tuple[float, float]:
    f = encode_batched(source, images, tap, BATCH, "re-encoding", False).reshape(images.shape[0], -1).double()
    ref = c.reshape(c.shape[0], -1).double().cpu()
    cos = torch.nn.functional.cosine_similarity(f, ref, dim=1).mean()
    rel = ((f - ref).norm(dim=1) / ref.norm(dim=1).clamp(min=1e-12)).mean()
    return float(cos), float(rel)


def plan_of(translator: Translator, plan: PairPlan | None = None) -> PairPlan:
    """The plan the translator was paired with (a given one only for translators built by hand)."""
    plan = plan if plan is not None else translator.plan
    if plan is None:
        raise InputError("this translator carries no pair plan; pair it through the hub, or pass the plan")
    return plan


# -- evaluating ---------------------------------------------------------------------------
@torch.no_grad()
def evaluate_translator(translator: Translator, data: HeldOut, *, features: FeatureSpace | None = None,
                        samples: int | None = None, per_condition: int = 8, diversity_conditions: int = 64,
                        seed: int = 0, temperature: float = 1.0) -> Evaluation:
    """All metrics of :mod:`n2n_hub.evaluation.metrics` for one trained translator on ``data``.

    ``features`` is the feature space of ``fd_features`` (None: no feature distances).
    """
    from ..training import evaluate as objective_per_dim

    if per_condition < 2:
        raise InputError(f"--per-condition must be at least 2 to measure diversity, got {per_condition}")
    source_address, target_address = translator.source_address, translator.target_address
    c_all, z_all = data.test.source, data.test.target
    n = c_all.shape[0]
    if n < 2:
        raise InputError(f"only {n} held-out pairs for {source_address} -> {target_address}: need at least 2")
    m = n if samples is None else min(samples, n)
    if m < 2:
        raise InputError(f"--samples must be at least 2, got {samples}")
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=gen)[:m].sort().values if m < n else torch.arange(n)
    c, z_real = c_all[rows], z_all[rows]
    module, target, source = translator.module, translator.target, translator.source
    device = next(module.parameters()).device
    metrics: dict[str, float | None] = {k: None for k, _ in METRICS}

    score = objective_per_dim(module, c, z_real, device=device)
    metrics[get_kind(translator.kind).objective] = score

    def sample(cond: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
        out = [module.sample(cond[i:i + BATCH].to(device), n=k, temperature=temperature, generator=g).cpu()
               for i in range(0, cond.shape[0], BATCH)]
        return torch.cat(out)

    g = torch.Generator(device=device).manual_seed(seed + 1)
    z_gen = sample(c, 1, g)[:, 0]
    metrics["fd_latent"] = frechet_distance(z_gen, z_real)
    z_train = data.train.target
    floor_rows = torch.randperm(z_train.shape[0], generator=gen)[:m]
    metrics["fd_latent_floor"] = frechet_distance(z_train[floor_rows], z_real)
    metrics["fd_latent_unpaired"] = frechet_distance(z_gen, z_train[floor_rows])

    k_cond = min(diversity_conditions, m)
    z_div = sample(c[:k_cond], per_condition, g)  # (k, n, D)
    metrics["diversity_latent"] = mean_pairwise_rms(z_div)

    if target.spec.can_decode and target.spec.output_domain == "image":
        shape = translator.latent_shape

        def decode(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([target.decode(z[i:i + BATCH].reshape(-1, *shape)).float().cpu()
                              for i in range(0, z.shape[0], BATCH)])

        x_gen, x_rec = decode(z_gen), decode(z_real)
        x_div = decode(z_div.reshape(-1, z_div.shape[-1])).reshape(k_cond, per_condition, *x_gen.shape[1:])
        metrics["diversity_pixels"] = mean_pairwise_rms(x_div)
        real = target_items(translator, data.test_items)
        if real is not None and n % len(real):
            raise ShapeError(f"{n} held-out pairs do not repeat the {len(real)} held-out items evenly")
        x_real = real[rows % real.shape[0]] if real is not None else x_rec
        if features is not None:
            f_real = features(x_real)
            metrics["fd_features"] = frechet_distance(features(x_gen), f_real)
            train_items = target_items(translator, data.train_items)
            if real is not None and train_items is not None:
                metrics["fd_features_reconstruction"] = frechet_distance(features(x_rec), f_real)
                pick = torch.randperm(len(train_items), generator=gen)[:m]
                metrics["fd_features_floor"] = frechet_distance(features(train_items[pick]), f_real)
        if source.spec.input_domain == "image" and tuple(x_gen.shape[1:]) == tuple(source.spec.input_shape or ()):
            cos, rel = _consistency(source, source_address.tap, x_gen, c)
            metrics["consistency_cosine"], metrics["consistency_rel_l2"] = cos, rel
            metrics["consistency_cosine_reconstruction"] = _consistency(source, source_address.tap, x_rec, c)[0]
    return Evaluation(str(source_address), str(target_address), translator.kind,
                      str(translator.path) if translator.path else None, m, per_condition,
                      features.name if features is not None else None, seed, metrics,
                      compute=translator.metadata.get("compute"))
