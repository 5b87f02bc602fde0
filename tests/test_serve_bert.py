"""Seeded answers of a BERT-source pair do not depend on batch-mates, down to the last bit.

The server merges concurrent requests into one source encode. BERT pads a batch to its longest
input, and matrix kernels round by shape, so an embedding could change in its last bits with its
neighbours; the ``bert`` expert therefore encodes fixed blocks of 8 sentences, each padded to a
multiple of 16 tokens. These tests use the packaged all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

import pytest
import torch

from n2n_bert import bert_spec
from n2n_bert.expert import BertExpert

SHORT = ["a zebra", "A photo of a cow in a field", "x"]
LONGER = [
    "a big grey elephant with long tusks walking slowly across the dry savanna at sunset",
    "two zebras drinking from a muddy river while a lion watches them from the tall grass nearby",
    "A man riding skis down a snow covered slope, " * 12,
    "a cat",
    "a dog sleeping on a red sofa in a small flat",
    "an elephant",
    "a horse running on the beach",
    "a bear in the woods",
    "a sheep",
    "three birds on a wire",
]


class Uncached(BertExpert):
    """The expert with its embedding cache emptied before every call: each encode runs the model."""

    def encode(self, inputs, tap=None):
        self._cache.clear()
        return super().encode(inputs, tap)


@pytest.fixture(scope="module")
def minilm() -> BertExpert:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return Uncached(bert_spec(), None)


def test_a_sentence_embeds_bit_identically_alone_and_among_longer_prompts(minilm):
    for i, text in enumerate(SHORT):
        alone = minilm.encode([text])[0]
        for mates in (LONGER[:1], LONGER[:3], LONGER, LONGER[2:] + SHORT):  # 1, 3, 10, 11 others
            at = min(i, len(mates))  # first, middle or last
            together = minilm.encode(mates[:at] + [text] + mates[at:])
            assert torch.equal(together[at], alone), (text, len(mates))


def test_every_row_of_a_merged_batch_equals_its_own_encode(minilm):
    batch = LONGER + SHORT  # 13 sentences: two blocks of 8, the second padded with empty strings
    together = minilm.encode(batch)
    assert together.shape == (13, 384)
    for i, text in enumerate(batch):
        assert torch.equal(together[i], minilm.encode([text])[0]), text
    assert minilm.encode([]).shape == (0, 384)


def test_a_repeated_sentence_comes_from_the_cache_as_the_same_bytes(minilm, monkeypatch):
    cached = BertExpert.__new__(BertExpert)
    cached.__dict__.update(minilm.__dict__)
    cached._cache = type(minilm._cache)()
    first = cached.encode(SHORT + LONGER[:2])
    calls = []
    real = BertExpert._encode_block
    monkeypatch.setattr(BertExpert, "_encode_block", lambda self, texts: calls.append(texts) or real(self, texts))
    again = cached.encode([LONGER[1], SHORT[0], "a new sentence"])
    assert torch.equal(again[0], first[4]) and torch.equal(again[1], first[0])
    assert [t for block in calls for t in block if t] == ["a new sentence"]  # only the new one ran the model
    assert torch.equal(again[2], minilm.encode(["a new sentence"])[0])  # same bytes as the model's
    again[0].fill_(7.0)  # callers may write into what they get
    assert torch.equal(cached.encode([LONGER[1]])[0], first[4])


def test_the_embedding_cache_is_bounded(minilm, monkeypatch):
    import n2n_bert.expert as bert_expert

    cached = BertExpert.__new__(BertExpert)
    cached.__dict__.update(minilm.__dict__)
    cached._cache = type(minilm._cache)()
    monkeypatch.setattr(bert_expert, "CACHE_SIZE", 2)
    cached.encode(SHORT)
    assert len(cached._cache) == 2  # the oldest of three was dropped
