"""The animals dataset plugin: data, split, safe unpickling, registration and the classifier."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

from n2n_animals import CLASS_NAMES
from n2n_animals.classifier import classifier_info, classify, test_accuracy as shipped_test_accuracy
from n2n_animals.data import load, split_indices
from n2n_animals.source import load_array
from n2n_hub.errors import CacheError, InputError
from n2n_hub.spec.expert import import_object
from n2n_hub.catalog.host import get_host


def test_splits_have_documented_shapes_ranges_and_sizes():
    train, test = load("train"), load("test")
    assert train["image"].shape == (9000, 1, 32, 32) and test["image"].shape == (1000, 1, 32, 32)
    for d in (train, test):
        assert d["image"].dtype == torch.float32 and d["label"].dtype == torch.int64
        assert d["image"].min() == -1.0 and d["image"].max() == 1.0
        # 2-pixel padding is background, and background is -1 (silhouettes are bright)
        border = torch.cat([d["image"][..., :2, :].flatten(), d["image"][..., -2:, :].flatten(),
                            d["image"][..., :, :2].flatten(), d["image"][..., :, -2:].flatten()])
        assert (border == -1.0).all()
        assert (d["image"] > 0).float().mean() < 0.5  # more background than animal
    assert torch.equal(train["label"].bincount(), torch.full((10,), 900))
    assert torch.equal(test["label"].bincount(), torch.full((10,), 100))


def test_split_is_disjoint_complete_and_reproducible():
    idx = split_indices()
    assert np.intersect1d(idx["train"], idx["test"]).size == 0
    assert np.array_equal(np.union1d(idx["train"], idx["test"]), np.arange(10000))
    split_indices.cache_clear()
    again = split_indices()
    assert np.array_equal(again["test"], idx["test"])


def test_load_returns_copies_the_caller_may_modify():
    a = load("test")
    a["image"].zero_()
    assert load("test")["image"].min() == -1.0


def test_unknown_split_is_an_input_error_naming_the_splits():
    with pytest.raises(InputError, match="train"):
        load("validation")


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_unpickler_refuses_a_pickle_that_would_run_a_command(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(str(marker)))
    with pytest.raises(CacheError, match="refusing to unpickle"):
        load_array(io.BytesIO(payload))
    assert not marker.exists()


def test_unpickler_refuses_anything_but_a_single_array():
    with pytest.raises(CacheError, match="holds a dict, expected a numpy array"):
        load_array(io.BytesIO(pickle.dumps({"a": np.zeros(3)})))
    with pytest.raises(CacheError, match="refusing to unpickle collections.OrderedDict"):
        load_array(io.BytesIO(pickle.dumps(__import__("collections").OrderedDict(a=1))))


def test_unpickler_reads_plain_numpy_arrays():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(load_array(io.BytesIO(pickle.dumps(arr))), arr)


def test_dataset_is_registered_through_the_entry_point():
    spec = get_host().collect().datasets["animals"]
    assert spec.plugin == "animals"
    assert spec.domains == ("image", "label") and spec.image_shape == (1, 32, 32)
    assert spec.class_names == CLASS_NAMES and spec.class_names[9] == "zebra"
    data = import_object(spec.loader)("test")
    assert set(data) == {"image", "label"}


def test_shipped_classifier_names_the_animals_in_the_test_split():
    test = load("test")
    logits = classify(test["image"])
    assert logits.shape == (1000, 10)
    acc = (logits.argmax(1) == test["label"]).float().mean().item()
    assert acc >= 0.95  # the shipped classifier scores 0.99
    assert acc == pytest.approx(shipped_test_accuracy(), abs=1e-3)  # the number it reports is the real one
    assert classifier_info()["parameters"] * 4 < 1_000_000


def test_classifier_accepts_rgb_and_other_sizes_and_rejects_garbage():
    test = load("test")
    x = test["image"][:50]
    gray = classify(x).argmax(1)
    rgb_big = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=64, mode="nearest")
    assert (classify(rgb_big).argmax(1) == gray).float().mean() > 0.8
    with pytest.raises(Exception, match="classify"):
        classify(torch.zeros(2, 32, 32))
