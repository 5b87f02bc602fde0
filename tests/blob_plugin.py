"""A tiny in-process plugin for the segmenter tests: 32×32 blob images and a linear autoencoder that decodes them.

Plain code (no fixtures); ``conftest.py`` builds the ``blob_host`` and ``blob_hub`` fixtures from them.
"""

from __future__ import annotations

from typing import Any

import torch

from n2n_hub import DatasetSpec, Expert, ExpertSpec, Representation, Variant, hookimpl

BLOB_CLASSES = ("small", "medium", "large")
_PROJ = torch.linalg.qr(torch.randn(1024, 8, generator=torch.Generator().manual_seed(0)))[0].T.contiguous()


def load_blobs(split: str) -> dict[str, torch.Tensor]:
    """Disks of three sizes at random places: background -1, disk +1."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = 96 if split == "train" else 32
    labels = torch.arange(n) % 3
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centres = 10 + torch.rand(n, 2, generator=g) * 12
    radius = 3.0 + 2.5 * labels.float()
    d = ((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2).sqrt()
    return {"image": torch.where(d < radius[:, None, None], 1.0, -1.0)[:, None], "label": labels}


class TinyAE(Expert):
    """Linear projection to 8 numbers and back (a stand-in for the VAE-GAN, fast enough for tests)."""

    def encode(self, inputs, tap=None):
        return inputs.reshape(inputs.shape[0], -1) @ _PROJ.T

    def decode(self, z):
        return (z @ _PROJ).clamp(-1, 1).reshape(-1, 1, 32, 32)


class BlobsPlugin:
    @hookimpl
    def register_experts(self, register):
        register(ExpertSpec(id="tinyae", version="1", loader="blob_plugin:TinyAE", input_domain="image",
                            output_domain="image", representation=Representation((8,)), latent=Representation((8,)),
                            variants=(Variant("base"),), default_variant="base", input_shape=(1, 32, 32),
                            output_shape=(1, 32, 32)))

    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec(id="blobs", version="1", loader="blob_plugin:load_blobs", domains=("image", "label"),
                             image_shape=(1, 32, 32), class_names=BLOB_CLASSES, license="mit"))


def blob_registry(layers=("early", "middle", "last", "labels")) -> str:
    out = []
    for layer in layers:
        out.append(f"""
[pairs.seg-{layer}-tinyae]
source = "segmenter:{layer}"
target = "tinyae"
recipe = "dataset"
dataset = "blobs"
batch_size = 64

[pairs.seg-{layer}-tinyae.flow]
n_blocks = 2
hidden = 32
depth = 1
cond_dim = 16

[pairs.seg-{layer}-tinyae.training]
steps = 12
batch_size = 32
val_every = 6
warmup_steps = 2
""")
    return "".join(out)


def install_blob_host(monkeypatch, tmp_path, registry: str, **plugins) -> Any:
    """A host holding ``plugins`` (name=module) and the blobs plugin, with ``registry`` as the
    user registry, installed as the process's host so that the CLI uses it too."""
    import n2n_hub.catalog.host
    from n2n_hub.catalog.host import PluginHost

    reg = tmp_path / "blobs.toml"
    reg.write_text(registry)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    host = PluginHost()
    host._loaded = True
    for name, module in {**plugins, "blobs": BlobsPlugin()}.items():
        assert host.register(module, name)
    monkeypatch.setattr(n2n_hub.catalog.host, "_host", host)
    return host
