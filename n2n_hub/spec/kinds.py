"""The translator contract: what a kind of translator must offer, and the one table of kinds.

The hub, the trainer, the file format and the CLI reach a translator only through this
contract, so a new kind (the cINN and the MLP baseline are two) is one
:func:`register_kind` call, never a new branch on a kind's name.

A module of a registered kind must have:

- ``kind`` (its name) and ``arch_version`` (bumped when its layout changes for one config);
- ``dim`` (the target dimension) and ``condition`` (a
  :class:`~n2n_hub.cinn.embedders.ConditionSpec`);
- ``config() -> dict`` and a classmethod ``from_config(dict)`` that rebuilds it;
- ``loss(z, c) -> (B,)``: the per-sample objective the trainer minimises, summed over
  dimensions (an NLL in nats for ``objective="nll"``, a squared error for ``"mse"``);
- ``sample(c, n=1, temperature=1.0, generator=None) -> (B, n, dim)``;
- optionally ``sample_batch(requests, block=None) -> [(B_i, n_i, dim), ...]``: several
  callers' samples in one call, one :class:`SampleRequest` ``(c, n, temperature, generator)``
  each. Request ``i`` draws its noise from its own generator exactly as ``sample(*requests[i])``
  does; with ``block`` the module runs on fixed blocks of ``block`` rows, the last one
  zero-padded (:func:`n2n_hub.base.blocks.in_blocks`), so its kernels see one shape whatever
  the batch and a request's bits do not depend on the other requests. A kind without it is sampled request by request (:func:`sample_batch`),
  which keeps that promise at the cost of one call per request. The server merges concurrent
  requests through it, and :class:`~n2n_hub.translators.translator.Translator` samples through
  it too;
- optionally ``needs_data_init() -> bool`` and ``initialize(z, c, whitening_rows=None)``
  for a data-dependent initialisation the trainer runs once, before step 0, from the first
  finite batch ``(z, c)``; with ``data_init_rows() -> int`` above 0 the module asks for at
  least that many training targets besides (the trainer passes them as ``whitening_rows``);
- optionally ``needs_condition_fit() -> bool`` and ``fit_condition(c, labels)``: a part
  fitted to all training conditions and their class labels, once, before step 0 (the
  trainer refuses to start without labels when it is due);
- optionally ``fit_closed_form(pairs)``: a kind solved in closed form (the ``linear`` kind's
  ridge least squares). The trainer then takes no gradient steps: it hands the method every
  training pair once, as an iterable of ``(c, z)`` batches, scores the held-out pairs and
  returns (``steps`` is 0).

This module imports no torch, so listing kinds stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

from ..errors import InputError

__all__ = ["TranslatorKind", "SampleRequest", "register_kind", "unregister_kind", "get_kind", "kind_names", "kind_of",
           "needs_data_init", "data_init_rows", "needs_condition_fit", "fits_closed_form", "sample_batch"]


@dataclass(frozen=True)
class TranslatorKind:
    """One kind of translator.

    Args:
        name: what ``--translator``, registry entries and translator files call it.
        module: the module class, or ``"package.module:Class"`` imported on first use.
        objective: ``"nll"`` (a density; metrics ``*_nll``) or ``"mse"`` (a point estimate).
        options: the flow/registry options its constructor takes besides ``dim`` and ``condition``.
        sized: whether the hub's size presets (``n_blocks``/``hidden`` from the target's
            dimension and the data) apply to it.
        description: one line for help texts.
    """

    name: str
    module: Any
    objective: str = "nll"
    options: frozenset[str] = frozenset()
    sized: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.objective not in ("nll", "mse"):
            raise ValueError(f"objective must be 'nll' or 'mse', got {self.objective!r}")

    @property
    def cls(self) -> type:
        """The module class (imported now if it was given by name)."""
        if isinstance(self.module, str):
            from .expert import import_object

            return import_object(self.module)  # type: ignore[no-any-return]
        return self.module  # type: ignore[no-any-return]

    def build(self, dim: int, condition: Any, options: dict[str, Any]) -> Any:
        """A fresh module; options it does not take are dropped."""
        return self.cls(dim, condition, **{k: v for k, v in options.items() if k in self.options})

    def from_config(self, cfg: dict[str, Any]) -> Any:
        return self.cls.from_config(cfg)

    @property
    def arch_version(self) -> int:
        return int(getattr(self.cls, "arch_version", 1))


_KINDS: dict[str, TranslatorKind] = {}


def register_kind(kind: TranslatorKind, *, replace: bool = False) -> TranslatorKind:
    """Add a kind to the table; a second kind under a taken name is refused unless ``replace``."""
    if not replace and kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise InputError(f"translator kind {kind.name!r} is already registered; pick another name")
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind from the table (built-in kinds included); unknown names are ignored."""
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Registered kinds, built-in ones first."""
    return tuple(_KINDS)


def get_kind(name: str) -> TranslatorKind:
    """The kind called ``name``, or an :class:`InputError` listing the known ones."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in _KINDS)
        raise InputError(f"unknown translator kind {name!r}; use one of {known}") from None


