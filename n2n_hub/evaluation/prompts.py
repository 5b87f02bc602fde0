"""Does a text → image translator follow prompts as people write them?

A prompt file lists ``class<TAB>kind<TAB>prompt`` rows (``#`` comments and a header row
``class kind prompt`` are skipped; two columns ``class<TAB>prompt`` mean kind ``prompts``).
Every prompt is translated ``n`` times at the pair's default temperature and each sample is
named by a classifier; the score is the share of samples showing the prompted class,
reported per class and kind next to two reference lines:

* ``ceiling``: the same classifier on what the target makes of *real* latents (decoded
  reconstructions of the dataset's test images, or the classes of prior samples): no
  translator can beat it;
* ``centroid``: what the text alone knows: the class whose mean source embedding of the
  bridge's training captions is nearest (cosine) to the prompt's embedding. A translator
  that falls below it loses information the source carries;
* ``probe``: for a translator that reads its condition through a class projection (see
  :mod:`n2n_hub.cinn.projection`), the share of prompts whose largest projected logit is
  the prompted class: what the flow is told, before it samples.

For recipes whose rows are labelled dataset items the held-out likelihood is split in two parts: test images with
the bridge's training phrasings against training images with the same phrasings (the
*image* part), and test images with the file's prompts against test images with
training phrasings (the *phrasing* part), in nats/dim.

Classifiers come from the target: ``Expert.class_scores(z) -> (B, classes)`` over
``target.class_names`` when it has one (BigGAN names the class of ĥ), else the dataset's
``DatasetSpec.classifier`` applied to decoded images.

The translator, its held-out data (a :class:`~n2n_hub.evaluation.metrics.HeldOut`) and the
pair's dataset come in as values; the translator's plan says which bridges wrote its captions.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..spec.components import BridgeContext, DatasetSpec
from ..errors import IncompatiblePairError, InputError
from .metrics import HeldOut, plan_of
from ..spec.expert import ExpertSpec, import_object
from ..spec.kinds import get_kind
from ..data.recipes import apply_bridges, encode_batched

if TYPE_CHECKING:
    from ..catalog.planning import PairPlan
    from ..translators.translator import Translator

KINDS_ORDER = ("names", "sentences", "synonyms")
BATCH = 256


@dataclass(frozen=True)
class Prompt:
    """One held-out prompt: the class it asks for, its kind, and its text."""

    cls: str
    kind: str
    text: str


def read_prompts(path: str | Path) -> list[Prompt]:
    """Rows of a prompt file (see the module docstring); one clear error per malformed line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"prompt file {path} does not exist; give a TSV of class<TAB>kind<TAB>prompt rows")
    rows: list[Prompt] = []
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, cells in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in cells]
            if [c.lower() for c in cells] in (["class", "kind", "prompt"], ["class", "prompt"]):
                continue
            if len(cells) == 2:
                cells = [cells[0], "prompts", cells[1]]
            if len(cells) != 3 or not all(cells):
                raise InputError(f"{path}:{lineno}: expected class<TAB>kind<TAB>prompt (or class<TAB>prompt), "
                                 f"got {len(cells)} field(s): {cells!r}")
            rows.append(Prompt(cells[0], cells[1], cells[2]))
    if not rows:
        raise InputError(f"prompt file {path} holds no prompts; write class<TAB>kind<TAB>prompt rows")
    return rows


def class_index(prompts: list[Prompt], class_names: tuple[str, ...]) -> list[int]:
    """The class id each prompt asks for (names compared case-insensitively)."""
    lookup = {n.lower(): i for i, n in enumerate(class_names)}
    bad = sorted({p.cls for p in prompts if p.cls.lower() not in lookup})
    if bad:
        shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
        raise InputError(f"unknown class(es) {bad} in the prompt file; the target's classes are: {shown}")
    return [lookup[p.cls.lower()] for p in prompts]


