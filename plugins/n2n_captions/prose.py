"""Label → text written the way people write: sentences with context, synonyms and
hyponyms, hypernyms, short descriptions, several lengths and registers.

Each class gets a fixed pool of :data:`POOL_SIZE` distinct captions built from
:mod:`n2n_captions.lexicon` by a seeded grammar (the same pool on every machine), and each
label draws one caption from its class's pool. A bounded pool keeps the sentence encoder's
work small (identical texts are encoded once) while giving every item varied phrasings.
The ``eval`` split uses the label-caption bridge's held-out templates, so likelihoods on
held-out phrasings stay comparable across bridges.
"""

from __future__ import annotations

import functools
import random
import zlib
from typing import Callable

import torch

from n2n_hub import BridgeContext
from n2n_hub.kit import InputError

from .lexicon import GENERIC_CONTEXTS, Entry, entry_for
from .templates import EVAL_TEMPLATES, fill

POOL_SIZE = 192

ADJECTIVES = ("young", "big", "small", "old", "adult", "lonely", "calm", "curious", "lively", "sleepy")
SINGLE = ("a {}", "this {}", "that {}", "a single {}", "a lone {}", "a {adj} {}")
PLURAL = ("some {}", "three {}", "a group of {}", "a few {}")
FRAMES = (
    "{np}", "{np} {ctx}", "a photo of {np} {ctx}", "picture of {np}", "{np}, {ctx}", "look, {np}!",
    "there's {np} {ctx}", "i drew {np}", "an image showing {np} {ctx}", "{np} {ctx}, seen from afar",
    "here we have {np}", "just {np} {ctx}",
)


def plural(name: str) -> str:
    """English plural of a class name (good enough for animal names and most ImageNet classes)."""
    if name.endswith(("sheep", "deer", "fish", "moose", "bison")):
        return name
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def _noun_phrase(rng: random.Random, word: str) -> str:
    if rng.random() < 0.2:
        return rng.choice(PLURAL).format(plural(word))
    return fill(rng.choice(SINGLE).format(word, adj=rng.choice(ADJECTIVES)), "")


def _caption(rng: random.Random, name: str, e: Entry) -> str:
    contexts = e.contexts + GENERIC_CONTEXTS
    r = rng.random()
    if r < 0.15 and e.looks:                                   # a short description
        text = rng.choice(e.looks)
        if rng.random() < 0.5:
            text = f"{text} {rng.choice(contexts)}"
    elif r < 0.27 and e.hypernyms:                             # the class as a kind of something
        hyper = rng.choice(e.hypernyms)
        text = rng.choice((f"{fill('a {}', name)}, a kind of {hyper}", f"{fill('a {}', hyper)} called {fill('a {}', name)}",
                           f"{fill('a {}', hyper)}: {fill('a {}', name)} {rng.choice(contexts)}"))
    else:                                                      # the name or a synonym in a frame
        word = rng.choice(e.terms) if e.terms and rng.random() < 0.4 else name
        text = rng.choice(FRAMES).format(np=_noun_phrase(rng, word), ctx=rng.choice(contexts))
    text = " ".join(text.split())
    if rng.random() < 0.3:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.2 and not text.endswith("!"):
        text += "."
    return text


@functools.lru_cache(maxsize=4096)
def caption_pool(name: str, size: int = POOL_SIZE) -> tuple[str, ...]:
    """The fixed pool of distinct training captions for one class name."""
    name = name.lower()
    rng = random.Random(zlib.crc32(name.encode("utf-8")))
    entry = entry_for(name)
    pool: dict[str, None] = {}
    for _ in range(size * 20):
        pool.setdefault(_caption(rng, name, entry))
        if len(pool) >= size:
            break
    return tuple(pool)


def captions_from_labels(labels: torch.Tensor, *, context: BridgeContext) -> list[str]:
    """One caption per label: a random caption of its class's pool (``train``) or a held-out template (``eval``)."""
    if context.class_names is None:
        raise InputError("the label-prose bridge needs class names for the labels")
    names = context.class_names
    return draw_captions(labels, context, names, POOL_SIZE, lambda c: caption_pool(names[c]))


def draw_captions(labels: torch.Tensor, context: BridgeContext, names: tuple[str, ...] | list[str], pool_size: int,
                  pool_of: Callable[[int], list[str]]) -> list[str]:
    """Per label, a caption drawn from ``pool_of(class)`` (``train``) or a held-out template (``eval``).

    The draws come from ``context.generator`` only, so the same labels and seed give the same captions.
    """
    labels = torch.as_tensor(labels).long().view(-1)
    if context.split in ("eval", "test"):
        picks = torch.randint(len(EVAL_TEMPLATES), (labels.numel(),), generator=context.generator)
        return [fill(EVAL_TEMPLATES[int(t)], names[int(c)].lower()) for c, t in zip(labels, picks)]
    if context.split != "train":
        raise InputError(f"unknown caption split {context.split!r}; use 'train' or 'eval'")
    draws = torch.randint(pool_size, (labels.numel(),), generator=context.generator)
    out = []
    for c, d in zip(labels.tolist(), draws.tolist()):
        pool = pool_of(c)
        out.append(pool[d % len(pool)])
    return out
