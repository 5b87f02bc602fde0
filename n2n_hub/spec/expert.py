"""The public contract between n2n-hub and expert plugins.

A plugin registers :class:`ExpertSpec` objects: cheap metadata that lists what an
expert consumes and produces, with no heavy import. The expert itself (a subclass of
:class:`Expert`) is imported from ``spec.loader`` only when someone uses it.

Domains name the kind of data at an expert's edges, with fixed in-memory forms:

- ``text``: ``list[str]``
- ``image``: float tensor ``(B, C, H, W)`` with values in ``[-1, 1]``
- ``label``: int64 tensor ``(B,)`` of class ids (with class names in the spec)
"""

from __future__ import annotations

import warnings

import importlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # torch loads only when an expert does: listing experts stays fast
    import torch

from ..errors import MissingWeightsError, PluginError, ShapeError, UnknownExpertError

DOMAINS = ("text", "image", "label")
_ID = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Representation:
    """Per-sample shape and dtype of a tensor an expert produces or consumes."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    num_classes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "num_classes": self.num_classes}

    def describe(self) -> str:
        shape = "×".join(map(str, self.shape)) or "scalar"
        return f"{shape} {self.dtype}" + (f" ({self.num_classes} classes)" if self.num_classes else "")


@dataclass(frozen=True)
class Variant:
    """A named set of weights. ``source`` says where they come from (for humans and loaders).

    ``settings`` are the loader's; ``settings["hf_repo"]``, where given, is the Hugging Face
    model id the weights come from, which translators' model cards name as ``base_model``.
    """

    name: str
    description: str = ""
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpertSpec:
    """What an expert is and can do, declared without loading it.

    Attributes:
        id: short lowercase name users type (``bert``).
        loader: ``"module:Class"`` of the :class:`Expert` subclass, imported lazily.
        input_domain: what ``encode`` consumes (None: cannot encode).
        output_domain: what ``decode`` produces (None: cannot decode).
        representation: per-sample shape of ``encode``'s output (the default tap).
        taps: extra named representations, addressed as ``id:tap`` (e.g. ``segmenter:early``).
        latent: per-sample shape of what ``decode`` consumes.
        prior: description of the latent's prior if ``sample_prior`` works (e.g. ``"N(0, I)"``).
        prior_domains: domains ``sample_prior`` can also report without decoding (e.g. ``label``).
        variants: named weight variants; ``default_variant`` is used when none is given.
        accepts_paths / accepts_hub_ids: whether ``id@/local/dir`` and ``id@org/name`` work.
        input_shape / output_shape: per-sample image shapes, for image domains.
        class_names: names of the classes, for label domains.
        variant_spec: for an expert whose taps and shapes depend on the variant (a model zoo),
            ``"module:function"`` of ``fn(spec, address) -> ExpertSpec``: the spec of the
            variant ``address.variant`` (already resolved: a named variant, an absolute path
            or a hub id), with its own taps, shapes, licence and one variant. It is imported
            only when an address names a variant, so registration stays metadata only; it may
            raise :class:`UnknownExpertError` to explain a variant or a tap (``address.tap``)
            it cannot give.
        find_variants: ``"module:function"`` of ``fn(spec, query) -> list[Variant]``: open
            variants matching a search (substring or wildcard), for ``n2n-hub experts -q``.
    """

    id: str
    version: str
    loader: str
    description: str = ""
    license: str = ""
    input_domain: str | None = None
    output_domain: str | None = None
    representation: Representation | None = None
    taps: dict[str, Representation] = field(default_factory=dict)
    latent: Representation | None = None
    prior: str | None = None
    prior_domains: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()
    default_variant: str | None = None
    accepts_paths: bool = False
    accepts_hub_ids: bool = False
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None
    variant_spec: str | None = None
    find_variants: str | None = None
    plugin: str | None = None  # filled in by the plugin manager

    def validate(self) -> None:
        """Raise :class:`PluginError` naming the first problem with this spec."""
        where = f"expert spec {self.id!r}"
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise PluginError(f"{where}: id must be lowercase letters, digits, '-' or '_'")
        if not isinstance(self.loader, str) or ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:Class', got {self.loader!r}")
        for name in ("variant_spec", "find_variants"):
            hook = getattr(self, name)
            if hook is not None and (not isinstance(hook, str) or ":" not in hook):
                raise PluginError(f"{where}: {name} must be 'module:function', got {hook!r}")
        for name, dom in (("input_domain", self.input_domain), ("output_domain", self.output_domain)):
            if dom is not None and dom not in DOMAINS:
                raise PluginError(f"{where}: {name} {dom!r} is not one of {DOMAINS}")
        if self.input_domain and self.representation is None:
            raise PluginError(f"{where}: an expert that encodes must declare its representation")
        if self.output_domain and self.latent is None:
            raise PluginError(f"{where}: an expert that decodes must declare its latent")
        if self.prior and self.latent is None:
            raise PluginError(f"{where}: a prior needs a latent")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise PluginError(f"{where}: duplicate variant names {names}")
        if self.default_variant is not None and self.default_variant not in names:
            raise PluginError(f"{where}: default_variant {self.default_variant!r} is not among {names}")

    @property
    def can_encode(self) -> bool:
        return self.input_domain is not None

    @property
    def can_decode(self) -> bool:
        return self.output_domain is not None

    @property
    def can_sample(self) -> bool:
        return self.prior is not None

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def tap_representation(self, tap: str | None) -> Representation:
        if tap is None:
            if self.representation is None:
                raise ShapeError(f"expert {self.id!r} has no representation: it cannot encode")
            return self.representation
        if tap not in self.taps:
            raise UnknownExpertError(
                f"expert {self.id!r} has no tap {tap!r}; taps: {', '.join(sorted(self.taps)) or 'none'}"
            )
        return self.taps[tap]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "description": self.description, "license": self.license,
            "plugin": self.plugin, "input_domain": self.input_domain, "output_domain": self.output_domain,
            "representation": self.representation.to_dict() if self.representation else None,
            "taps": {k: v.to_dict() for k, v in self.taps.items()},
            "latent": self.latent.to_dict() if self.latent else None,
            "prior": self.prior, "prior_domains": list(self.prior_domains),
            "variants": [{"name": v.name, "description": v.description, "source": v.source} for v in self.variants],
            "default_variant": self.default_variant,
            "accepts_paths": self.accepts_paths, "accepts_hub_ids": self.accepts_hub_ids,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "num_classes": len(self.class_names) if self.class_names else None,
        }


@dataclass(frozen=True)
class ExpertAddress:
    """A parsed ``id[:tap][@variant]`` string."""

    id: str
    tap: str | None = None
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "ExpertAddress":
        if not isinstance(text, str) or not text.strip():
            raise UnknownExpertError("an expert address must be a non-empty string like 'bert' or 'vaegan@animals'")
        head, _, variant = text.strip().partition("@")
        ident, _, tap = head.partition(":")
        if not ident:
            raise UnknownExpertError(f"cannot parse expert address {text!r}: expected 'id[:tap][@variant]'")
        return cls(ident.lower(), tap or None, variant or None)

    def __str__(self) -> str:
        return self.id + (f":{self.tap}" if self.tap else "") + (f"@{self.variant}" if self.variant else "")


@dataclass
class PriorSample:
    """Latents drawn from an expert's prior, with what is known about them without decoding.

    ``latents`` is ``(n, *latent_shape)``, named as in a :class:`~n2n_hub.translators.translator.Translation`;
    ``extras`` maps a domain (e.g. ``label``) to that domain's data for the same samples.
    ``PriorSample(z, extras)`` and ``.z`` are the names of plugin API 1.0, kept as aliases.
    """

    latents: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    def __init__(self, latents: torch.Tensor | None = None, extras: dict[str, Any] | None = None, *,
                 z: torch.Tensor | None = None) -> None:
        if z is not None:
            warnings.warn("PriorSample(z=...) is deprecated: pass latents=...", DeprecationWarning, stacklevel=2)
            latents = z if latents is None else latents
        if latents is None:
            raise TypeError("PriorSample needs its latents")
        self.latents = latents
        self.extras = {} if extras is None else extras

    @property
    def z(self) -> torch.Tensor:
        """Deprecated name of :attr:`latents` (plugin API 1.0)."""
        warnings.warn("PriorSample.z is deprecated: use .latents", DeprecationWarning, stacklevel=2)
        return self.latents


class Expert:
    """Base class of a loaded, frozen expert. Subclasses implement what their spec declares.

    The constructor receives the spec, the variant string (a named variant, a hub id or a
    local directory, already resolved to the default when the user gave none) and a
    device. Load weights in ``__init__``; raise :class:`MissingWeightsError` with a message
    that says which files to put where when they are absent.
    """

    def __init__(self, spec: ExpertSpec, variant: str | None, device: str | torch.device = "cpu") -> None:
        self.spec = spec
        self.variant = variant
        from ..base.paths import hub_home

        self.home = hub_home()  # the loading hub's home: put this expert's own files under experts_dir(id, self.home)
        import torch

        self.device = torch.device(device)

    # Shapes can depend on the variant (bert-base is 768-d, MiniLM 384-d): the spec declares
    # the default variant's; a loaded expert reports its own. Override when they differ.
    def representation_for(self, tap: str | None = None) -> Representation:
        """Per-sample shape of ``encode(..., tap)`` for the loaded weights."""
        return self.spec.tap_representation(tap)

    def latent_representation(self) -> Representation:
        """Per-sample shape of what ``decode`` takes (and ``sample_prior`` returns).

        An expert that only encodes is translated into its representation: that is its latent.
        """
        if self.spec.latent is None:
            if self.spec.can_encode and not self.spec.can_decode:
                return self.representation_for(None)
            raise ShapeError(f"expert {self.spec.id!r} has no latent: it cannot decode")
        return self.spec.latent

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of label ids this expert's ``label`` data refers to."""
        return self.spec.class_names

    def encode(self, inputs: Any, tap: str | None = None) -> torch.Tensor:
        """Inputs of ``spec.input_domain`` → representation ``(B, *shape)``."""
        raise NotImplementedError(f"expert {self.spec.id!r} cannot encode")

    def decode(self, z: torch.Tensor) -> Any:
        """Latent ``(B, *latent.shape)`` → outputs of ``spec.output_domain``."""
        raise NotImplementedError(f"expert {self.spec.id!r} cannot decode")

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> PriorSample:
        """Draw ``n`` latents from the prior (and any ``prior_domains`` data for them)."""
        raise NotImplementedError(f"expert {self.spec.id!r} has no prior")

    def describe_latent(self, z: torch.Tensor) -> list[dict[str, Any]]:
        """Optional per-sample facts about latents for JSON output (e.g. nearest class)."""
        return [{} for _ in range(z.shape[0])]

    def fingerprint(self) -> str:
        """A string that changes whenever the weights change (e.g. a hash of weight files).

        Translator cache keys include it, so a changed expert never reuses a stale translator.
        """
        return f"{self.spec.id}-{self.spec.version}-{self.variant}"


