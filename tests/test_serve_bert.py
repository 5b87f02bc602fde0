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

pytestmark = pytest.mark.slow  # runs MiniLM on dozens of batches

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


@pytest.fixture(scope="module")
def minilm() -> BertExpert:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return BertExpert(bert_spec(), None)


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
