"""The deterministic translator of the paper's ablation (Sec. E): embedder H + MLP, trained with L2.

It has the same user-facing surface as :class:`~n2n_hub.cinn.ConditionalINN` (``sample``,
``loss``) so the hub can use either; its samples ignore the noise, which is the point
of the comparison: it can only predict the conditional mean.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .embedders import ConditionSpec, make_embedder
from .subnet import mlp
from ..base.blocks import in_blocks
from ..errors import ShapeError


class MLPTranslator(nn.Module):
    kind = "mlp"
    arch_version = 2  # see ConditionalINN.arch_version

    def __init__(self, dim: int, condition: ConditionSpec, hidden: int = 1024, depth: int = 3,
                 cond_dim: int | None = None, embed_hidden: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.condition = condition
        self.hidden = hidden
        self.depth = depth
        self.cond_dim = cond_dim or dim
        self.embed_hidden = embed_hidden or max(self.cond_dim, 256)
        self.embedder = make_embedder(condition, self.cond_dim, self.embed_hidden)
        self.net = mlp(self.cond_dim, hidden, dim, depth=depth)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "condition": self.condition.to_dict(), "hidden": self.hidden,
                "depth": self.depth, "cond_dim": self.cond_dim, "embed_hidden": self.embed_hidden}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "MLPTranslator":
        cfg = dict(cfg)
        cfg["condition"] = ConditionSpec.from_dict(cfg["condition"])
        return cls(**cfg)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedder(c))

    def loss(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Per-sample squared error in the target latent space."""
        return (self(c) - z).pow(2).sum(dim=1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, n: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """The prediction repeated ``n`` times, shape ``(B, n, D)``: an MLP has no residual."""
        return self.sample_batch([(c, n, temperature, generator)])[0]

    @torch.no_grad()
    def sample_batch(self, requests: Sequence[tuple[torch.Tensor, int, float, torch.Generator | None]],
                     block: int | None = None) -> list[torch.Tensor]:
        """:meth:`sample` for several requests in one pass, on fixed blocks of ``block`` rows when given."""
        cs, shapes = [], []
        for c, n, _temperature, _generator in requests:
            c = self.condition.check(c)
            if n < 1:
                raise ValueError(f"n must be >= 1, got {n}")
            cs.append(c)
            shapes.append((c.shape[0], n))
        if not shapes:
            return []
        pred = in_blocks(self, torch.cat(cs), block=block)
        out, start = [], 0
        for b, n in shapes:
            out.append(pred[start:start + b].unsqueeze(1).expand(-1, n, -1).contiguous())
            start += b
        return out

    def residual(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise ShapeError("a deterministic MLP translator has no residual; use the cINN translator")
