"""label-wordnet: ImageNet captions from WordNet synsets and glosses, with one lemma per class held out."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from n2n_biggan import imagenet_class_names
from n2n_captions.templates import EVAL_TEMPLATES, fill
from n2n_captions.wordnet import POOL_SIZE, caption_pools, captions_from_labels, entry, held_out_lemmas, synsets
from n2n_hub import BridgeContext
from n2n_hub.kit import InputError
from n2n_hub.evaluation.prompts import read_prompts

PROMPTS = Path(__file__).resolve().parents[1] / "bench" / "prompts" / "imagenet.tsv"
NAMES = imagenet_class_names()


def held_out_lemma(class_id: int) -> str | None:
    return held_out_lemmas(NAMES)[class_id]


def caption_pool(class_id: int) -> tuple[str, ...]:
    return caption_pools(NAMES)[class_id]


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' -]+", " ", text.lower()).split())


def test_every_imagenet_class_has_lemmas_and_a_gloss_offline():
    table = synsets()
    assert len(table) == 1000
    assert all(lemmas and gloss for lemmas, gloss in table)
    assert table[2][0][0] == "great white shark" and "shark" in table[2][1]


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_captions_use_synonyms_and_glosses_but_not_latin_names():
    e = entry(2, NAMES)  # great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias
    assert "white shark" in e.terms and not any("carcharodon" in t for t in e.terms)
    assert e.looks[0] == "a large aggressive shark widespread in warm seas"
    pool = caption_pool(2)
    assert len(pool) == POOL_SIZE == len(set(pool))
    assert any("white shark" in c and "great" not in c for c in pool)
    assert any("aggressive shark" in c for c in pool)


def test_the_held_out_lemma_is_in_no_word_the_captions_are_written_from():
    assert held_out_lemma(2) == "man-eating shark"  # not "white shark": the name contains it
    assert held_out_lemma(0) is None  # tench: only a Latin name besides its own
    assert held_out_lemma(296) == "polar bear"  # ice bear, polar bear, Ursus Maritimus, Thalarctos maritimus
    assert "man-eating shark" not in entry(2, NAMES).terms


def test_no_training_caption_contains_a_held_out_lemma_of_the_prompt_file():
    rows = read_prompts(PROMPTS)
    held = {held_out_lemma(NAMES.index(r.cls)) for r in rows if r.kind == "synonyms"}
    assert None not in held and len(held) == 100
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, held), key=len, reverse=True)) + r")\b")
    leaked = [c for i in range(1000) for c in caption_pool(i) if pattern.search(norm(c))]
    assert leaked == []


def test_the_prompt_file_is_held_out_and_covers_100_classes_in_three_kinds():
    rows = read_prompts(PROMPTS)
    counts = Counter((r.cls, r.kind) for r in rows)
    assert len({r.cls for r in rows}) == 100 and set(k for _, k in counts) == {"names", "sentences", "synonyms"}
    assert min(counts.values()) == 3 and len({r.text for r in rows}) == len(rows)
    for r in rows:
        if r.kind == "synonyms":
            assert held_out_lemma(NAMES.index(r.cls)) in r.text
    captions = {norm(c) for i in range(1000) for c in caption_pool(i)}
    captions |= {norm(fill(t, n.lower())) for t in EVAL_TEMPLATES for n in NAMES}
    assert [r.text for r in rows if norm(r.text) in captions] == []


def test_bridge_writes_one_caption_per_label_from_its_pool_or_a_held_out_template():
    labels = torch.tensor([2, 2, 340, 0])
    train = captions_from_labels(labels, context=BridgeContext(class_names=NAMES, split="train",
                                                               generator=torch.Generator().manual_seed(0)))
    assert len(train) == 4 and all(c in caption_pool(int(y)) for c, y in zip(train, labels))
    again = captions_from_labels(labels, context=BridgeContext(class_names=NAMES, split="train",
                                                               generator=torch.Generator().manual_seed(0)))
    assert again == train
    evals = captions_from_labels(labels, context=BridgeContext(class_names=NAMES, split="eval",
                                                               generator=torch.Generator().manual_seed(0)))
    assert all(any(c == fill(t, NAMES[int(y)].lower()) for t in EVAL_TEMPLATES) for c, y in zip(evals, labels))


def test_bridge_refuses_classes_that_are_not_imagenet():
    with pytest.raises(InputError, match="1000 ImageNet classes"):
        captions_from_labels(torch.tensor([0]), context=BridgeContext(class_names=("cat", "dog"), split="train"))


def test_the_bridge_is_registered_from_label_to_text():
    from n2n_hub import Hub

    bridge = {b.id: b for b in Hub(progress=False).bridges()}["label-wordnet"]
    assert (bridge.from_domain, bridge.to_domain) == ("label", "text")


def test_bert_to_biggan_is_trained_on_wordnet_captions():
    from n2n_hub import Hub

    plan = Hub(progress=False).plan("bert", "biggan")
    assert plan.recipe == "target-prior" and [b.id for b in plan.bridges] == ["label-wordnet"]
