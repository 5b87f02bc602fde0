"""Keep an exemplar's residual, swap its condition: z* = τ(τ⁻¹(Θ(y) | c_y) | c_new), y* = Λ(z*).

One operation serves three applications, told apart by the pair's recipe
(:attr:`~n2n_hub.spec.components.RecipeSpec.transfer`):

- ``domain`` (recipe ``domains``, Sec. D): c is a set indicator; ``to`` names the new
  domain and ``from_`` the exemplar's (inferred when omitted: the domain under which the
  translator finds the exemplar most likely).
- ``appearance`` (recipe ``deformation``, Sec. C): c is the target's encoding of an image;
  the exemplar's own encoding is c_y and ``appearance`` images give c_new.
- ``source`` (recipes ``dataset`` and ``target-prior``: exemplar-guided translation): c is
  what the source expert makes of an input; the exemplar is encoded by the source when it
  reads the target's domain (``from_`` gives the exemplar's source input otherwise) and
  ``condition`` gives the new inputs.

A deterministic (MLP) translator has no residual: its "transfer" is the plain translation
of the new condition, which is what the benchmarks compare against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import IncompatiblePairError, InputError
from .translator import Translator

FLAGS = {"domain": "--to", "appearance": "--appearance", "source": "--condition"}
ARGS = {"domain": "to", "appearance": "appearance", "source": "condition"}


@dataclass
class TransferResult:
    """Exemplars, what replaced their condition, and the outputs.

    ``outputs`` is ``(B, C, H, W)`` for image targets (one per exemplar: transfer is
    deterministic); ``resampled`` holds ``n`` outputs per exemplar with a fresh residual
    v ~ N(0, I) under the same new condition, ``(B, n, C, H, W)``, or None.
    """

    exemplars: torch.Tensor
    conditions: Any
    latents: torch.Tensor
    outputs: Any
    resampled: Any = None
    info: list[dict[str, Any]] = field(default_factory=list)

    def grid_rows(self) -> tuple[torch.Tensor, int]:
        """``(images, columns)`` of the grid that shows it: see :func:`grid_rows`."""
        return grid_rows(self)


def _broadcast(x: Any, b: int, what: str) -> Any:
    n = len(x)
    if n == b:
        return x
    if n == 1:
        return x.expand(b, *x.shape[1:]) if isinstance(x, torch.Tensor) else list(x) * b
    raise InputError(f"got {b} exemplar(s) but {n} {what}: give one, or one per exemplar")


def check_request(kind: str, pair: str, recipe: str, **given: Any) -> None:
    """Refuse a new condition of the wrong kind for the pair's recipe, naming the right one."""
    wanted = ARGS[kind]
    wrong = [k for k, v in given.items() if v is not None and k != wanted]
    if wrong:
        raise IncompatiblePairError(
            f"{pair} (recipe {recipe!r}) has no notion of {FLAGS[_kind_of(wrong[0])]}: its new condition is "
            f"given with {FLAGS[kind]}")
    if given.get(wanted) is None:
        raise InputError(f"{pair} (recipe {recipe!r}) needs the new condition: pass {FLAGS[kind]}")


def check_domain_names(plan: Any, *groups: Any) -> None:
    """Refuse domain names the set indicator does not know, from its spec alone (nothing loaded)."""
    spec, variant = plan.source_spec, plan.source.variant
    chosen = spec.variant(variant) if variant else None
    names = tuple(chosen.settings.get("names", ())) if chosen is not None else ()
    names = names or tuple(spec.class_names or ())
    if not names:
        return
    for group in groups:
        for name in ([group] if isinstance(group, str) else list(group or [])):
            if isinstance(name, str) and name.strip().lower() not in names:
                raise InputError(f"unknown domain {name!r} for {plan.source}; domains: {', '.join(names)}")


def _kind_of(arg: str) -> str:
    return next(k for k, v in ARGS.items() if v == arg)


def _has_residual(translator: Translator) -> bool:
    """Whether the translator's kind keeps a residual (has ``transfer``); point-estimate kinds do not."""
    return callable(getattr(translator.module, "transfer", None))


def infer_domain(translator: Translator, z: torch.Tensor) -> torch.Tensor:
    """Per exemplar, the domain id under which the translator's density of z is highest."""
    k = translator.source.representation_for(translator.source_address.tap).num_classes or 0
    module = translator.module
    flat = z.reshape(z.shape[0], -1).to(translator._device())
    with torch.no_grad():
        nll = torch.stack([module.nll(flat, torch.full((flat.shape[0],), i, dtype=torch.long, device=flat.device))
                           for i in range(k)], dim=1)
    return nll.argmin(dim=1).cpu()


