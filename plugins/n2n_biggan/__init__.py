"""Built-in expert ``biggan``: the BigGAN-deep generator as a translation target.

Its latent is z_Θ = [z̃, ĥ] (Sec. G.2 of the net2net supplement): z̃ the generator's
truncated-normal noise and ĥ a dequantised class embedding, the stochastic
reconstruction of h = W c by a small VAE trained once per set of weights.
Registration reads only a text file; torch-heavy code loads with the expert.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

from n2n_hub import ExpertSpec, Representation, Variant, hookimpl

DEFAULT_VARIANT = "biggan-deep-256"
RANDOM_EMBEDDING = "random-embedding"
DEFAULT_TRUNCATION = 1.0
_S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan"


def _deep(resolution: int, hf_repo: str | None) -> Variant:
    name = f"biggan-deep-{resolution}"
    return Variant(
        name=name,
        description=f"BigGAN-deep {resolution}×{resolution}, ImageNet (z 128 + class embedding 128)",
        source=f"{_S3}/{name}-pytorch_model.bin" + (f" or Hugging Face {hf_repo}" if hf_repo else ""),
        settings={
            "resolution": resolution,
            "truncation": DEFAULT_TRUNCATION,
            "hf_repo": hf_repo,
            "urls": {"config.json": f"{_S3}/{name}-config.json",
                     "pytorch_model.bin": f"{_S3}/{name}-pytorch_model.bin"},
        },
    )


VARIANTS: tuple[Variant, ...] = (
    _deep(128, "osanseviero/BigGAN-deep-128"),
    _deep(256, None),
    _deep(512, None),
    Variant(
        name=RANDOM_EMBEDDING,
        description="no generator: a fixed random 1000×128 class embedding (seed 0, N(0, 1) entries) in "
                    "place of BigGAN's W, for label↔latent experiments without weights; cannot decode",
        source="generated",
        settings={"num_classes": 1000, "dim": 128, "z_dim": 128, "seed": 0, "truncation": DEFAULT_TRUNCATION},
    ),
)


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names (torchvision's short names), by class id."""
    text = (Path(__file__).with_name("imagenet_classes.txt")).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def biggan_spec() -> ExpertSpec:
    """The ``biggan`` expert's spec (shapes are the default variant's; a loaded one reports its own)."""
    return ExpertSpec(
        id="biggan",
        version="1",
        loader="n2n_biggan.expert:BigGANExpert",
        description="BigGAN-deep generator; latent [z̃, ĥ]: truncated-normal noise and a dequantised class embedding",
        license="Apache-2.0 (pytorch-pretrained-biggan weights)",
        output_domain="image",
        latent=Representation((256,)),
        prior="z̃ ~ truncation·TruncNormal(-2, 2); ĥ = VAE reconstruction of W c, c uniform over classes",
        prior_domains=("label",),
        variants=VARIANTS,
        default_variant=DEFAULT_VARIANT,
        accepts_paths=True,
        accepts_hub_ids=True,
        output_shape=(3, 256, 256),
        class_names=imagenet_class_names(),
    )


@hookimpl
def register_experts(register: Callable[[ExpertSpec], None]) -> None:
    register(biggan_spec())
