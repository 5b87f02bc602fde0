"""The toy experts. ``CALLS`` counts encodes, so tests can see when the feature cache is used."""

from __future__ import annotations

import torch

from n2n_hub import Expert, PriorSample

CALLS = {"toytext.encode": 0, "toygen.encode": 0}

_MIX = torch.tensor([[1.0, 0.3, 0.0, 0.0], [0.0, 1.0, 0.3, 0.0], [0.0, 0.0, 1.0, 0.3], [0.3, 0.0, 0.0, 1.0]])
_SCALE = 0.4


class ToyText(Expert):
    def encode(self, inputs, tap=None):
        CALLS["toytext.encode"] += 1
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        out = torch.zeros(len(texts), 8)
        for i, t in enumerate(texts):
            for ch in t.lower():
                out[i, ord(ch) % 8] += 1.0
        return out / out.sum(dim=1, keepdim=True).clamp(min=1)


class ToyGenerator(Expert):
    """A latent of 4 numbers; the image is a fixed invertible linear map of it, squashed by tanh."""

    def encode(self, images, tap=None):
        CALLS["toygen.encode"] += 1
        x = torch.atanh(images.reshape(-1, 16)[:, :4].clamp(-0.999999, 0.999999)) / _SCALE
        return x @ torch.linalg.inv(_MIX)

    def decode(self, z):
        x = (z @ _MIX) * _SCALE
        return torch.tanh(x.repeat(1, 4)).reshape(-1, 1, 4, 4)

    def sample_prior(self, n, generator=None):
        labels = torch.randint(3, (n,), generator=generator)
        z = torch.randn(n, 4, generator=generator) * 0.3 + labels[:, None].float() - 1.0
        return PriorSample(z, {"label": labels})

    def fingerprint(self):
        return "toygen-weights-v1"


class ToyPixels(Expert):
    """Encodes an image as its 16 pixels, doubled; decodes nothing (a target only through its encodings)."""

    def encode(self, images, tap=None):
        return images.reshape(-1, 16).float() * 2.0


def load_shapes(split):
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = 300 if split == "train" else 60
    labels = torch.arange(n) % 3
    z = torch.randn(n, 4, generator=g) * 0.3 + labels[:, None].float() - 1.0
    return {"image": ToyGenerator.decode(None, z), "label": labels}


def classify_shapes(images):
    """Logits over CLASSES: a shape's latent has mean label - 1 in every entry."""
    m = ToyGenerator.encode(None, images).mean(dim=1, keepdim=True)
    return -((m - (torch.arange(3).float() - 1.0)) ** 2)
