"""The held-out prompt set is held out: nothing the caption bridges write or list contains its prompts."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch

from n2n_animals import CLASS_NAMES
from n2n_captions.lexicon import GENERIC_CONTEXTS, LEXICON
from n2n_captions.prose import POOL_SIZE, caption_pool, captions_from_labels
from n2n_captions.templates import EVAL_TEMPLATES, TRAIN_TEMPLATES, fill
from n2n_hub import BridgeContext
from n2n_hub.evaluation.prompts import read_prompts

PROMPTS = Path(__file__).resolve().parents[1] / "bench" / "prompts" / "animals.tsv"
KINDS = ("names", "sentences", "synonyms")


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def head(text: str) -> str:
    return re.sub(r"^(a|an|the) ", "", norm(text))


def bridge_captions() -> set[str]:
    """Every caption the label-caption and label-prose bridges can write for the animal classes."""
    out = set()
    for name in CLASS_NAMES:
        out |= {norm(fill(t, name)) for t in TRAIN_TEMPLATES + EVAL_TEMPLATES}
        out |= {norm(c) for c in caption_pool(name)}
    return out


def test_the_set_has_ten_prompts_per_class_and_kind():
    rows = read_prompts(PROMPTS)
    counts = Counter((r.cls, r.kind) for r in rows)
    assert set(counts) == {(c, k) for c in CLASS_NAMES for k in KINDS}
    assert min(counts.values()) >= 10
    assert len({r.text for r in rows}) == len(rows)


def test_no_bridge_writes_a_held_out_prompt():
    captions = bridge_captions()
    leaked = [r.text for r in read_prompts(PROMPTS) if norm(r.text) in captions]
    assert leaked == []
    assert len(captions) > 10 * POOL_SIZE * 0.9  # the pools were really enumerated


def test_no_word_list_holds_a_held_out_synonym_or_description():
    listed = set(map(head, GENERIC_CONTEXTS))
    for entry in LEXICON.values():
        listed |= {head(w) for w in entry.terms + entry.hypernyms + entry.looks + entry.contexts}
    rows = [r for r in read_prompts(PROMPTS) if r.kind in ("synonyms", "sentences")]
    assert [r.text for r in rows if head(r.text) in listed] == []


def test_prose_bridge_varies_its_captions_and_keeps_templates_for_evaluation():
    labels = torch.arange(10).repeat(40)
    ctx = BridgeContext(class_names=CLASS_NAMES, split="train", generator=torch.Generator().manual_seed(0))
    train = captions_from_labels(labels, context=ctx)
    assert len(set(train)) > 300
    zebra = [t for t, y in zip(train, labels.tolist()) if y == 9]
    assert all(t in caption_pool("zebra") for t in zebra)
    lengths = [len(t.split()) for t in train]
    assert min(lengths) <= 3 and max(lengths) >= 9
    # synonyms and descriptions without the class name are part of the mix
    assert sum("zebra" not in t.lower() for t in zebra) >= 3
    ctx = BridgeContext(class_names=CLASS_NAMES, split="eval", generator=torch.Generator().manual_seed(0))
    held = captions_from_labels(labels[:20], context=ctx)
    assert all(any(fill(t, CLASS_NAMES[int(y)]) == h for t in EVAL_TEMPLATES) for h, y in zip(held, labels[:20]))


TUNING = PROMPTS.with_name("animals_tuning.tsv")


def test_the_tuning_prompts_are_disjoint_from_the_held_out_ones_and_the_bridges():
    tuning, held_out = read_prompts(TUNING), read_prompts(PROMPTS)
    assert len(tuning) >= 50 and {r.cls for r in tuning} == set(CLASS_NAMES)
    assert {norm(r.text) for r in tuning}.isdisjoint({norm(r.text) for r in held_out})
    assert {head(r.text) for r in tuning}.isdisjoint({head(r.text) for r in held_out})
    assert [r.text for r in tuning if norm(r.text) in bridge_captions()] == []
    listed = set(map(head, GENERIC_CONTEXTS))
    for entry in LEXICON.values():
        listed |= {head(w) for w in entry.terms + entry.hypernyms + entry.looks + entry.contexts}
    assert [r.text for r in tuning if head(r.text) in listed] == []
