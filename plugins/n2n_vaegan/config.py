"""The autoencoder's configuration: one dataclass, stored as JSON inside each weights file.

``paper()`` is Table S2 (128×128 RGB, ResNet-101 encoder, BigGAN decoder with channel
multiplier 96, 1000 pseudo-classes); ``small()`` is the 32×32 grayscale model shipped
for the animals silhouettes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from n2n_hub.kit import InputError


@dataclass(frozen=True)
class VAEGANConfig:
    """Architecture and loss settings of the VAE-GAN autoencoder g = Λ∘Θ (Sec. F)."""

    image_size: int = 32
    channels: int = 1
    latent_dim: int = 128
    # Encoder Θ: a timm ResNet.
    enc_block: str = "basic"  # "basic" or "bottleneck"
    enc_layers: tuple[int, ...] = (1, 1, 1, 1)
    enc_channels: tuple[int, ...] = (16, 32, 64, 128)
    enc_stem_pool: bool = False  # small images keep their resolution through the stem
    # Decoder Λ: BigGAN-style.
    dec_ch: int = 16
    dec_multipliers: tuple[int, ...] = (4, 4, 2, 1)  # channel multiplier at 4×4, then after each up-block
    num_pseudo_classes: int = 100
    class_hidden: int = 256
    embed_dim: int = 64
    attention_resolution: int = 16
    # Discriminator D: PatchGAN.
    disc_layers: int = 2
    disc_ch: int = 16
    # Loss. kl_weight < 1 trades prior fit for sharper reconstructions on a small compute
    # budget (the released net2net configs used 1e-6); disc_weight scales the adaptive λ.
    kl_weight: float = 0.01
    disc_weight: float = 0.5
    disc_start: int = 2000
    adaptive_delta: float = 1e-4
    adaptive_max: float = 1e4
    logvar_init: float = 0.0
    perceptual: str = "auto"  # "auto": LPIPS if its weights are local, else L1; "l1": never

    def __post_init__(self) -> None:
        for name in ("enc_layers", "enc_channels", "dec_multipliers"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        self.validate()

    @property
    def num_up(self) -> int:
        """Number of upsampling ResBlocks: 4×4 → image_size."""
        return int(round(math.log2(self.image_size / 4)))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first inconsistent setting."""
        if self.image_size < 8 or 4 * 2 ** self.num_up != self.image_size:
            raise InputError(f"image_size must be 4·2^k ≥ 8 (32, 64, 128, ...), got {self.image_size}")
        if self.channels not in (1, 3):
            raise InputError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if len(self.dec_multipliers) != self.num_up + 1:
            raise InputError(f"dec_multipliers needs {self.num_up + 1} entries for image_size {self.image_size}, "
                             f"got {len(self.dec_multipliers)}")
        if self.enc_block not in ("basic", "bottleneck"):
            raise InputError(f"enc_block must be 'basic' or 'bottleneck', got {self.enc_block!r}")
        if len(self.enc_layers) != 4 or len(self.enc_channels) != 4:
            raise InputError("enc_layers and enc_channels need 4 entries each (the four ResNet stages)")
        if self.perceptual not in ("auto", "l1", "lpips"):
            raise InputError(f"perceptual must be 'auto', 'l1' or 'lpips', got {self.perceptual!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VAEGANConfig":
        """Rebuild from :meth:`to_json`; unknown keys (from newer versions) are ignored."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InputError("a vaegan config must be a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def small(cls, image_size: int = 32, channels: int = 1) -> "VAEGANConfig":
        """The shipped size: about 1 M parameters; 12 000 steps take about 35 minutes on one CPU core."""
        num_up = max(1, int(round(math.log2(max(image_size, 8) / 4))))
        mults = (4,) + tuple(max(1, 4 >> max(0, i - 1)) for i in range(1, num_up + 1))  # 32 px: (4, 4, 2, 1)
        return cls(image_size=image_size, channels=channels, dec_multipliers=mults,
                   attention_resolution=min(16, image_size // 2))

    @classmethod
    def paper(cls) -> "VAEGANConfig":
        """Table S2: 128×128 RGB, ResNet-101 encoder, BigGAN decoder (ch = 96), 1000 pseudo-classes."""
        return cls(
            image_size=128, channels=3, latent_dim=128,
            enc_block="bottleneck", enc_layers=(3, 4, 23, 3), enc_channels=(64, 128, 256, 512),
            enc_stem_pool=True,
            dec_ch=96, dec_multipliers=(16, 16, 8, 4, 2, 1), num_pseudo_classes=1000,
            class_hidden=256, embed_dim=128, attention_resolution=64,
            disc_layers=3, disc_ch=64, disc_start=50001, kl_weight=1.0, perceptual="auto",
        )
