"""Model diagnosis (Sec. E, Fig. S4): what does each layer of a network know about its input?

For every layer (tap) of every source model f, translate f's features at that layer into
the target autoencoder's latent with a cINN and with two deterministic baselines, the MLP
and the closed-form linear map, then decode. Where a layer has discarded information
(invariances grow with depth), the cINN samples diverse, coherent completions while the
baselines can only predict one image per input; the Fréchet distances and the
per-condition diversity measure exactly that. Beside them stands linear CKA between the
tap and the target latent, the measure of the representation-similarity literature,
which needs no training at all.

The work is a table of cells, one per model, tap and translator kind. Translators and
held-out data come in through callables (pairing and training them is the hub's job);
each cell's metrics are kept in a :class:`~n2n_hub.evaluation.cells.CellCache`, so a
model added to a diagnosis costs only its own cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from ..errors import InputError, UnknownExpertError
from ..spec.expert import ExpertAddress, ExpertSpec
from .cells import CellCache, cell_key
from .metrics import Evaluation, FeatureSpace, HeldOut, evaluate_translator, format_value, target_items
from .similarity import linear_cka

if TYPE_CHECKING:
    from ..translators.translator import Translator

DEFAULT_LAYERS = ("early", "middle", "last")
ALL_LAYERS = "all"
KINDS = ("cinn", "mlp", "linear")
KIND_LABELS = {"cinn": "cINN", "mlp": "MLP", "linear": "linear"}
# (kind or None for the tap itself, metric key, column label) of the one-row-per-tap table
COLUMNS: tuple[tuple[str | None, str, str], ...] = (
    (None, "cka", "CKA"),
    ("cinn", "nll", "cINN NLL"), ("cinn", "fd_latent", "cINN FDlat"), ("cinn", "fd_features", "cINN FDfeat"),
    ("cinn", "diversity_pixels", "cINN div"), ("cinn", "consistency_cosine", "cINN cons"),
    ("mlp", "mse", "MLP MSE"), ("mlp", "fd_latent", "MLP FDlat"), ("mlp", "fd_features", "MLP FDfeat"),
    ("linear", "mse", "lin MSE"), ("linear", "fd_latent", "lin FDlat"), ("linear", "fd_features", "lin FDfeat"),
    (None, "seconds", "s"),
)

PairFn = Callable[[str, str], "Translator"]
HeldOutFn = Callable[["Translator"], HeldOut]


@dataclass
class Diagnosis:
    """Per model, tap and translator kind: the held-out metrics; per tap its CKA with the target
    latent and what its cells cost; plus where the figure went."""

    target: str
    sources: list[str]
    addresses: list[str]
    features: str | None
    evaluations: list[Evaluation] = field(default_factory=list)
    cka: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    figure: str | None = None

    @property
    def source(self) -> str:
        return self.sources[0]

    @property
    def layers(self) -> list[str]:
        return [str(ExpertAddress.parse(a).tap) for a in self.addresses]

    def get(self, layer: str, kind: str) -> Evaluation:
        """The evaluation of ``kind`` at ``layer``: a tap name (one model) or a whole ``id:tap@variant``."""
        for e in self.evaluations:
            if e.kind == kind and (e.source == layer or (len(self.sources) == 1
                                                          and ExpertAddress.parse(e.source).tap == layer)):
                return e
        raise KeyError((layer, kind))

    def _cell(self, address: str, kind: str | None, key: str) -> float | None:
        if kind is None:
            return sum(self.seconds.get(address, {}).values()) if key == "seconds" else self.cka.get(address)
        for e in self.evaluations:
            if e.source == address and e.kind == kind:
                return e.metrics.get(key)
        return None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per model and tap: CKA, seconds, and each kind's metrics (None where skipped)."""
        out = []
        for address in self.addresses:
            addr = ExpertAddress.parse(address)
            row: dict[str, Any] = {"address": address, "model": _model(addr), "tap": addr.tap,
                                   "cka": self.cka.get(address), "seconds": self.seconds.get(address, {})}
            for kind in KINDS:
                found = [e for e in self.evaluations if e.source == address and e.kind == kind]
                row[kind] = found[0].metrics if found else None
            if self.skipped.get(address):
                row["skipped"] = self.skipped[address]
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        results = [{"layer": ExpertAddress.parse(e.source).tap, **e.to_dict()} for e in self.evaluations]
        return {"source": self.source, "sources": self.sources, "target": self.target, "layers": self.layers,
                "features": self.features, "figure": self.figure, "rows": self.rows(), "results": results}

    def table(self) -> str:
        """One row per model and tap; columns: CKA, then each translator kind's metrics, then seconds."""
        header = ["model", "tap"] + [label for _, _, label in COLUMNS]
        body = []
        for address in self.addresses:
            addr = ExpertAddress.parse(address)
            body.append([_model(addr), str(addr.tap)] + [format_value(self._cell(address, kind, key))
                                                         for kind, key, _ in COLUMNS])
        widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + body]
        note = (f"diagnosis of {', '.join(self.sources)} -> {self.target}; FD features in {self.features or 'no feature space'}; "
                "CKA = linear CKA of the tap and the target latent; div = RMS pixel distance between samples "
                "of one input; cons = cosine(source(sample), condition); s = seconds to train and evaluate the tap")
        notes = [self.reference()]
        for address, reasons in self.skipped.items():
            for kind, reason in reasons.items():
                notes.append(f"{address} has no {kind} translator: {reason}")
        return "\n".join([note, *lines, *[n for n in notes if n]])

    def reference(self) -> str:
        """What real data scores on the same held-out items: the scale to read the FDs against."""
        if not self.evaluations:
            return ""
        m = self.evaluations[0].metrics
        parts = [f"FD latent {format_value(m.get('fd_latent_floor'))}"]
        if m.get("fd_features_floor") is not None:
            parts.append(f"FD features {format_value(m.get('fd_features_floor'))}")
        text = "reference: independent real data scores " + ", ".join(parts)
        if m.get("fd_features_reconstruction") is not None:
            text += (f"; the target's reconstructions of the real items score FD features "
                     f"{format_value(m.get('fd_features_reconstruction'))}")
        return text


