"""One batch of translation requests: one source encode, one translator call, one decode.

A failure of the merged call is retried request by request, so one bad request in a batch
fails alone and the others still get their answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..translators.translator import Translator


@dataclass
class Job:
    """One decoded request: inputs of one kind (``text`` list, ``image`` tensor, or ``latent`` tensor)."""

    kind: str
    inputs: Any
    n: int
    temperature: float | None
    seed: int | None
    decode: bool = True

    @property
    def count(self) -> int:
        return len(self.inputs)


@dataclass
class JobResult:
    latents: torch.Tensor          # (B, n, *latent_shape) on CPU
    outputs: Any                   # decoded outputs of the B*n samples (tensor of images or list), or None
    info: list[dict[str, Any]]     # per-sample facts from the target


def _slice(outputs: Any, start: int, stop: int) -> Any:
    if outputs is None:
        return None
    return outputs[start:stop]


def run_jobs(translator: Translator, jobs: list[Job], on_call: Callable[[str], None] | None = None,
             merge_encode: bool = True) -> list[Any]:
    """Results (or exceptions) for ``jobs``, computed together when they can be.

    ``merge_encode=False`` encodes each request's inputs in a call of its own (still one
    translator call and one decode for the batch): for source experts that pad a batch to its
    longest input, such as BERT, this keeps a seeded request's bits independent of its neighbours.
    """
    try:
        return _together(translator, jobs, on_call, merge_encode)
    except Exception as e:  # noqa: BLE001 - find the bad request(s) by running them apart
        if len(jobs) == 1:
            return [e]
    out: list[Any] = []
    for job in jobs:
        try:
            out.append(_together(translator, [job], on_call, merge_encode)[0])
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def _chunked(fn: Callable[[torch.Tensor], Any], z: torch.Tensor, chunk: int) -> Any:
    """``fn`` over fixed-size, zero-padded blocks of rows, so a row's result never depends on the batch size."""
    parts = []
    for first in range(0, z.shape[0], chunk):
        block = z[first:first + chunk]
        rows = block.shape[0]
        if rows < chunk:
            block = torch.cat([block, block.new_zeros(chunk - rows, *block.shape[1:])])
        parts.append(fn(block)[:rows])
    if not parts:
        return fn(z)
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return [x for p in parts for x in p]


@torch.no_grad()
def _together(t: Translator, jobs: list[Job], on_call: Callable[[str], None] | None, merge_encode: bool = True,
              decode_chunk: int = 4) -> list[JobResult]:
    conditions: list[torch.Tensor | None] = [None] * len(jobs)
    raw = [i for i, j in enumerate(jobs) if j.kind != "latent"]
    if raw and not merge_encode:
        for i in raw:
            if on_call:
                on_call("encode")
            conditions[i] = t.encode_source(jobs[i].inputs)
        raw = []
    if raw:
        kinds = {jobs[i].kind for i in raw}
        if kinds == {"text"}:
            merged: Any = [x for i in raw for x in jobs[i].inputs]
        elif kinds == {"image"}:
            merged = torch.cat([jobs[i].inputs for i in raw])
        else:
            raise ValueError(f"cannot encode {sorted(kinds)} inputs together")
        if on_call:
            on_call("encode")
        c = t.encode_source(merged)
        start = 0
        for i in raw:
            conditions[i] = c[start:start + jobs[i].count]
            start += jobs[i].count
    for i, j in enumerate(jobs):
        if j.kind == "latent":
            conditions[i] = j.inputs
    if on_call:
        on_call("translate")
    latents = t.sample_many(conditions, [j.n for j in jobs], [j.temperature for j in jobs],  # type: ignore[arg-type]
                            [j.seed for j in jobs])
    flat = torch.cat([z.reshape(-1, *t.latent_shape) for z in latents]).to(t.target.device)
    want_decode = [j.decode for j in jobs]
    outputs = None
    if any(want_decode):
        if on_call:
            on_call("decode")
        outputs = _chunked(t.target.decode, flat, decode_chunk)
    info = _chunked(t.target.describe_latent, flat, decode_chunk)
    results, start = [], 0
    for j, z in zip(jobs, latents):
        rows = j.count * j.n
        results.append(JobResult(z.cpu(), _slice(outputs, start, start + rows) if j.decode else None,
                                 info[start:start + rows] if info else []))
        start += rows
    return results
