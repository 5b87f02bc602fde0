"""vaegan weights files: the kit's safetensors format with the config (JSON) and training facts in the metadata."""

from __future__ import annotations

import torch

from n2n_hub.kit import ModelWeights, WeightsFormat

from .config import VAEGANConfig
from .model import VAEGAN

WEIGHTS = ModelWeights(WeightsFormat(expert_id="vaegan", format="n2n-vaegan", train_command="n2n-hub train-expert vaegan --dataset animals"),
                       VAEGANConfig, VAEGAN, dtype=torch.float32)

save_weights = WEIGHTS.save
resolve_weights_file = WEIGHTS.resolve
read_weights = WEIGHTS.read
load_model = WEIGHTS.load_model
