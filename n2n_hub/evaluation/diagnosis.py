"""Model diagnosis (Sec. E, Fig. S4): what does each layer of a network know about its input?

For every layer (tap) of the source expert f, translate f's features at that layer into
the target autoencoder's latent with a cINN and with the deterministic MLP baseline, then
decode. Where a layer has discarded information (invariances grow with depth), the cINN
samples diverse, coherent completions while the MLP can only predict their mean image;
the Fréchet distances and the per-condition diversity measure exactly that.

The translators and their held-out data come in as values (a cINN and an MLP per layer,
one :class:`~n2n_hub.evaluation.metrics.HeldOut` per layer); pairing and training them is
the hub's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..errors import InputError, UnknownExpertError
from .metrics import Evaluation, FeatureSpace, HeldOut, evaluate_translator, format_value, target_items
from ..spec.expert import ExpertAddress, ExpertSpec

if TYPE_CHECKING:
    from ..translators.translator import Translator

DEFAULT_LAYERS = ("early", "middle", "last")
KINDS = ("cinn", "mlp")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("nll", "NLL"), ("mse", "MSE"), ("fd_latent", "FD latent"), ("fd_latent_unpaired", "FD latent unpaired"),
    ("fd_features", "FD features"),
    ("diversity_latent", "div latent"), ("diversity_pixels", "div pixels"), ("consistency_cosine", "consistency"),
)


@dataclass
class Diagnosis:
    """Per layer and translator kind: the held-out metrics; plus where the figure went."""

    source: str
    target: str
    layers: list[str]
    features: str | None
    evaluations: list[Evaluation] = field(default_factory=list)
    figure: str | None = None

    def get(self, layer: str, kind: str) -> Evaluation:
        for e in self.evaluations:
            if ExpertAddress.parse(e.source).tap == layer and e.kind == kind:
                return e
        raise KeyError((layer, kind))

    def to_dict(self) -> dict[str, Any]:
        rows = [{"layer": ExpertAddress.parse(e.source).tap, **e.to_dict()} for e in self.evaluations]
        return {"source": self.source, "target": self.target, "layers": self.layers, "features": self.features,
                "figure": self.figure, "results": rows}

    def table(self) -> str:
        """One row per (layer, translator); columns are the metrics of :mod:`n2n_hub.evaluation.metrics`."""
        header = ["layer", "translator"] + [label for _, label in COLUMNS]
        body = []
        for e in self.evaluations:
            body.append([str(ExpertAddress.parse(e.source).tap), e.kind]
                        + [format_value(e.metrics.get(key)) for key, _ in COLUMNS])
        widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + body]
        note = (f"{self.source} -> {self.target}; FD features in {self.features or 'no feature space'}; "
                "diversity = RMS distance between samples of one condition")
        lines.append(self.reference())
        return "\n".join([note, *lines])

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


def layer_addresses(source: str, layers: Sequence[str], spec: ExpertSpec) -> list[str]:
    """``id:layer@variant`` for every layer, after checking the source (whose spec is ``spec``)
    names no tap and has them all."""
    addr = ExpertAddress.parse(source)
    if addr.tap is not None:
        raise InputError(f"give the source without a tap ({addr.id}{'@' + addr.variant if addr.variant else ''}) "
                         "and choose its layers with --layers")
    layers = [l.strip() for l in layers if l.strip()]
    if not layers:
        raise InputError("no layers to diagnose; pass --layers, e.g. --layers early,middle,last")
    if len(set(layers)) != len(layers):
        raise InputError(f"--layers names a layer twice: {','.join(layers)}")
    missing = [l for l in layers if l not in spec.taps]
    if missing:
        raise UnknownExpertError(f"expert {spec.id!r} has no layer(s) {', '.join(missing)}; its taps are "
                                 f"{', '.join(spec.taps) or 'none'} (`n2n-hub experts show {spec.id}`)")
    return [str(ExpertAddress(addr.id, layer, addr.variant)) for layer in layers]


def check_figure_path(figure: str | Path | None) -> None:
    """The figure is a PNG; a wrong name fails before anything is trained."""
    if figure is not None and Path(figure).suffix.lower() != ".png":
        raise InputError(f"-o {figure}: the figure is written as PNG; name it '*.png'")


def diagnosis(source: str, addresses: list[str], translators: dict[tuple[str, str], Translator],
              held_out: dict[str, HeldOut], features: FeatureSpace | None = None, *, samples: int | None = None,
              per_condition: int = 8, seed: int = 0) -> Diagnosis:
    """Evaluate the cINN and the MLP of every layer address (``translators[(address, kind)]``) on
    that layer's held-out data, in the order of ``addresses`` and :data:`KINDS`."""
    first = translators[(addresses[0], KINDS[0])]
    result = Diagnosis(str(ExpertAddress.parse(source)), str(first.target_address),
                       [str(ExpertAddress.parse(a).tap) for a in addresses],
                       features.name if features is not None else None)
    for address in addresses:
        for kind in KINDS:
            result.evaluations.append(evaluate_translator(translators[(address, kind)], held_out[address],
                                                          features=features, samples=samples,
                                                          per_condition=per_condition, seed=seed))
    return result


@torch.no_grad()
def draw_figure(translators: dict[tuple[str, str], Translator], held_out: dict[str, HeldOut], addresses: list[str],
                path: Path, inputs: int = 8, cinn_rows: int = 3, seed: int = 0) -> Path:
    """Fig. S4 as one PNG: a column per held-out input; rows: the input, its reconstruction, then
    per layer ``cinn_rows`` cINN samples and the MLP's output."""
    first = translators[(addresses[0], "cinn")]
    pairs = held_out[addresses[0]].test
    n = pairs.source.shape[0]
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=gen)[:min(inputs, n)]
    shape = first.latent_shape
    decode = first.target.decode
    real = target_items(first, held_out[addresses[0]].test_items)
    recon = decode(pairs.target[rows].reshape(-1, *shape)).float().cpu()
    grid: list[tuple[str, torch.Tensor]] = []
    if real is not None:
        grid.append(("input", real[rows % real.shape[0]].float().cpu()))
    grid.append(("reconstruction", recon))
    for address in addresses:
        layer = ExpertAddress.parse(address).tap
        c = held_out[address].test.source[rows]
        for kind in KINDS:
            t = translators[(address, kind)]
            device = next(t.module.parameters()).device
            k = cinn_rows if kind == "cinn" else 1
            g = torch.Generator(device=device).manual_seed(seed + 1)
            z = t.module.sample(c.to(device), n=k, temperature=1.0, generator=g)  # (B, k, D)
            for j in range(k):
                images = decode(z[:, j].reshape(-1, *shape)).float().cpu()
                label = f"{layer}: cINN {j + 1}" if kind == "cinn" else f"{layer}: MLP"
                grid.append((label, images))
    return save_labelled_grid(grid, path)


def save_labelled_grid(rows: list[tuple[str, torch.Tensor]], path: Path, tile: int = 64, pad: int = 2,
                       label_width: int = 120) -> Path:
    """Rows of images ``(N, C, H, W)`` in [-1, 1], each with a text label on the left, as a PNG."""
    from PIL import Image, ImageDraw

    from ..base.atomic import atomic_path
    from ..base.images import to_uint8

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
