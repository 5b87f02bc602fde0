"""The trainer: fits a translator (cINN or MLP baseline) on cached pairs (z_Φ, z_Θ).

Only the translator trains; the experts' encodings are given as tensors (or a
DataLoader of ``(z_Φ, z_Θ)`` batches), so no expert forward pass is ever repeated.

What it does, in order: carve a held-out split from the seed (unless one is given),
run the translator's data-dependent initialisation (for the cINN: its whitening fitted to
the training targets, ActNorm to the first batch), then run Adam with linear warmup and
cosine decay, clip gradients, skip any step whose loss or gradient is not finite,
validate every ``val_every`` steps, stop early when validation stops improving, and
return the best weights. A checkpoint (one safetensors file, scalars as JSON in its
header) lets an interrupted run resume and end with exactly the weights of an
uninterrupted one.

Launched by torchrun, the same code trains data-parallel (DistributedDataParallel, gloo on
CPU, NCCL on GPU): every rank holds all pairs, runs the data-dependent initialisation on
the same global rows, takes its share of each global batch, validates its share of the
held-out rows (the sums are reduced across ranks) and only rank 0 writes checkpoints. A
checkpoint resumes at any world size, since the trajectory is defined by the global batch.

Objectives, per dimension so numbers compare across target sizes:

* ``cinn``: mean NLL of z_Θ given z_Φ in nats/dim (Eq. 4 plus the Gaussian constant);
* ``mlp``: mean squared error per dimension (the deterministic ablation of Sec. E).
"""

from .batches import noisy_condition
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from .config import Log, TrainConfig, TrainResult, lr_at, objective
from .loop import train, train_loader
from .step import train_step
from .validation import evaluate

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "Log", "TrainConfig", "TrainResult", "evaluate", "lr_at",
           "noisy_condition", "objective", "train", "train_loader", "train_step"]
