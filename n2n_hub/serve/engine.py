"""One batch of requests: one source encode, one translator call, one decode.

Translations are merged: their inputs are encoded together, their conditions go through the
translator's ``sample_many`` (the kind contract's ``sample_batch``) in fixed blocks of rows,
and their latents are decoded together in fixed blocks, so a seeded request gets the same bits
alone or in any batch. A transfer (exemplar-guided translation) is computed on its own rows
and decoded with the batch. Every request's latents are checked (:mod:`.checks`) before they
are decoded; a request whose latents are out of range fails alone. A failure of the merged call
is retried request by request, so one bad request in a batch fails alone and the others still
get their answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .. import Translator
from .checks import OutOfRange, PairChecks

# Latents per call of the target's decoder (and describe_latent), zero-padded: small, because
# most requests hold a few samples and a block's padding is decoded too.
DECODE_BLOCK = 4


@dataclass
class Job:
    """One decoded translate request: inputs of one kind (``text`` list, ``image`` tensor, or ``latent`` tensor)."""

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
class TransferJob:
    """One decoded transfer request: keep each exemplar's residual under a new condition (Eq. 6).

    ``inputs`` are the new conditions, ``exemplar_inputs`` what the exemplars were made from
    (both of ``kind``), ``target_latents`` the exemplars' latents ``(B, *latent_shape)``.
    """

    kind: str
    inputs: Any
    exemplar_inputs: Any
    target_latents: torch.Tensor
    decode: bool = True
    n: int = 1

    @property
    def count(self) -> int:
        return len(self.inputs)


@dataclass
class JobResult:
    latents: torch.Tensor          # (B, n, *latent_shape) on CPU (a transfer: n = 1)
    outputs: Any                   # decoded outputs of the B*n samples (tensor of images or list), or None
    info: list[dict[str, Any]]     # per-sample facts from the target


def run_jobs(translator: Translator, jobs: list[Job | TransferJob], on_call: Callable[[str], None] | None = None,
             merge_encode: bool = True, checks: PairChecks | None = None) -> list[Any]:
    """Results (or exceptions) for ``jobs``, computed together when they can be.

    ``merge_encode=False`` encodes each request's inputs in a call of its own (still one
    translator call and one decode for the batch): for source experts that pad a batch to its
    longest input, such as BERT, this keeps a seeded request's bits independent of its neighbours.
    """
    try:
        return _together(translator, jobs, on_call, merge_encode, checks)
    except Exception as e:  # noqa: BLE001 - find the bad request(s) by running them apart
        if len(jobs) == 1:
            return [e]
    out: list[Any] = []
    for job in jobs:
        try:
            out.append(_together(translator, [job], on_call, merge_encode, checks)[0])
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def _conditions(t: Translator, jobs: list[Job], on_call: Callable[[str], None] | None,
                merge_encode: bool) -> list[torch.Tensor]:
    """The source representations of each translate job: its latents, or its inputs encoded."""
    conditions: list[Any] = [j.inputs if j.kind == "latent" else None for j in jobs]
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
    return conditions


@torch.no_grad()
def _together(t: Translator, jobs: list[Job | TransferJob], on_call: Callable[[str], None] | None,
              merge_encode: bool = True, checks: PairChecks | None = None) -> list[JobResult | Exception]:
    latents: list[torch.Tensor | None] = [None] * len(jobs)
    translate = [i for i, j in enumerate(jobs) if isinstance(j, Job)]
    if translate:
        these: list[Job] = [jobs[i] for i in translate]  # type: ignore[misc]
        conditions = _conditions(t, these, on_call, merge_encode)
        if on_call:
            on_call("translate")
        sampled = t.sample_many(conditions, [j.n for j in these], [j.temperature for j in these],
                                [j.seed for j in these], block=t.sample_block)
        for i, z in zip(translate, sampled):
            latents[i] = z
    for i, job in enumerate(jobs):
        if isinstance(job, TransferJob):
            if on_call:
                on_call("transfer")
            latents[i] = t.transfer(job.target_latents, job.exemplar_inputs, job.inputs).unsqueeze(1)
    failed: dict[int, Exception] = {}
    if checks is not None:
        for i, (job, z) in enumerate(zip(jobs, latents)):
            assert z is not None
            try:
                checks.check_output(z, callers_latents=isinstance(job, TransferJob) or job.kind == "latent")
            except OutOfRange as e:
                failed[i] = e
    kept = [i for i in range(len(jobs)) if i not in failed]
    flat = torch.cat([latents[i].reshape(-1, *t.latent_shape) for i in kept]) if kept else None  # type: ignore[union-attr]
    outputs, info = None, []
    if flat is not None:
        if t.decodes and any(jobs[i].decode for i in kept):
            if on_call:
                on_call("decode")
            outputs = t.decode(flat, block=DECODE_BLOCK, pad=True)
        info = t.describe(flat, block=DECODE_BLOCK, pad=True)
    results: list[JobResult | Exception] = []
    start = 0
    for i, j in enumerate(jobs):
        if i in failed:
            results.append(failed[i])
            continue
        z = latents[i]
        assert z is not None
        rows = z.shape[0] * z.shape[1]
        results.append(JobResult(z.cpu(), outputs[start:start + rows] if j.decode and outputs is not None else None,
                                 info[start:start + rows] if info else []))
        start += rows
    return results
