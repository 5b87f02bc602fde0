"""Running a route: translator hops sample, expert hops decode and encode.

The first translator hop draws ``n`` samples per input; every later one draws one sample per
row it receives, so a route of any length gives ``n`` samples per input, each with its own
residuals along the way. Translator hop ``k`` (counting translator hops from 0) draws with
seed ``seed + k``: running the hops by hand with those seeds gives the same latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..base.blocks import in_blocks
from ..spec.expert import Expert, ExpertAddress
from ..spec.inputs import read_inputs
from .translator import DECODE_CHUNK, Translation, Translator


@dataclass
class ExpertHop:
    """``source`` decodes, ``target`` encodes what it decoded (at ``tap``)."""

    source: Expert
    target: Expert
    tap: str | None = None


Hop = Translator | ExpertHop


def _encode(expert: Expert, inputs: Any, tap: str | None) -> torch.Tensor:
    with torch.no_grad():
        if not isinstance(inputs, torch.Tensor):  # texts: one call
            return expert.encode(inputs, tap=tap).float().cpu()
        return in_blocks(lambda x: expert.encode(x, tap=tap), inputs, block=DECODE_CHUNK, pad=False,
                         cpu=True).float().cpu()


def _decode(expert: Expert, z: torch.Tensor) -> Any:
    with torch.no_grad():
        return in_blocks(expert.decode, z.to(expert.device), block=DECODE_CHUNK, pad=False, cpu=True)


def _as_condition(t: Translator, state: torch.Tensor, translated_into: Expert | None) -> torch.Tensor:
    """What the translator's source reads. After a translator into the same expert the rows are its
    latents: as they are where its encoding has the latent's shape, else decoded and encoded again."""
    src = t.source
    rep = src.representation_for(t.source_address.tap)
    if translated_into is not None and translated_into.spec.id == src.spec.id and src.spec.can_decode \
            and (t.source_address.tap is not None
                 or tuple(src.latent_representation().shape) != tuple(rep.shape)):
        return _encode(src, _decode(src, state), t.source_address.tap)
    return state.reshape(state.shape[0], *rep.shape)


@torch.no_grad()
def carry(hops: Sequence[Hop], state: torch.Tensor, n: int = 1, temperature: float | None = None,
          seed: int | None = None) -> torch.Tensor:
    """The route's end for the first hop's source encodings ``state``: ``(rows * n, *shape)``, the
    ``n`` samples of each row together. Translator hop ``k`` draws with seed ``seed + k``."""
    first = hops[0]
    sampled = 0  # translator hops run so far
    translated_into: Expert | None = None  # the expert whose latents the rows are, after a translator hop
    for hop in hops:
        if isinstance(hop, Translator):
            cond = state if hop is first else _as_condition(hop, state, translated_into)
            hop_seed = None if seed is None else seed + sampled
            z = hop.sample_many([cond], [1 if sampled else n], [temperature], [hop_seed])[0]
            state = z.reshape(-1, *hop.latent_shape).cpu()
            translated_into = hop.target
            sampled += 1
        else:
            state = _encode(hop.target, _decode(hop.source, state), hop.tap)
            translated_into = None
    if not sampled:  # expert hops only: every sample is the same
        state = state.repeat_interleave(n, dim=0)
    return state


@torch.no_grad()
def run_route(hops: Sequence[Hop], source: Expert, source_address: ExpertAddress, inputs: Any, n: int = 1,
              temperature: float | None = None, seed: int | None = None, decode: bool = True) -> Translation:
    """``n`` translations per input along ``hops``; outputs decoded by the last expert where it decodes."""
    batch = read_inputs(source.spec, inputs, who=str(source_address))
    rows = len(batch)
    first = hops[0]
    state = first.encode_source(batch).cpu() if isinstance(first, Translator) else \
        _encode(source, batch, source_address.tap)
    state = carry(hops, state, n, temperature, seed)
    latents = state.reshape(rows, n, *state.shape[1:])
    last = hops[-1]
    if isinstance(last, Translator):
        outputs = last.decode(state) if decode and last.decodes else None
        return Translation(inputs, latents, outputs, last.describe(state))
    return Translation(inputs, latents, None, [{} for _ in range(state.shape[0])])
