"""One rank of a data-parallel training run (run by torchrun from tests/test_distributed.py, or imported).

Usage: train_worker.py OUT_DIR CHECKPOINT. Trains a small cINN on seeded synthetic pairs
(z depends on c) for 60 steps of global batch 64, validating every 10 and checkpointing
every 20; with KILL_AT=s every rank exits at the validation of step s. Rank 0 writes each
validation as it happens (val.jsonl), then the result.
"""

import json
import os
import sys
from pathlib import Path

import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.base.distributed import world
from n2n_hub.training import TrainConfig, TrainResult, train


def run(out: Path, ckpt: Path, kill_at: int = 0) -> TrainResult:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(2000, 6, generator=g)
    z = torch.tanh(c @ torch.randn(6, 8, generator=g)) + 0.3 * torch.randn(2000, 8, generator=g)
    flow = ConditionalINN(8, ConditionSpec.infer((6,), "float32"), n_blocks=2, hidden=32, seed=0)
    main = world().is_main
    out.mkdir(parents=True, exist_ok=True)

    def log(event):
        if event["event"] == "val" and main:
            with open(out / "val.jsonl", "a") as f:
                f.write(json.dumps({"step": event["step"], "val": event["value"]}) + "\n")
        if event["event"] == "val" and event["step"] == kill_at:
            os._exit(0)

    config = TrainConfig(steps=60, batch_size=64, lr=2e-3, warmup_steps=5, val_every=10, patience=0, seed=0,
                         checkpoint_path=ckpt, checkpoint_every=20, progress=False)
    result = train(flow, c, z, config, log=log)
    if main:
        (out / "result.json").write_text(json.dumps(result.to_dict()))
    return result


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), int(os.environ.get("KILL_AT", "0")))