def _model(addr: ExpertAddress) -> str:
    return f"{addr.id}@{addr.variant}" if addr.variant else addr.id


def layer_addresses(source: str, layers: Sequence[str] | str | None, spec: ExpertSpec) -> list[str]:
    """``id:layer@variant`` for every layer of one source (whose spec is ``spec``), after checking
    it names no tap and has them all. ``"all"`` is every tap; None is ``early, middle, last``
    where the expert has them, else every tap."""
    addr = ExpertAddress.parse(source)
    if addr.tap is not None:
        raise InputError(f"give the source without a tap ({_model(addr)}) and choose its layers with --layers")
    if layers is None:
        layers = list(DEFAULT_LAYERS) if all(l in spec.taps for l in DEFAULT_LAYERS) else ALL_LAYERS
    if isinstance(layers, str):
        layers = layers.split(",")
    layers = [l.strip() for l in layers if l.strip()]
    if layers == [ALL_LAYERS]:
        layers = list(spec.taps)
        if not layers:
            raise UnknownExpertError(f"expert {spec.id!r} has no taps to diagnose (`n2n-hub experts show {spec.id}`)")
    if not layers:
        raise InputError("no layers to diagnose; pass --layers, e.g. --layers early,middle,last or --layers all")
    if len(set(layers)) != len(layers):
        raise InputError(f"--layers names a layer twice: {','.join(layers)}")
    missing = [l for l in layers if l not in spec.taps]
    if missing:
        raise UnknownExpertError(f"expert {_model(addr)} has no layer(s) {', '.join(missing)}; its taps are "
                                 f"{', '.join(spec.taps) or 'none'} (`n2n-hub experts show {_model(addr)}`)")
    return [str(ExpertAddress(addr.id, layer, addr.variant)) for layer in layers]


def taps_of_each(layers: Sequence[str] | str | None, spec: ExpertSpec, specs: dict[str, ExpertSpec]
                 ) -> Sequence[str] | str | None:
    """The layers one of several models is diagnosed at: models name their taps differently (a
    ResNet's ``layer3``, a ViT's ``blocks.3``), so each takes those of the listed taps it has.
    A tap that no model has, or a model that has none of them, is still an error."""
    if len(specs) < 2 or layers is None or (isinstance(layers, str) and layers.strip() == ALL_LAYERS):
        return layers
    wanted = [l.strip() for l in (layers.split(",") if isinstance(layers, str) else layers) if l.strip()]
    nowhere = [l for l in wanted if not any(l in s.taps for s in specs.values())]
    if nowhere:
        raise UnknownExpertError(f"no model has the layer(s) {', '.join(nowhere)}; their taps are "
                                 + "; ".join(f"{name}: {', '.join(s.taps) or 'none'}" for name, s in specs.items()))
    mine = [l for l in wanted if l in spec.taps]
    return mine if mine else wanted  # none of them: layer_addresses names the taps this model has


