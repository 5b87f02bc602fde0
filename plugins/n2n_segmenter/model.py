"""The network f: segmentation-models-pytorch's DeepLabV3 with a ResNet encoder, readable layer by layer.

Taps, in the order the input flows through them:

- ``early``: the ResNet stem (7×7 conv stride 2, BN, ReLU), 1/2 resolution;
- ``middle``: the first residual stage, 1/4 resolution;
- ``last``: the logits of the segmentation head, at the output stride;
- ``labels``: the one-hot argmax of the bilinearly upsampled logits (the prediction).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .config import SegmenterConfig

TAP_NAMES = ("early", "middle", "last", "labels")


class Segmenter(nn.Module):
    """DeepLabV3 whose forward returns full-resolution logits and whose ``taps`` expose its layers."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.config = config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = smp.DeepLabV3(config.encoder, encoder_depth=config.encoder_depth, encoder_weights=None,
                                in_channels=config.channels, classes=config.num_classes,
                                decoder_channels=config.decoder_channels, decoder_atrous_rates=config.atrous_rates)
        # smp builds all four ResNet stages and only runs the first ``encoder_depth - 1``:
        # drop the unused ones so the weights file holds only what computes something.
        for unused in ("layer3", "layer4")[max(0, config.encoder_depth - 3):]:
            if hasattr(net.encoder, unused):
                delattr(net.encoder, unused)
        self.encoder = net.encoder
        self.decoder = net.decoder
        self.head = net.segmentation_head[0]

    def _stages(self) -> list[nn.Module]:
        """The encoder's stages in order, as smp's ResNet encoder runs them."""
        e = self.encoder
        stages: list[nn.Module] = [nn.Sequential(e.conv1, e.bn1, e.relu), nn.Sequential(e.maxpool, e.layer1), e.layer2]
        stages += [getattr(e, name) for name in ("layer3", "layer4") if hasattr(e, name)]
        return stages[:self.config.encoder_depth]

    def encode_stages(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Encoder features, input first (``smp``'s layout), stopping after stage ``upto`` if given."""
        features = [x]
        for stage in self._stages()[:upto]:
            features.append(stage(features[-1]))
        return features

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the output stride (before the parameter-free upsampling)."""
        return self.head(self.decoder(self.encode_stages(x)))

    def upsample(self, low: torch.Tensor) -> torch.Tensor:
        return F.interpolate(low, size=self.config.image_shape[1:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` → logits ``(B, classes, H, W)``."""
        return self.upsample(self.logits(x))

    def taps(self, x: torch.Tensor, names: tuple[str, ...] = TAP_NAMES) -> dict[str, torch.Tensor]:
        """The requested layers' outputs for one batch, running the network only as far as needed."""
        out: dict[str, torch.Tensor] = {}
        if set(names) <= {"early", "middle"}:
            features = self.encode_stages(x, upto=2 if "middle" in names else 1)
            low = None
        else:
            features = self.encode_stages(x)
            low = self.head(self.decoder(features))
        if "early" in names:
            out["early"] = features[1]
        if "middle" in names:
            out["middle"] = features[2]
        if low is not None and "last" in names:
            out["last"] = low
        if low is not None and "labels" in names:
            pred = self.upsample(low).argmax(dim=1)
            out["labels"] = F.one_hot(pred, self.config.num_classes).permute(0, 3, 1, 2).float()
        return out


def label_maps(images: torch.Tensor, labels: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-pixel targets ``(B, H, W)``: 0 where the image is below ``threshold``, else 1 + its label."""
    fg = images.mean(dim=1) > threshold
    return torch.where(fg, labels.long()[:, None, None] + 1, torch.zeros_like(labels.long())[:, None, None])