def import_object(path: str) -> Any:
    """Import ``"module:attr"``; raise :class:`PluginError` naming it when that fails."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except MissingWeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - a plugin's import error must not crash the host
        raise PluginError(f"cannot import {path!r}: {type(e).__name__}: {e}") from e


def check_batch(x: torch.Tensor, rep: Representation, what: str) -> None:
    """Raise :class:`ShapeError` unless ``x`` is a batch of ``rep``."""
    import torch

    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != rep.shape:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"{what} has shape {got}, expected (B, {', '.join(map(str, rep.shape))})")


IMAGE_RANGE_TOLERANCE = 0.05


def check_images(images: Any, shape: tuple[int, ...], who: str, device: str | torch.device = "cpu") -> torch.Tensor:
    """Images of the ``image`` domain for an expert that reads ``shape`` = (C, H, W).

    Returns them as float32 on ``device``; raises :class:`ShapeError` for another shape or
    values outside [-1, 1] (with a small tolerance), saying how to fix 8-bit inputs.
    """
    import torch

    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        c, h, w = shape
        raise ShapeError(f"{who} reads images of shape (B, {c}, {h}, {w}), got {got}")
    x = images.to(device, torch.float32)
    if x.numel() and (x.min() < -1 - IMAGE_RANGE_TOLERANCE or x.max() > 1 + IMAGE_RANGE_TOLERANCE):
        raise ShapeError(f"images must have values in [-1, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]; "
                         "scale 8-bit images with x / 127.5 - 1")
    return x


def as_text_batch(inputs: str | Sequence[str]) -> list[str]:
    """Accept one string or a sequence of strings."""
    if isinstance(inputs, str):
        return [inputs]
    texts = list(inputs)
    if not all(isinstance(t, str) for t in texts):
        raise ShapeError("text inputs must be strings")
    return texts