def check_figure_path(figure: str | Path | None) -> None:
    """The figure is a PNG; a wrong name fails before anything is trained."""
    if figure is not None and Path(figure).suffix.lower() != ".png":
        raise InputError(f"-o {figure}: the figure is written as PNG; name it '*.png'")


def settings_of(features: FeatureSpace | None, samples: int | None, per_condition: int, seed: int) -> dict[str, Any]:
    return {"features": features.name if features is not None else None, "samples": samples,
            "per_condition": per_condition, "seed": seed}


def diagnose_cells(sources: Sequence[str], addresses: Sequence[str], target: str, pair: PairFn, held_out: HeldOutFn,
                   features: Callable[[Translator], FeatureSpace | None], cells: CellCache | None = None, *,
                   kinds: Sequence[str] = KINDS, samples: int | None = None, per_condition: int = 8, seed: int = 0,
                   figure: Path | None = None, inputs: int = 8, cinn_rows: int = 3,
                   log: Callable[[str], None] = lambda _: None) -> Diagnosis:
    """Pair and evaluate every cell (address × kind), one address at a time so that only one tap's
    features are held in memory; cached cells are read back, the others measured and stored.

    ``pair(address, kind)`` returns the translator (from a cache or trained now), or raises
    :class:`InputError` for a kind that cannot serve the tap (that cell is skipped and noted).
    ``features(first translator)`` is the feature space of every cell.
    """
    result = Diagnosis(target, list(sources), list(addresses), None)
    total = len(addresses) * len(kinds)
    space: FeatureSpace | None = None
    reference: tuple[str | None, int] | None = None
    grid: list[tuple[str, torch.Tensor]] = []
    picked: torch.Tensor | None = None
    done = 0
    for index, address in enumerate(addresses):
        translators: dict[str, Translator] = {}
        spent: dict[str, float] = {}
        skipped_now: dict[str, str] = {}
        for kind in kinds:
            done += 1
            log(f"[{done}/{total}] {address} -> {target}: {KIND_LABELS.get(kind, kind)}")
            t0 = time.perf_counter()
            try:
                translators[kind] = pair(address, kind)
            except InputError as e:
                if kind == kinds[0]:
                    raise
                skipped_now[kind] = str(e).split("\n")[0]
                log(f"[{done}/{total}] {address}: no {kind} translator ({skipped_now[kind]})")
                continue
            spent[kind] = time.perf_counter() - t0
        first = translators[kinds[0]]
        address = str(first.source_address)  # the variant resolved: how the evaluations name it
        result.addresses[index] = address
        for kind in [k for k in kinds if k not in translators]:
            result.skipped.setdefault(address, {})[kind] = skipped_now.pop(kind)
        if space is None and not result.evaluations:
            space = features(first)
            result.features = space.name if space is not None else None
            result.target = str(first.target_address)
        held = held_out(first)
        reference = _same_held_out(reference, first, held, address)
        result.cka[address] = linear_cka(held.test.source, held.test.target)
        settings = settings_of(space, samples, per_condition, seed)
        for kind, translator in translators.items():
            key = cell_key(translator, settings)
            stored = cells.get(key) if cells is not None else None
            if stored is not None:
                evaluation, extras = stored
                spent[kind] = float(extras.get("seconds", spent[kind]))
                log(f"  {address} {kind}: evaluated before ({format_value(spent[kind])} s to train and evaluate)")
            else:
                t0 = time.perf_counter()
                evaluation = evaluate_translator(translator, held, features=space, samples=samples,
                                                 per_condition=per_condition, seed=seed)
                trained = (translator.metadata.get("compute") or {}).get("wall_time_s")
                spent[kind] = (float(trained) if trained is not None else spent[kind]) + time.perf_counter() - t0
                if cells is not None:
                    cells.put(key, evaluation, {"seconds": spent[kind], "address": address, "kind": kind})
                log(f"  {address} {kind}: {_summary(evaluation)}")
            result.evaluations.append(evaluation)
        result.seconds[address] = spent
        if figure is not None:
            if picked is None:
                picked, head = _figure_head(first, held, inputs, seed)
                grid.extend(head)
            grid.extend(_figure_rows(translators, held, picked, address, len(sources) > 1, cinn_rows, seed))
        del translators, held
    result.sources = list(dict.fromkeys(_model(ExpertAddress.parse(a)) for a in result.addresses))
    if figure is not None:
        save_labelled_grid(grid, figure)
        result.figure = str(figure)
    return result


