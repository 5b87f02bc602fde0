"""Drawing training pairs along a route: the first hop's source encodings, each pushed through the hops.

Row ``j`` of a draw is input ``order[j % rows]``, ``order`` a seeded permutation of the inputs, so
a draw smaller than the inputs still spans them and a larger one visits each input several
times, with fresh residuals. Rows are drawn in blocks of :data:`DRAW_BLOCK`; block ``b`` runs the
route (:func:`~n2n_hub.translators.routes.carry`) with seed ``block_seed(seed, b)``, so its
translator hop ``k`` draws with that seed ``+ k``: block 0 is the route run by hand with ``seed``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..base.atomic import sha256_file
from ..base.progress import tqdm
from ..data.features import FeatureStore
from ..data.recipes import PairData
from .routes import ExpertHop, Hop, carry
from .translator import Translator

DRAW_BLOCK = 1024  # rows pushed through the route per pass
SEED_STRIDE = 1 << 16  # between blocks' seeds: more than any route has translator hops


def block_seed(seed: int, block: int) -> int:
    """The seed block ``block`` of a draw runs the route with (block 0: ``seed`` itself)."""
    return (seed + block * SEED_STRIDE) % 2**62


def draw_order(rows: int, count: int, seed: int) -> torch.Tensor:
    """Which input each of ``count`` drawn rows starts from: a seeded permutation of ``rows``, repeated."""
    perm = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return perm.repeat((count + rows - 1) // rows)[:count]


def hop_records(hops: Sequence[Hop]) -> list[dict[str, Any]]:
    """What each hop is, for a distilled translator's record: a translator's key and the sha256 of its
    file (a retrained hop changes it), an expert hop's experts and their weights' fingerprints."""
    def expert(e: Any, tap: str | None = None) -> dict[str, Any]:
        return {"id": e.spec.id, "version": e.spec.version, "variant": e.variant, "tap": tap,
                "fingerprint": e.fingerprint()}

    out: list[dict[str, Any]] = []
    for hop in hops:
        if isinstance(hop, ExpertHop):
            out.append({"kind": "expert", "source": expert(hop.source), "target": expert(hop.target, hop.tap)})
        else:
            out.append({"kind": "translator", "source": str(hop.source_address), "target": str(hop.target_address),
                        "key": hop.metadata.get("key"),
                        "sha256": sha256_file(hop.path) if hop.path is not None else None})
    return out


def draw_route_pairs(hops: Sequence[Hop], inputs: PairData, count: int, temperature: float, seed: int, *,
                     store: FeatureStore | None = None, key_parts: dict[str, Any] | None = None,
                     progress: bool = True, desc: str = "drawing pairs along the route") -> PairData:
    """``count`` pairs (an input's source encoding, a sample of the route's end for it).

    ``inputs.source`` are the first hop's source encodings (its recipe's pairs); groups and
    labels follow each row's input, so validation holds out whole items. With ``store`` and
    ``key_parts`` (what determines the draw), the drawn targets are cached in the feature store.
    """
    first = hops[0]
    if not isinstance(first, Translator):
        raise TypeError("a route is drawn from its first hop's inputs: the first hop must be a translator")
    rows = int(inputs.source.shape[0])
    order = draw_order(rows, count, seed)
    source = inputs.source[order]
    shape = first.source.representation_for(first.source_address.tap).shape

    def draw() -> torch.Tensor:
        starts = range(0, count, DRAW_BLOCK)
        out = []
        for b, start in enumerate(tqdm(starts, desc=desc, unit="block", disable=not progress or len(starts) < 2,
                                       leave=False)):
            z = carry(hops, source[start:start + DRAW_BLOCK].reshape(-1, *shape), 1, temperature,
                      block_seed(seed, b))
            out.append(z.reshape(z.shape[0], -1).float().cpu())
        return torch.cat(out)

    target = store.get_or_compute(key_parts, draw) if store is not None and key_parts is not None else draw()
    groups = (inputs.groups if inputs.groups is not None else torch.arange(rows))[order]
    labels = inputs.labels[order] if inputs.labels is not None else None
    return PairData(source, target, groups, labels)
