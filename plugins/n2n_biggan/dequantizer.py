"""Dequantising BigGAN's class embedding (net2net supplement, Sec. G.2, Table S4).

h = W c takes only K distinct values, so a flow fitted to [z̃, h] would collapse onto
them. A small fully connected VAE over the K rows of W replaces h by its stochastic
reconstruction ĥ, a continuous distribution concentrated around each row.

Architecture (Table S4, widths configurable): encoder ``encoder_layers``×(FC, LReLU) at
``width`` then (FC, LReLU) → ``latent_dim``; linear μ and log σ² heads; decoder
``decoder_layers``×(FC, LReLU) at ``width`` then FC → dim, LReLU slope 0.01. Deviations,
all for a fast first use on a CPU: the default width scales with the embedding
(``2·dim`` clamped to [64, 1024]; the paper's is 4096, ``DequantizerSettings.paper``);
the decoder's last layer is linear (h has signed entries); a linear shortcut runs
around the encoder and decoder MLPs and training starts at the ELBO's optimum for an
identity map, so 200 full-batch steps suffice where the plain MLPs need thousands to
learn a near-identity map on 1000 arbitrary points.

The likelihood is Gaussian with a fixed standard deviation tied to the class spacing
(``noise_ratio`` × mean nearest-class distance / √dim), so ĥ's spread is a chosen
fraction of the distance between classes whatever the scale of W.

The trained VAE is cached per weights fingerprint at
``experts_dir("biggan")/<fingerprint>/dequantizer.safetensors`` (non-default settings
add a suffix), written atomically under a file lock so concurrent first uses train once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from n2n_hub.kit import CacheError, atomic_path, experts_dir

FILE_NAME = "dequantizer.safetensors"
FORMAT = "n2n-biggan-dequantizer/1"


@dataclass(frozen=True)
class DequantizerSettings:
    """Widths and training schedule of the dequantising VAE."""

    width: int
    latent_dim: int
    encoder_layers: int = 3
    decoder_layers: int = 4
    steps: int = 200
    lr: float = 3e-3
    noise_ratio: float = 0.1
    seed: int = 0

    @classmethod
    def for_dim(cls, dim: int) -> "DequantizerSettings":
        """Defaults for an embedding of ``dim`` entries: width 2·dim in [64, 1024], latent = dim."""
        return cls(width=int(min(1024, max(64, 2 * dim))), latent_dim=int(dim))

    @classmethod
    def paper(cls, dim: int = 128) -> "DequantizerSettings":
        """Table S4's widths (4096); slow to train on a CPU."""
        return cls(width=4096, latent_dim=int(dim))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class DequantizerReport:
    """How close ĥ stays to h, measured against the spacing of the class embeddings."""

    mean_error: float  # E‖ĥ − h‖ over classes and noise draws
    mean_class_spacing: float  # mean over classes of the distance to the nearest other class
    min_class_spacing: float
    error_to_spacing: float  # mean_error / mean_class_spacing
    nearest_class_accuracy: float  # fraction of ĥ whose nearest row of W is its own class

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DequantizerVAE(nn.Module):
    """Fully connected VAE over class embeddings; ``forward`` gives the stochastic reconstruction."""

    def __init__(self, dim: int, settings: DequantizerSettings) -> None:
        super().__init__()
        w, lat = settings.width, settings.latent_dim
        self.dim = dim
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        enc: list[nn.Module] = []
        for i in range(settings.encoder_layers):
            enc += [nn.Linear(dim if i == 0 else w, w), nn.LeakyReLU(0.01)]
        enc += [nn.Linear(w, lat), nn.LeakyReLU(0.01)]
        self.encoder = nn.Sequential(*enc)
        self.mu = nn.Linear(lat, lat)
        self.logvar = nn.Linear(lat, lat)
        dec: list[nn.Module] = []
        for i in range(settings.decoder_layers):
            dec += [nn.Linear(lat if i == 0 else w, w), nn.LeakyReLU(0.01)]
        dec += [nn.Linear(w, dim)]
        self.decoder = nn.Sequential(*dec)
        # Linear shortcuts around both MLPs: the near-identity map the VAE needs is then
        # reachable in a few hundred steps instead of thousands.
        self.encoder_skip = nn.Linear(dim, lat, bias=False)
        self.decoder_skip = nn.Linear(lat, dim, bias=False)

    def encode_normalised(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.encoder(x)
        return self.mu(e) + self.encoder_skip(x), self.logvar(e).clamp(-30.0, 20.0)

    def decode_normalised(self, v: torch.Tensor) -> torch.Tensor:
        return self.decoder(v) + self.decoder_skip(v)

    def encode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_normalised((h - self.center) / self.scale)

    def decode(self, v: torch.Tensor) -> torch.Tensor:
        return self.decode_normalised(v) * self.scale + self.center

    def forward(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.encode(h)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return self.decode(mu + eps * (0.5 * logvar).exp())


def class_spacing(embedding: torch.Tensor) -> torch.Tensor:
    """Per class, the distance from its embedding to the nearest other class's."""
    d = torch.cdist(embedding, embedding)
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


def train_dequantizer(
    embedding: torch.Tensor, settings: DequantizerSettings, progress: bool = True
) -> tuple[DequantizerVAE, DequantizerReport]:
    """Fit the VAE to the K rows of ``embedding`` (K, dim); deterministic given ``settings.seed``."""
    from n2n_hub.kit import tqdm

    h = embedding.detach().float().cpu()
    dim = h.shape[1]
    with torch.random.fork_rng(devices=[]), _cpu_settings(settings.width), torch.enable_grad():
        torch.manual_seed(settings.seed)
        vae = DequantizerVAE(dim, settings)
        vae.center.copy_(h.mean(dim=0))
        vae.scale.copy_(h.std().clamp(min=1e-8))
        x = (h - vae.center) / vae.scale
        sigma = float(settings.noise_ratio * class_spacing(x).mean() / dim ** 0.5)
        _init_near_optimum(vae, sigma)
        opt = torch.optim.Adam(vae.parameters(), lr=settings.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.steps)
        bar = tqdm(range(settings.steps), desc="Training BigGAN class-embedding dequantiser",
                   disable=not progress, leave=False)
        for _ in bar:
            mu, logvar = vae.encode_normalised(x)
            v = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            rec = ((vae.decode_normalised(v) - x) ** 2).sum(dim=1) / (2 * sigma ** 2)
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3g}", refresh=False)
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    return vae, evaluate(vae, h, seed=settings.seed)


@torch.no_grad()
def _init_near_optimum(vae: DequantizerVAE, sigma: float) -> None:
    """Start at the ELBO's optimum for an identity decoder: μ = x, σ = the likelihood's σ.

    With a unit prior and likelihood std ``s``, an identity autoencoder's optimal posterior
    std is ≈ s, so training only refines; a few hundred full-batch steps suffice.
    """
    for lin in (vae.mu, vae.decoder[-1]):
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)
    nn.init.zeros_(vae.logvar.weight)
    vae.logvar.bias.fill_(2.0 * math.log(sigma))
    if vae.encoder_skip.weight.shape[0] == vae.encoder_skip.weight.shape[1]:
        vae.encoder_skip.weight.copy_(torch.eye(vae.dim))
        vae.decoder_skip.weight.copy_(torch.eye(vae.dim))


