"""The boundary between the hub and plugin code: every expert output is checked against its spec.

A loaded expert's ``encode``, ``decode`` and ``sample_prior`` are wrapped so that what they
return is checked (type, shape, dtype, finiteness) as it crosses into the hub, on the first
batch and every batch after it (the checks cost a reduction, next to a network's forward
pass). A wrong output is a :class:`ShapeError` naming the expert and the method, before
any long work builds on it. An unexpected exception raised inside plugin code becomes one
:class:`PluginError` line naming the plugin; ``N2N_HUB_DEBUG=1`` lets it through with its
traceback instead.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import torch

from ..errors import N2NError, PluginError, ShapeError
from .expert import Expert, PriorSample, Representation

DEBUG_ENV = "N2N_HUB_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def who(expert_or_spec: Any) -> str:
    """``expert 'id' (plugin 'name')`` for messages (``recipe``, ``bridge``, ``dataset`` for those specs)."""
    spec = getattr(expert_or_spec, "spec", expert_or_spec)
    plugin = getattr(spec, "plugin", None)
    what = type(spec).__name__.removesuffix("Spec").lower()
    what = what if what in ("recipe", "bridge", "dataset") else "expert"
    return f"{what} {spec.id!r}" + (f" (plugin {plugin!r})" if plugin else "")


def plugin_failure(expert_or_spec: Any, method: str, error: BaseException) -> PluginError:
    """One line for an unexpected exception from plugin code (the caller re-raises it when debugging)."""
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return PluginError(f"{who(expert_or_spec)} failed in {method}: {type(error).__name__}"
                       + (f": {text}" if text else "") + f" (set {DEBUG_ENV}=1 to see the traceback)")


def call_plugin(expert_or_spec: Any, method: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call plugin code; n2n-hub errors pass, anything else becomes :func:`plugin_failure`."""
    try:
        return fn(*args, **kwargs)
    except (N2NError, KeyboardInterrupt, NotImplementedError):
        raise
    except SystemExit as e:  # a plugin must not end the process: say who tried
        if debugging():
            raise
        raise PluginError(f"{who(expert_or_spec)} called sys.exit({e.code!r}) in {method}; a plugin must raise "
                          "an error instead (report it to the plugin's authors)") from None
    except Exception as e:  # noqa: BLE001 - plugin code may raise anything
        if debugging():
            raise
        raise plugin_failure(expert_or_spec, method, e) from e


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {tuple(x.shape)} {str(x.dtype).removeprefix('torch.')} tensor"
    return f"a {type(x).__name__}"


def check_tensor(x: Any, rep: Representation, batch: int | None, where: str) -> torch.Tensor:
    """``x`` must be a ``(batch, *rep.shape)`` tensor of ``rep``'s dtype kind, with finite values."""
    want = f"({batch if batch is not None else 'B'}, {', '.join(map(str, rep.shape))})"
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{where} returned {_describe(x)}, expected a {want} tensor")
    if tuple(x.shape[1:]) != rep.shape or (batch is not None and x.shape[0] != batch):
        raise ShapeError(f"{where} returned {_describe(x)}, expected {want} (its spec: {rep.describe()})")
    floating = rep.dtype.startswith(("float", "bfloat"))
    if floating != x.is_floating_point():
        raise ShapeError(f"{where} returned {_describe(x)}, expected {rep.dtype} values (its spec: {rep.describe()})")
    if floating and x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ShapeError(f"{where} returned {bad} non-finite values (NaN or inf) in {_describe(x)}")
    return x


def check_outputs(x: Any, expert: Expert, batch: int, where: str) -> Any:
    """What ``decode`` returns must be ``batch`` items of the expert's output domain."""
    domain = expert.spec.output_domain
    if domain == "text":
        if not isinstance(x, (list, tuple)) or len(x) != batch or not all(isinstance(t, str) for t in x):
            raise ShapeError(f"{where} returned {_describe(x)}, expected a list of {batch} strings")
    elif domain == "image":
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != batch or not x.is_floating_point():
            raise ShapeError(f"{where} returned {_describe(x)}, expected float images ({batch}, C, H, W)")
        if x.numel() and not bool(torch.isfinite(x).all()):
            raise ShapeError(f"{where} returned images with non-finite values (NaN or inf)")
    elif domain == "label":
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != (batch,) or x.is_floating_point():
            raise ShapeError(f"{where} returned {_describe(x)}, expected ({batch},) integer labels")
    return x


def _batch_of(inputs: Any) -> int | None:
    if isinstance(inputs, str):
        return 1
    try:
        return len(inputs)
    except TypeError:
        return None


def guard(expert: Expert) -> Expert:
    """Wrap ``expert``'s methods (on the instance) so their outputs are checked at the boundary."""
    if getattr(expert, "_n2n_guarded", False):
        return expert
    encode, decode, sample_prior = expert.encode, expert.decode, expert.sample_prior

    @functools.wraps(encode)
    def checked_encode(inputs: Any, tap: str | None = None, **kwargs: Any) -> torch.Tensor:
        out = call_plugin(expert, "encode", encode, inputs, tap=tap, **kwargs)
        rep = expert.representation_for(tap)
        where = f"{who(expert)} encode" + (f" (tap {tap!r})" if tap else "")
        return check_tensor(out, rep, _batch_of(inputs), where)

    @functools.wraps(decode)
    def checked_decode(z: torch.Tensor, **kwargs: Any) -> Any:
        out = call_plugin(expert, "decode", decode, z, **kwargs)
        return check_outputs(out, expert, int(z.shape[0]), f"{who(expert)} decode")

    @functools.wraps(sample_prior)
    def checked_sample_prior(n: int, *args: Any, **kwargs: Any) -> PriorSample:
        out = call_plugin(expert, "sample_prior", sample_prior, n, *args, **kwargs)
        where = f"{who(expert)} sample_prior"
        if not isinstance(out, PriorSample):
            raise ShapeError(f"{where} returned {_describe(out)}, expected an n2n_hub.PriorSample(z, extras)")
        check_tensor(out.latents, expert.latent_representation(), n, where)
        return out

    expert.encode = checked_encode  # type: ignore[method-assign]
    expert.decode = checked_decode  # type: ignore[method-assign]
    expert.sample_prior = checked_sample_prior  # type: ignore[method-assign]
    expert._n2n_guarded = True  # type: ignore[attr-defined]
    return expert