def kind_of(module: Any) -> TranslatorKind:
    """The registered kind of a module (by its ``kind`` attribute)."""
    name = getattr(module, "kind", None)
    if name not in _KINDS:
        raise InputError(f"cannot use a {type(module).__name__} as a translator: its kind {name!r} is not "
                         f"registered (known: {', '.join(_KINDS)}); register it with n2n_hub.spec.kinds.register_kind")
    return _KINDS[name]


def needs_data_init(module: Any) -> bool:
    """Whether the module asks for its data-dependent initialisation (kinds without one: never)."""
    check: Callable[[], bool] | None = getattr(module, "needs_data_init", None)
    return bool(check()) if callable(check) else False


def data_init_rows(module: Any) -> int:
    """How many training targets the module's data-dependent initialisation asks for besides a batch (0: none)."""
    rows: Callable[[], int] | None = getattr(module, "data_init_rows", None)
    return int(rows()) if callable(rows) else 0


def needs_condition_fit(module: Any) -> bool:
    """Whether the module waits for ``fit_condition(c, labels)`` (kinds without one: never)."""
    check: Callable[[], bool] | None = getattr(module, "needs_condition_fit", None)
    return bool(check()) if callable(check) else False


class SampleRequest(NamedTuple):
    """One caller's share of a :func:`sample_batch` call."""

    c: Any                 # (B, ...) source representations (a tensor)
    n: int                 # samples per condition
    temperature: float     # scale of the residual noise
    generator: Any = None  # the torch.Generator the request's noise comes from (None: the global one)


def sample_batch(module: Any, requests: Sequence[SampleRequest], block: int | None = None) -> list[Any]:
    """``(B_i, n_i, dim)`` samples per request: the module's own ``sample_batch``, else one ``sample`` each."""
    batched: Callable[..., list[Any]] | None = getattr(module, "sample_batch", None)
    if callable(batched):
        return batched([tuple(r) for r in requests], block=block)
    return [module.sample(r.c, n=r.n, temperature=r.temperature, generator=r.generator) for r in requests]


def fits_closed_form(module: Any) -> bool:
    """Whether the module is solved from all training pairs at once instead of by gradient steps."""
    return callable(getattr(module, "fit_closed_form", None))


register_kind(TranslatorKind(
    "cinn", "n2n_hub.cinn.flow:ConditionalINN", objective="nll", sized=True,
    options=frozenset({"n_blocks", "hidden", "depth", "cond_dim", "embed_hidden", "clamp", "seed", "whiten",
                       "condition_projection", "condition_projection_kind"}),
    description="the conditional invertible network (samples p(z_target | z_source))"))
register_kind(TranslatorKind(
    "mlp", "n2n_hub.cinn.baseline:MLPTranslator", objective="mse",
    options=frozenset({"hidden", "depth", "cond_dim", "embed_hidden"}),
    description="the deterministic MLP baseline (predicts the conditional mean)"))
register_kind(TranslatorKind(
    "linear", "n2n_hub.cinn.linear:LinearTranslator", objective="mse", options=frozenset({"ridge"}),
    description="a linear map fitted in closed form (ridge least squares; predicts the conditional mean)"))