def _summary(e: Evaluation) -> str:
    keys = ("nll", "mse", "fd_latent", "fd_features")
    return ", ".join(f"{k} {format_value(e.metrics.get(k))}" for k in keys if e.metrics.get(k) is not None)


def _same_held_out(reference: tuple[str | None, int] | None, translator: Translator, held: HeldOut,
                   address: str) -> tuple[str | None, int]:
    """Every tap must be measured on the same held-out items, or the table compares apples and pears."""
    plan = translator.plan
    mine = (getattr(plan, "dataset", None), int(held.test.source.shape[0]))
    if reference is not None and mine != reference:
        raise InputError(f"{address} was paired on other held-out data ({mine[1]} pairs of dataset {mine[0]!r}) "
                         f"than the taps before it ({reference[1]} pairs of {reference[0]!r}); diagnose models "
                         "paired on the same dataset together")
    return mine


@torch.no_grad()
def _figure_head(first: Translator, held: HeldOut, inputs: int, seed: int
                 ) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The held-out rows the figure shows, and its first rows: the inputs and their reconstructions."""
    n = held.test.source.shape[0]
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=gen)[:min(inputs, n)]
    real = target_items(first, held.test_items)
    recon = first.target.decode(held.test.target[rows].reshape(-1, *first.latent_shape)).float().cpu()
    head: list[tuple[str, torch.Tensor]] = []
    if real is not None:
        head.append(("input", real[rows % real.shape[0]].float().cpu()))
    head.append(("reconstruction", recon))
    return rows, head


@torch.no_grad()
def _figure_rows(translators: dict[str, Translator], held: HeldOut, rows: torch.Tensor, address: str,
                 name_model: bool, cinn_rows: int, seed: int) -> list[tuple[str, torch.Tensor]]:
    """Per kind: ``cinn_rows`` cINN samples, one row for each deterministic baseline."""
    addr = ExpertAddress.parse(address)
    layer = f"{addr.variant or addr.id}:{addr.tap}" if name_model else str(addr.tap)
    c = held.test.source[rows]
    out = []
    for kind, t in translators.items():
        device = next(t.module.parameters()).device
        k = cinn_rows if kind == "cinn" else 1
        g = torch.Generator(device=device).manual_seed(seed + 1)
        z = t.module.sample(c.to(device), n=k, temperature=1.0, generator=g)  # (B, k, D)
        for j in range(k):
            images = t.target.decode(z[:, j].reshape(-1, *t.latent_shape)).float().cpu()
            label = f"{layer}: cINN {j + 1}" if kind == "cinn" else f"{layer}: {KIND_LABELS.get(kind, kind)}"
            out.append((label, images))
    return out


def save_labelled_grid(rows: list[tuple[str, torch.Tensor]], path: Path, tile: int = 64, pad: int = 2,
                       label_width: int = 120) -> Path:
    """Rows of images ``(N, C, H, W)`` in [-1, 1], each with a text label on the left, as a PNG.
    The label column widens past ``label_width`` for labels that need it."""
    from PIL import Image, ImageDraw

    from ..base.atomic import atomic_path
    from ..base.images import to_uint8

    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_width = max([label_width] + [int(probe.textlength(label)) + 8 for label, _ in rows])
    ncol = max(r[1].shape[0] for r in rows)
    width = label_width + ncol * (tile + pad) + pad
    height = len(rows) * (tile + pad) + pad
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        y = pad + r * (tile + pad)
        draw.text((4, y + tile // 2 - 6), label, fill=0)
        gray = to_uint8(images.mean(dim=1, keepdim=True))
        for i in range(gray.shape[0]):
            im = Image.fromarray(gray[i, 0].numpy(), mode="L").resize((tile, tile), Image.NEAREST)
            canvas.paste(im, (label_width + pad + i * (tile + pad), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
