"""Conditioning embedders H (Table S3b): the condition's shape and dtype pick the network."""

from __future__ import annotations

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec, make_embedder
from n2n_hub.cinn.embedders import LabelEmbedder, SpatialEmbedder, VectorEmbedder
from n2n_hub.errors import ShapeError



def test_a_float_vector_gets_an_mlp() -> None:
    spec = ConditionSpec.infer((768,), "float32")
    assert spec == ConditionSpec((768,), "vector")
    h = make_embedder(spec, out_features=32, hidden=64)
    assert isinstance(h, VectorEmbedder)
    assert h(torch.randn(3, 768)).shape == (3, 32)


@pytest.mark.parametrize("shape,downsamplings,final_hw", [
    ((8, 16, 16), 2, (4, 4)),     # 16 → 8 → 4
    ((3, 32, 32), 3, (4, 4)),     # 32 → 16 → 8 → 4
    ((4, 64, 32), 4, (4, 2)),     # the larger side decides: 64 → 4 takes four halvings
    ((2, 5, 7), 1, (3, 4)),       # odd sizes round up: one halving brings 7 under 4·2
    ((6, 4, 4), 1, (2, 2)),       # already small: still one conv (Table S3b has n ≥ 1)
])
def test_a_feature_map_gets_a_strided_conv_stack_down_to_at_most_4x4(
        shape: tuple[int, int, int], downsamplings: int, final_hw: tuple[int, int]) -> None:
    spec = ConditionSpec.infer(shape, torch.float32)
    assert spec.kind == "spatial"
    h = make_embedder(spec, out_features=16, hidden=32)
    assert isinstance(h, SpatialEmbedder)
    assert h.downsamplings == downsamplings
    convs = [m for m in h.convs if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == downsamplings and all(m.stride == (2, 2) for m in convs)
    assert [m.out_channels for m in convs] == [64 * (i + 1) for i in range(downsamplings)]
    x = torch.randn(2, *shape)
    assert h.convs(x).shape[-2:] == final_hw
    assert h(x).shape == (2, 16)


@pytest.mark.parametrize("shape", [(), (1,)])
def test_integer_labels_get_an_embedding_table(shape: tuple[int, ...]) -> None:
    spec = ConditionSpec.infer(shape, torch.int64, num_classes=10)
    assert spec == ConditionSpec((), "label", num_classes=10)
    h = make_embedder(spec, out_features=8, hidden=32)
    assert isinstance(h, LabelEmbedder)
    labels = torch.tensor([0, 3, 9])
    assert h(labels).shape == (3, 8)
    assert torch.equal(h(labels)[1], h.embedding.weight[3])


def test_infer_refuses_shapes_it_cannot_embed() -> None:
    with pytest.raises(ShapeError, match=r"\(4, 5\)"):
        ConditionSpec.infer((4, 5), "float32")
    with pytest.raises(ShapeError, match=r"one label per sample.*\(3,\)"):
        ConditionSpec.infer((3,), "int64", num_classes=4)
    with pytest.raises(ShapeError, match="num_classes"):
        ConditionSpec((), "label")


@pytest.mark.parametrize("spec,bad,pattern", [
    (ConditionSpec((5,), "vector"), torch.randn(3, 4), r"shape \(3, 4\), expected \(B, 5\)"),
    (ConditionSpec((5,), "vector"), torch.randn(3, 5, 1), r"shape \(3, 5, 1\), expected \(B, 5\)"),
    (ConditionSpec((2, 8, 8), "spatial"), torch.randn(3, 2, 8, 4), r"shape \(3, 2, 8, 4\), expected \(B, 2, 8, 8\)"),
    (ConditionSpec((5,), "vector"), torch.zeros(3, 5, dtype=torch.int64), "floating point.*int64"),
    (ConditionSpec((), "label", 4), torch.zeros(3, dtype=torch.float32), "integer class ids.*float32"),
    (ConditionSpec((), "label", 4), torch.zeros(3, 2, dtype=torch.int64), r"shape \(B,\).*\(3, 2\)"),
    (ConditionSpec((), "label", 4), torch.tensor([0, 4]), r"outside \[0, 4\)"),
])
def test_a_wrong_condition_raises_shape_error_naming_expected_and_received(
        spec: ConditionSpec, bad: torch.Tensor, pattern: str) -> None:
    with pytest.raises(ShapeError, match=pattern):
        spec.check(bad)
    flow = ConditionalINN(3, spec, n_blocks=1, hidden=8)
    with pytest.raises(ShapeError, match=pattern):  # the flow's user-facing calls check the same way
        flow.sample(bad)


def test_condition_spec_survives_a_json_round_trip() -> None:
    for spec in (ConditionSpec((5,), "vector"), ConditionSpec((2, 8, 8), "spatial"), ConditionSpec((), "label", 7)):
        assert ConditionSpec.from_dict(spec.to_dict()) == spec
