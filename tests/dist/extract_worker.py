"""One rank of a sharded extraction (run by torchrun from tests/test_distributed.py, or alone).

Usage: extract_worker.py OUT_DIR STORE_DIR. A deterministic tiny expert encodes 53 rows in
batches of 4 through the real feature store; with DIE_RANK=r, rank r exits abruptly on its
second batch. Each rank writes what it got and how many batches it encoded.
"""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from n2n_hub.base.distributed import world
from n2n_hub.data.features import FeatureStore
from n2n_hub.data.recipes import encode_batched

RANK = world().rank


class TinyExpert:
    def __init__(self) -> None:
        self.w = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def fingerprint(self) -> str:
        return "tiny-v1"

    def encode(self, x: torch.Tensor, tap: str | None = None) -> torch.Tensor:
        self.calls += 1
        if os.environ.get("DIE_RANK") == str(RANK) and self.calls == 2:
            os._exit(3)
        return torch.tanh(x @ self.w) * x.sum(1, keepdim=True)


def run(out: Path, root: Path) -> torch.Tensor:
    out.mkdir(parents=True, exist_ok=True)
    expert = TinyExpert()
    x = torch.randn(53, 5, generator=torch.Generator().manual_seed(1))
    z = FeatureStore(root).get_or_compute({"what": "tiny"}, lambda: encode_batched(expert, x, None, 4, "enc", False))
    save_file({"z": z}, str(out / f"rank{RANK}.safetensors"))
    (out / f"calls{RANK}.json").write_text(json.dumps(expert.calls))
    return z


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
