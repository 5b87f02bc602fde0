"""A trained translator bound to its two experts: what users call ``translate`` on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from ..base.blocks import in_blocks
from ..errors import InputError, ShapeError
from ..spec.expert import Expert, ExpertAddress
from ..spec.inputs import read_inputs
from ..spec.kinds import SampleRequest, sample_batch

if TYPE_CHECKING:
    from ..catalog.planning import PairPlan
    from .captions import CaptionBank

DECODE_CHUNK = 256  # latents decoded per call of the target's decoder
# Rows per pass of the translator where a request's bits must not depend on its batch-mates
# (the server's merged batches): a fixed shape for the matrix kernels, see base.blocks.
SAMPLE_BLOCK = 32


@dataclass
class Translation:
    """The result of :meth:`Translator.translate`.

    ``latents`` is ``(B, n, *latent_shape)``; ``outputs`` holds the target's decoded
    outputs for all ``B·n`` samples in that order (a tensor for images; None when the
    target has no decoder or decoding was not asked for); ``info`` has per-sample facts the
    target reports (e.g. the nearest class) and, for a text target with a caption bank,
    ``info[i]["nearest"]``: its nearest captions ``[{"text", "similarity"}, ...]``.
    """

    inputs: Any
    latents: torch.Tensor
    outputs: Any
    info: list[dict[str, Any]] = field(default_factory=list)


class Translator:
    """τ between two loaded experts, with the metadata it was trained and cached with."""

    sample_block = SAMPLE_BLOCK  # rows per module call when callers' requests are merged (the server)

    def __init__(self, module: nn.Module, metadata: dict[str, Any], source: Expert, target: Expert,
                 source_address: ExpertAddress, target_address: ExpertAddress, path: Path | None = None,
                 temperature: float = 1.0, plan: PairPlan | None = None) -> None:
        self.module = module
        # How the pair was resolved (recipe, data, experts): planned once by the hub, reused by
        # evaluation and diagnosis instead of planning the pair again.
        self.plan = plan
        # Sampling temperature used when a call gives none: the registry entry's, else 1.
        self.temperature = temperature
        self.metadata = metadata
        self.source = source
        self.target = target
        self.source_address = source_address
        self.target_address = target_address
        self.path = path
        # How latents of a text target are shown without a decoder: a bank, or what makes one on first use.
        self.captions: CaptionBank | Callable[[], CaptionBank] | None = None

    def __repr__(self) -> str:
        return f"Translator({self.source_address} -> {self.target_address}, kind={self.kind}, path={self.path})"

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", getattr(self.module, "kind", "?")))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics", {}))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.target.latent_representation().shape

    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    def encode_source(self, inputs: Any) -> torch.Tensor:
        """The source's representation of ``inputs`` (texts, image files or folders, tensors: see :func:`read_inputs`)."""
        inputs = read_inputs(self.source.spec, inputs, who=str(self.source_address))
        with torch.no_grad():
            c = self.source.encode(inputs, tap=self.source_address.tap)
        return c.to(self._device())

    def _unflatten(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(*z.shape[:-1], *self.latent_shape)

    def _flatten(self, z: torch.Tensor) -> torch.Tensor:
        if tuple(z.shape[1:]) != self.latent_shape:
            raise ShapeError(f"target latents have shape {tuple(z.shape)}, expected (B, {', '.join(map(str, self.latent_shape))})")
        return z.reshape(z.shape[0], -1).to(self._device())

    def _checked(self, n: Any, temperature: Any, seed: Any) -> float:
        """The temperature to use (the pair's when None), after checking one request's settings."""
        temp = self.temperature if temperature is None else temperature
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not 0 <= temp <= 10 or temp != temp:
            raise InputError(f"temperature must be a finite number in [0, 10], got {temperature!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"n (samples per input) must be a whole number >= 1, got {n!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise InputError(f"seed must be a whole number in [0, 2^63), got {seed!r}")
        return float(temp)

    @torch.no_grad()
    def sample_many(self, conditions: list[torch.Tensor], ns: list[int], temperatures: list[float | None],
                    seeds: list[int | None], block: int | None = None) -> list[torch.Tensor]:
        """Sample several requests in one translator call, each with its own n, temperature and seed.

        ``conditions[i]`` are source representations ``(B_i, ...)`` (from :meth:`encode_source`).
        Each request draws its residual noise from a generator of its own seed, so it gets the
        samples :meth:`sample_latents` gives it; with ``block`` (the server: :data:`SAMPLE_BLOCK`)
        the translator runs on fixed blocks of rows and a seeded request gets the same bits alone
        or in any batch (the kind contract's ``sample_batch``, :mod:`n2n_hub.spec.kinds`).
        Returns ``(B_i, n_i, *latent_shape)`` per request.
        """
        device = self._device()
        requests = []
        for c, n, t, seed in zip(conditions, ns, temperatures, seeds, strict=True):
            temp = self._checked(n, t, seed)
            gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
            requests.append(SampleRequest(c.to(device), n, temp, gen))
        return [self._unflatten(z) for z in sample_batch(self.module, requests, block=block)]

    @torch.no_grad()
    def sample_latents(self, inputs: Any, n: int = 1, temperature: float | None = None,
                       seed: int | None = None) -> torch.Tensor:
        """``n`` target latents per source input, ``(B, n, *latent_shape)``, without decoding."""
        self._checked(n, temperature, seed)  # refused before the source encodes anything
        return self.sample_many([self.encode_source(inputs)], [n], [temperature], [seed])[0]

    def decode(self, flat: torch.Tensor, block: int = DECODE_CHUNK, pad: bool = False) -> Any:
        """The target's outputs for latents ``(N, *latent_shape)``, at most ``block`` per decoder call.

        ``pad``: every call gets exactly ``block`` rows, so an output's bits do not depend on
        the other latents decoded with it (the server); else blocks only bound the memory.
        """
        if not self.target.spec.can_decode:
            raise InputError(f"{self.target_address} has no decoder: its translations are latents (write them "
                             "with -o FILE.safetensors or --json)")
        return in_blocks(self.target.decode, flat.to(self.target.device), block=block, pad=pad, cpu=True)

    @property
    def decodes(self) -> bool:
        """Whether the target turns latents into outputs (a sentence encoder does not)."""
        return self.target.spec.can_decode

    def caption_bank(self) -> CaptionBank | None:
        """The bank that shows this translator's latents as texts, made on first use; None without one."""
        if callable(self.captions):
            self.captions = self.captions()
        return self.captions

    def describe(self, flat: torch.Tensor, block: int | None = None, pad: bool = False) -> list[dict[str, Any]]:
        """Per-sample facts the target reports about latents ``(N, *latent_shape)`` (e.g. the nearest class),
        and their nearest captions where a caption bank shows them."""
        facts = list(in_blocks(self.target.describe_latent, flat.to(self.target.device), block=block, pad=pad) or [])
        bank = self.caption_bank()
        if bank is not None:
            facts = facts or [{} for _ in range(flat.shape[0])]
            for fact, hits in zip(facts, bank.nearest(flat)):
                fact["nearest"] = hits
        return facts

    @torch.no_grad()
    def translate(self, inputs: Any, n: int = 1, temperature: float | None = None, seed: int | None = None,
                  decode: bool = True) -> Translation:
        """Sample ``n`` translations per input and decode them with the target expert (where it decodes).

        ``seed`` makes the samples reproducible; ``temperature`` scales the residual noise
        (default: :attr:`temperature`, the pair's registry setting or 1).
        """
        z = self.sample_latents(inputs, n=n, temperature=temperature, seed=seed)
        flat = z.reshape(-1, *self.latent_shape)
        outputs = self.decode(flat) if decode and self.decodes else None
        return Translation(inputs, z.cpu(), outputs, self.describe(flat))

    @torch.no_grad()
    def residual(self, source_inputs: Any, target_latents: torch.Tensor) -> torch.Tensor:
        """v = τ⁻¹(z_Θ | z_Φ): what the source does not determine about each target latent."""
        return self.module.residual(self._flatten(target_latents), self.encode_source(source_inputs))

    @torch.no_grad()
    def transfer(self, exemplar_latents: torch.Tensor, exemplar_inputs: Any, new_inputs: Any) -> torch.Tensor:
        """Keep each exemplar's residual and swap its source condition (Eq. 6): latents ``(B, *latent_shape)``."""
        z = self.module.transfer(self._flatten(exemplar_latents), self.encode_source(exemplar_inputs),
                                 self.encode_source(new_inputs))
        return self._unflatten(z)