@contextlib.contextmanager
def _cpu_settings(width: int) -> Iterator[None]:
    """One thread and flushed denormals while training a small MLP.

    On a shared CPU, idle-spinning extra threads cost up to 10× more than they give, and
    Adam's tiny second moments turn denormal and slow every op; both settings are restored.
    """
    before = torch.get_num_threads()
    if width <= 1024:
        torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(before)


@torch.no_grad()
def evaluate(vae: DequantizerVAE, embedding: torch.Tensor, draws: int = 8, seed: int = 0) -> DequantizerReport:
    """Reconstruction error of ĥ relative to the spacing between classes."""
    g = torch.Generator().manual_seed(seed + 1)
    h = embedding.float().cpu()
    spacing = class_spacing(h)
    labels = torch.arange(h.shape[0]).repeat(draws)
    hat = vae(h[labels], generator=g)
    err = (hat - h[labels]).norm(dim=1)
    nearest = torch.cdist(hat, h).argmin(dim=1)
    mean_err, mean_sp = err.mean().item(), spacing.mean().item()
    return DequantizerReport(
        mean_error=mean_err, mean_class_spacing=mean_sp, min_class_spacing=spacing.min().item(),
        error_to_spacing=mean_err / mean_sp, nearest_class_accuracy=(nearest == labels).float().mean().item(),
    )


def cache_path(weights_fingerprint: str, settings: DequantizerSettings, default: DequantizerSettings) -> Path:
    """``experts_dir("biggan")/<fingerprint>/dequantizer.safetensors`` (suffixed for non-default settings)."""
    folder = experts_dir("biggan") / weights_fingerprint
    if settings == default:
        return folder / FILE_NAME
    key = hashlib.sha256(settings.to_json().encode()).hexdigest()[:8]
    return folder / f"dequantizer-{key}.safetensors"


def embedding_digest(embedding: torch.Tensor) -> str:
    return hashlib.sha256(embedding.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def load_or_train(
    embedding: torch.Tensor,
    weights_fingerprint: str,
    settings: DequantizerSettings | None = None,
    progress: bool = True,
) -> tuple[DequantizerVAE, DequantizerReport, Path]:
    """The cached VAE for these weights, training and caching it on first use."""
    from filelock import FileLock

    default = DequantizerSettings.for_dim(embedding.shape[1])
    settings = settings or default
    path = cache_path(weights_fingerprint, settings, default)
    digest = embedding_digest(embedding)
    loaded = _load(path, embedding.shape[1], settings, digest)
    if loaded is not None:
        return (*loaded, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        loaded = _load(path, embedding.shape[1], settings, digest)  # another process may have finished it
        if loaded is not None:
            return (*loaded, path)
        vae, report = train_dequantizer(embedding, settings, progress=progress)
        _save(path, vae, report, settings, digest)
    return vae, report, path


def _save(path: Path, vae: DequantizerVAE, report: DequantizerReport,
          settings: DequantizerSettings, digest: str) -> None:
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "settings": settings.to_json(), "report": json.dumps(report.to_dict()),
            "embedding_sha256": digest, "dim": str(vae.dim)}
    state = {k: v.detach().contiguous() for k, v in vae.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def _load(path: Path, dim: int, settings: DequantizerSettings,
          digest: str) -> tuple[DequantizerVAE, DequantizerReport] | None:
    """The cached VAE, or None when absent; a file that is unreadable or for other data is retrained."""
    if not path.is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, not fatal
        return None
    if (meta.get("format") != FORMAT or meta.get("embedding_sha256") != digest
            or meta.get("settings") != settings.to_json() or meta.get("dim") != str(dim)):
        return None
    try:
        saved = json.loads(meta["report"])
        report = DequantizerReport(**{f.name: float(saved[f.name]) for f in fields(DequantizerReport)})
    except (KeyError, ValueError, TypeError):
        return None
    vae = DequantizerVAE(dim, settings)
    try:
        vae.load_state_dict(state)
    except RuntimeError as e:
        raise CacheError(f"{path} does not match its own settings ({e}); delete it to retrain") from e
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    return vae, report
