"""Label → text for the 1000 ImageNet classes, from their WordNet synonym sets and glosses.

timm ships, for every ImageNet-1k class, its WordNet synset's lemmas ("great white shark,
white shark, man-eater, man-eating shark, Carcharodon carcharias") and its gloss ("large
aggressive shark widespread in warm seas; known to attack humans"); they install with the
package and need no download (the files behind ``timm.data.ImageNetInfo``). Each class becomes an
:class:`~n2n_captions.lexicon.Entry`: the lemmas are its terms, the gloss, cut at its
clauses, its short descriptions (Latin binomials are left out: people do not write them);
the label-prose grammar then writes a fixed pool of
captions per class (:func:`caption_pools`).

One English lemma per class, where it has one, is held out (:func:`held_out_lemmas`): no training caption uses
it, so ``bench/prompts/imagenet.tsv`` can score synonyms the translator never read. The
``eval`` split uses the label-caption bridge's held-out templates, as label-prose does.
"""

from __future__ import annotations

import functools
import importlib.util
import random
import re
import zlib
from pathlib import Path

import torch

from n2n_hub import BridgeContext
from n2n_hub.kit import InputError

from .lexicon import GENERIC_CONTEXTS, Entry
from .prose import ADJECTIVES, FRAMES, PLURAL, SINGLE, _caption, draw_captions, plural
from .templates import fill

POOL_SIZE = 64
NUM_CLASSES = 1000
_LATIN = re.compile(r"^[A-Z][a-z]+ [a-z]+$")  # a binomial such as "Tinca tinca"
_LATIN_CAPITALISED = {"ursus maritimus"}  # the one binomial WordNet writes in title case


def _timm_info(name: str) -> str:
    """One of the ImageNet files timm ships in ``timm/data/_info`` (found without importing timm, which is slow)."""
    spec = importlib.util.find_spec("timm")
    folder = Path(spec.origin).parent / "data" / "_info" if spec is not None and spec.origin else None
    if folder is None or not (folder / name).is_file():
        raise InputError(f"the label-wordnet bridge reads timm's ImageNet synsets ({name}), which are not installed "
                         "here; reinstall n2n-hub's dependencies (`pip install timm`)")
    return (folder / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def synsets() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Per ImageNet class id: (lemmas, gloss), from the files timm ships (what ``timm.data.ImageNetInfo`` reads)."""
    ids = _timm_info("imagenet_synsets.txt").split()
    lemmas = dict(line.split("\t", 1) for line in _timm_info("imagenet_synset_to_lemma.txt").splitlines() if line)
    glosses = dict(line.split("\t", 1) for line in _timm_info("imagenet_synset_to_definition.txt").splitlines() if line)
    return tuple((tuple(x.strip() for x in lemmas[i].split(",") if x.strip()), glosses[i].strip()) for i in ids)


def _english(lemma: str) -> bool:
    return not _LATIN.match(lemma) and lemma.lower() not in _LATIN_CAPITALISED


def _pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(phrase)}(e?s)?\b")


@functools.lru_cache(maxsize=4)
def held_out_lemmas(names: tuple[str, ...]) -> tuple[str | None, ...]:
    """Per class, the lemma kept out of every training caption, or None.

    A class's last English lemma that is not its name and occurs nowhere else in what
    captions are written from: no class name, lemma (or their plurals) or gloss of any class
    and no word of the grammar contains it (so "white shark" is not held out: "great white shark" contains it;
    "man-eating shark" is).
    """
    table = synsets()
    grammar = [*FRAMES, *SINGLE, *PLURAL, *ADJECTIVES, *GENERIC_CONTEXTS]
    words = [*names, *(x for ls, _ in table for x in ls)]
    corpus = "\n".join([*words, *(plural(w.lower()) for w in words), *(g for _, g in table), *grammar]).lower()
    out: list[str | None] = []
    for i, (lemmas, _) in enumerate(table):
        pick = None
        for lemma in reversed(lemmas):
            low = lemma.lower()
            if low == names[i].lower() or not _english(lemma):
                continue
            pattern = _pattern(low)  # no occurrence but its own (the lemma and its plural)
            if len(pattern.findall(corpus)) == len(pattern.findall(f"{low}\n{plural(low)}")):
                pick = low
                break
        out.append(pick)
    return tuple(out)


def _with_article(phrase: str) -> str:
    """'a'/'an' before a noun phrase unless it starts with a determiner already ("any of several ...")."""
    first = phrase.split(" ", 1)[0]
    return phrase if first in ("a", "an", "the", "any", "one", "some", "either", "two") else fill("a {}", phrase)


def _descriptions(gloss: str) -> tuple[str, ...]:
    """Short descriptions from a gloss: its first clause with an article, and the whole of it."""
    gloss = gloss.lower()
    first = re.split(r";|\(", gloss)[0].strip().rstrip(",")
    out = [_with_article(first)] if first else []
    if gloss and gloss != first:
        out.append(_with_article(gloss.replace(";", ",")))
    return tuple(out)


def entry(class_id: int, names: tuple[str, ...]) -> Entry:
    """Class ``class_id``'s lemmas (minus its held-out one, its name and Latin names) and gloss as a lexicon entry."""
    lemmas, gloss = synsets()[class_id]
    skip = (names[class_id].lower(), held_out_lemmas(names)[class_id])
    terms = tuple(dict.fromkeys(x.lower() for x in lemmas if _english(x) and x.lower() not in skip))
    return Entry(terms=terms, looks=_descriptions(gloss))


@functools.lru_cache(maxsize=4)
def caption_pools(names: tuple[str, ...], size: int = POOL_SIZE) -> tuple[tuple[str, ...], ...]:
    """Per class, its fixed pool of distinct training captions (each seeded by the class name)."""
    pools = []
    for class_id, name in enumerate(names):
        rng = random.Random(zlib.crc32(f"wordnet:{name.lower()}".encode("utf-8")))
        e = entry(class_id, names)
        pool: dict[str, None] = {}
        for _ in range(size * 20):
            pool.setdefault(_caption(rng, name.lower(), e))
            if len(pool) >= size:
                break
        pools.append(tuple(pool))
    return tuple(pools)


def captions_from_labels(labels: torch.Tensor, *, context: BridgeContext) -> list[str]:
    """One caption per ImageNet label: a random caption of its class's pool (``train``) or a held-out template (``eval``)."""
    names = context.class_names
    if names is None or len(names) != NUM_CLASSES:
        raise InputError("the label-wordnet bridge writes about the 1000 ImageNet classes (BigGAN's); this "
                         f"target has {len(names) if names else 'no'} class names: use label-prose or label-caption")
    names = tuple(names)
    pools = caption_pools(names)
    return draw_captions(labels, context, names, POOL_SIZE, lambda c: pools[c])
