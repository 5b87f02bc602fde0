"""segmenter weights files: the kit's safetensors format with the config (JSON) and training facts in the metadata."""

from __future__ import annotations

import torch

from n2n_hub.kit import ModelWeights, WeightsFormat

from .config import SegmenterConfig
from .model import Segmenter

WEIGHTS = ModelWeights(WeightsFormat(expert_id="segmenter", format="n2n-segmenter", train_command="n2n-hub train-expert segmenter --dataset animals"),
                       SegmenterConfig, Segmenter, dtype=torch.float16)

save_weights = WEIGHTS.save
resolve_weights_file = WEIGHTS.resolve
read_weights = WEIGHTS.read
load_model = WEIGHTS.load_model