@dataclass
class PromptEvaluation:
    """Shares of samples showing the prompted class, per kind and per (class, kind)."""

    source: str
    target: str
    temperature: float
    samples_per_prompt: int
    prompts: int
    classifier: str
    ceiling: float | None
    top1: dict[str, float] = field(default_factory=dict)            # kind -> share
    top5: dict[str, float] = field(default_factory=dict)            # kind -> share (>= 20 classes only)
    centroid: dict[str, float] = field(default_factory=dict)        # kind -> share of prompts
    probe: dict[str, float] = field(default_factory=dict)           # kind -> share of prompts (projection)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> kind -> share
    nll: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        kinds = _ordered(self.top1)
        lines = [f"{self.source} -> {self.target}: {self.prompts} prompts, {self.samples_per_prompt} samples each at "
                 f"temperature {self.temperature:g}; classifier: {self.classifier}",
                 f"  ceiling (real latents): {_fmt(self.ceiling)}",
                 f"  {'kind':<12} {'top-1':>7} {'/ceiling':>9} {'centroid':>9}" + (f" {'probe':>7}" if self.probe else "")
                 + (f" {'top-5':>7}" if self.top5 else "")]
        for k in kinds:
            ratio = self.top1[k] / self.ceiling if self.ceiling else None
            row = f"  {k:<12} {self.top1[k]:>7.3f} {_fmt(ratio):>9} {_fmt(self.centroid.get(k)):>9}"
            row += f" {_fmt(self.probe.get(k)):>7}" if self.probe else ""
            lines.append(row + (f" {self.top5.get(k, float('nan')):>7.3f}" if self.top5 else ""))
        lines.append(f"  per class (top-1): {'':<3}" + " ".join(f"{k[:9]:>9}" for k in kinds))
        for c, by_kind in self.per_class.items():
            lines.append(f"    {c[:20]:<20} " + " ".join(f"{by_kind.get(k, float('nan')):>9.3f}" for k in kinds))
        for key, v in self.nll.items():
            lines.append(f"  {key}: {v:.3f}")
        return "\n".join(lines)


def _ordered(d: dict[str, Any]) -> list[str]:
    return sorted(d, key=lambda k: (KINDS_ORDER.index(k) if k in KINDS_ORDER else len(KINDS_ORDER), k))


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


# -- classifiers --------------------------------------------------------------------------
def latent_classifier(translator: Translator, dataset: DatasetSpec | None
                      ) -> tuple[str, tuple[str, ...], Callable[[torch.Tensor], torch.Tensor]]:
    """(name, class names, latents (B, *latent_shape) -> scores (B, classes)) for the pair's target."""
    target = translator.target
    if hasattr(target, "class_scores") and target.class_names:
        return f"{translator.target_address.id}.class_scores", tuple(target.class_names), target.class_scores
    loader = getattr(dataset, "classifier", None) if dataset is not None else None
    if loader and dataset is not None and dataset.class_names:
        classify = import_object(loader)

        def scores(z: torch.Tensor) -> torch.Tensor:
            out = [classify(target.decode(z[i:i + BATCH].to(target.device)).float().cpu())
                   for i in range(0, z.shape[0], BATCH)]
            return torch.cat(out)

        return loader, tuple(dataset.class_names), scores
    raise IncompatiblePairError(f"no classifier for what {translator.target_address} makes: --prompts needs a "
                                "target with class_scores() or a dataset that registers a classifier")


def _topk_hits(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, scores.shape[1])
    return (scores.topk(k, dim=1).indices == labels[:, None]).any(dim=1).float()


# -- reference lines ----------------------------------------------------------------------
def bridge_captions(plan: PairPlan, class_names: tuple[str, ...] | None, labels: torch.Tensor, split: str,
                    seed: int) -> list[str] | None:
    """Captions the pair's bridge chain writes for ``labels`` (None when the source is not reached from labels)."""
    if plan.start_domain != "label" or not plan.bridges:
        return None
    ctx = BridgeContext(class_names=class_names, split=split, generator=torch.Generator().manual_seed(seed))
    return apply_bridges(plan.bridges, labels, ctx)