@torch.no_grad()
def run_transfer(translator: Translator, kind: str, exemplars: torch.Tensor, *, to: str | Sequence[str] | None = None,
                 appearance: torch.Tensor | None = None, condition: Any = None, from_: Any = None, n: int = 0,
                 temperature: float | None = None, seed: int | None = None) -> TransferResult:
    """The transfer itself, once the request has been checked (see the module docstring)."""
    src, tgt = translator.source, translator.target
    b = exemplars.shape[0]
    with torch.no_grad():
        z = tgt.encode(exemplars)
    info: list[dict[str, Any]] = [{} for _ in range(b)]
    if kind == "domain":
        names = src.class_names or ()
        new = _broadcast([to] if isinstance(to, str) else list(to or []), b, "--to domains")
        new_inputs = src.encode(list(new))  # unknown names fail here, listing the known ones
        if from_ is not None:
            old_inputs = src.encode(_broadcast([from_] if isinstance(from_, str) else list(from_), b, "--from domains"))
            how = "given"
        elif not _has_residual(translator):
            old_inputs, how = None, "unused"
        else:
            old_inputs, how = infer_domain(translator, z), "inferred"
        for i in range(b):
            info[i].update({"to": names[int(new_inputs[i])],
                            "from": names[int(old_inputs[i])] if old_inputs is not None else None, "from_is": how})
        conditions: Any = list(new)
    elif kind == "appearance":
        conditions = _broadcast(appearance, b, "appearance images")
        new_inputs, old_inputs = conditions, exemplars
    else:
        conditions = _broadcast(condition, b, "condition inputs")
        new_inputs = conditions
        if from_ is not None:
            old_inputs = _broadcast(from_, b, "exemplar source inputs")
        elif translator.source.spec.input_domain == translator.target.spec.input_domain:
            old_inputs = exemplars
        else:
            raise InputError(f"{translator.source_address} reads '{translator.source.spec.input_domain}', not the "
                             "exemplar's images: give the exemplar's own source input with --from")
    c_new = translator.encode_source(new_inputs)
    flat = z.reshape(b, -1).to(translator._device())
    if not _has_residual(translator):  # a point-estimate kind: its prediction for the new condition
        z_star = translator.module.sample(c_new, n=1)[:, 0]
    else:
        c_old = translator.encode_source(old_inputs)
        z_star = translator.module.transfer(flat, c_old, c_new)
        v = translator.module.residual(flat, c_old)
        for i in range(b):
            info[i]["residual_norm"] = round(float(v[i].norm()), 3)
    latents = z_star.reshape(b, *translator.latent_shape).cpu()
    with torch.no_grad():
        outputs = tgt.decode(latents.to(tgt.device))
        resampled = None
        if n > 0:
            gen = torch.Generator(device=translator._device()).manual_seed(seed) if seed is not None else None
            t = translator.temperature if temperature is None else temperature
            zs = translator.module.sample(c_new, n=n, temperature=t, generator=gen)
            dec = tgt.decode(zs.reshape(b * n, *translator.latent_shape).to(tgt.device))
            resampled = dec.reshape(b, n, *dec.shape[1:]) if isinstance(dec, torch.Tensor) else dec
    for i in range(b):
        info[i]["latent_distance_to_exemplar"] = round(float((latents[i].flatten() - z[i].flatten().cpu()).norm()), 3)
    return TransferResult(exemplars, conditions, latents, outputs, resampled, info)


def grid_rows(result: TransferResult) -> tuple[torch.Tensor, int]:
    """One row per exemplar: the exemplar, its new condition when that is an image, the output,
    then the re-sampled outputs. Returns ``(images, columns)`` for :func:`n2n_hub.base.images.save_grid`."""
    if not isinstance(result.outputs, torch.Tensor):
        raise InputError("only image outputs can be drawn as a grid")
    cols = [result.exemplars.cpu()]
    cond = result.conditions
    if isinstance(cond, torch.Tensor) and cond.dim() == 4 and cond.shape[1:] == result.outputs.shape[1:]:
        cols.append(cond.cpu())
    cols.append(result.outputs.cpu())
    if isinstance(result.resampled, torch.Tensor):
        cols += [result.resampled[:, j].cpu() for j in range(result.resampled.shape[1])]
    return torch.stack(cols, dim=1).flatten(0, 1), len(cols)