def caption_class_names(translator: Translator, dataset: DatasetSpec | None) -> tuple[str, ...] | None:
    """The names the bridges turn labels into: the dataset's classes, else the target's."""
    return dataset.class_names if dataset is not None else translator.target.class_names


def centroid_hits(translator: Translator, dataset: DatasetSpec | None, c_prompts: torch.Tensor,
                  labels: torch.Tensor, num_classes: int, per_class: int = 16, seed: int = 0) -> torch.Tensor | None:
    """Per prompt, 1 if the nearest class centroid of training-caption embeddings is the prompted class."""
    caption_labels = torch.arange(num_classes).repeat_interleave(per_class)
    plan = plan_of(translator)
    captions = bridge_captions(plan, caption_class_names(translator, dataset), caption_labels, "train", seed)
    if captions is None:
        return None
    emb = encode_batched(translator.source, captions, translator.source_address.tap, BATCH, "encoding captions",
                         False)
    emb = emb.reshape(num_classes, per_class, -1).mean(1)
    sims = torch.nn.functional.normalize(c_prompts.reshape(c_prompts.shape[0], -1).float().cpu(), dim=1) @ \
        torch.nn.functional.normalize(emb, dim=1).T
    return (sims.argmax(1) == labels).float()


def probe_hits(module: Any, c_prompts: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """Per prompt, 1 if the translator's class projection puts the prompted class first (None without one)."""
    read = getattr(module, "condition_logits", None)
    logits = read(c_prompts) if callable(read) else None
    if logits is None or logits.shape[1] != num_classes:
        return None
    return (logits.argmax(1).cpu() == labels).float()


def ceiling(translator: Translator, data: HeldOut, scores: Callable[[torch.Tensor], torch.Tensor],
            n: int = 1000, seed: int = 0) -> float | None:
    """The classifier's accuracy on what the target makes of real latents of known class: the
    labelled dataset items behind the rows, else samples of the target's prior."""
    target, shape = translator.target, translator.latent_shape
    if data.test_items is not None:
        if "label" not in data.test_items:
            return None
        labels = torch.as_tensor(data.test_items["label"]).long()
        z = data.test.target[: labels.shape[0]]
    elif target.spec.can_sample:
        prior = target.sample_prior(n, generator=torch.Generator().manual_seed(seed))
        if "label" not in prior.extras:
            return None
        labels = torch.as_tensor(prior.extras["label"]).long().cpu()
        z = prior.latents.reshape(n, -1).float().cpu()
    else:
        return None
    hits = _topk_hits(scores(z.reshape(-1, *shape)), labels, 1)
    return float(hits.mean())


def nll_parts(translator: Translator, data: HeldOut, dataset: DatasetSpec | None, prompts: list[Prompt],
              labels: torch.Tensor, c_prompts: torch.Tensor, seed: int = 0, train_items: int = 1000
              ) -> dict[str, float]:
    """Held-out NLL split into the image part and the phrasing part (rows that are labelled dataset items)."""
    from ..training import evaluate as nll_per_dim

    if data.test_items is None or data.train_items is None or get_kind(translator.kind).objective != "nll":
        return {}
    test, train = data.test_items, data.train_items
    if "label" not in test:
        return {}
    y_test = torch.as_tensor(test["label"]).long()
    z_test = data.test.target[: y_test.shape[0]]
    y_train = torch.as_tensor(train["label"]).long()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(y_train.shape[0], generator=gen)[:train_items]
    z_train = data.train.target[: y_train.shape[0]][pick]
    src, tap = translator.source, translator.source_address.tap

    def encode(texts: list[str]) -> torch.Tensor:
        return encode_batched(src, texts, tap, BATCH, "encoding", False)

    module = translator.module
    out: dict[str, float] = {}
    plan, names = plan_of(translator), caption_class_names(translator, dataset)
    cap_test = bridge_captions(plan, names, y_test, "train", seed + 1)
    cap_train = bridge_captions(plan, names, y_train[pick], "train", seed + 2)
    if cap_test is None or cap_train is None:
        return {}
    nll_train_images = nll_per_dim(module, encode(cap_train), z_train)
    nll_test_images = nll_per_dim(module, encode(cap_test), z_test)
    out["nll_train_images_train_phrasing"] = nll_train_images
    out["nll_test_images_train_phrasing"] = nll_test_images
    out["nll_image_part"] = nll_test_images - nll_train_images
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_kind[p.kind].append(i)
    for kind in _ordered(by_kind):
        rows = torch.tensor(by_kind[kind])
        # each test image gets a random prompt of its own class and this kind
        choices: list[int] = []
        for y in y_test.tolist():
            same = rows[labels[rows] == y]
            if same.numel() == 0:
                break
            choices.append(int(same[torch.randint(same.numel(), (1,), generator=gen)]))
        if len(choices) != y_test.shape[0]:
            continue
        value = nll_per_dim(module, c_prompts[torch.tensor(choices)], z_test)
        out[f"nll_test_images_{kind}"] = value
        out[f"nll_phrasing_part_{kind}"] = value - nll_test_images
    return out


# -- the evaluation -----------------------------------------------------------------------
def check_prompt_source(source: str, spec: ExpertSpec) -> None:
    """Prompts are text: refuse a source that reads anything else (before pairing, which may train)."""
    if spec.input_domain != "text":
        raise IncompatiblePairError(f"--prompts needs a source that reads text; {source} reads "
                                    f"'{spec.input_domain}'")


@torch.no_grad()
def evaluate_prompts(translator: Translator, prompts: list[Prompt], data: HeldOut, *,
                     dataset: DatasetSpec | None = None, n: int = 16, temperature: float | None = None,
                     seed: int = 0) -> PromptEvaluation:
    """Score ``prompts`` (see the module docstring) for one trained translator.

    ``data`` is the pair's held-out data; ``dataset`` the spec of the dataset its registry entry
    names (its classifier and class names), if any.
    """
    if n < 1:
        raise InputError(f"samples per prompt must be at least 1, got {n}")
    name, class_names, scores = latent_classifier(translator, dataset)
    labels = torch.tensor(class_index(prompts, class_names))
    temperature = translator.temperature if temperature is None else temperature
    texts = [p.text for p in prompts]
    c = encode_batched(translator.source, texts, translator.source_address.tap, BATCH, "encoding prompts", False)
    module = translator.module
    device = next(module.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.cat([module.sample(c[i:i + BATCH].to(device), n=n, temperature=temperature, generator=gen).cpu()
                   for i in range(0, c.shape[0], BATCH)])  # (P, n, D)
    s = scores(z.reshape(-1, *translator.latent_shape))
    y = labels.repeat_interleave(n)
    hit1 = _topk_hits(s, y, 1).reshape(-1, n).mean(1)
    hit5 = _topk_hits(s, y, 5).reshape(-1, n).mean(1) if len(class_names) >= 20 else None
    cent = centroid_hits(translator, dataset, c, labels, len(class_names), seed=seed)
    probe = probe_hits(module, c.to(device), labels, len(class_names))

    report = PromptEvaluation(str(translator.source_address), str(translator.target_address), float(temperature), n,
                              len(prompts), name, ceiling(translator, data, scores, seed=seed))
    by_kind: dict[str, list[int]] = defaultdict(list)
    by_class_kind: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_kind[p.kind].append(i)
        by_class_kind[(int(labels[i]), p.kind)].append(i)
    for kind, rows in by_kind.items():
        idx = torch.tensor(rows)
        report.top1[kind] = float(hit1[idx].mean())
        if hit5 is not None:
            report.top5[kind] = float(hit5[idx].mean())
        if cent is not None:
            report.centroid[kind] = float(cent[idx].mean())
        if probe is not None:
            report.probe[kind] = float(probe[idx].mean())
    for (cls, kind), rows in sorted(by_class_kind.items()):
        report.per_class.setdefault(class_names[cls], {})[kind] = float(hit1[torch.tensor(rows)].mean())
    report.nll = nll_parts(translator, data, dataset, prompts, labels, c, seed=seed)
    return report
