"""The deformation d = flip + thin-plate-spline warp + crop (kornia's TPS) against its definition."""

from __future__ import annotations

import pytest
import torch

from n2n_hub.data.deform import Deformation, control_grid, deform, tps_warp

N = 129


def _pix(v: float) -> float:
    return ((v + 1) * N - 1) / 2  # align_corners=False


def _bump_at(x: float, y: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(N * 1.0), torch.arange(N * 1.0), indexing="ij")
    return (torch.exp(-((yy - _pix(y)) ** 2 + (xx - _pix(x)) ** 2) / 4) * 2 - 1)[None, None]


@pytest.mark.parametrize("seed", [0, 1])
def test_content_at_each_control_point_lands_on_its_destination(seed):
    g = torch.Generator().manual_seed(seed)
    src = control_grid(3, 1)
    dst = src + torch.randn(src.shape, generator=g) * 0.1
    for j in range(9):
        out = tps_warp(_bump_at(*src[0, j].tolist()), src, dst)
        row, col = divmod(int(out[0, 0].argmax()), N)
        assert abs(row - _pix(dst[0, j, 1].item())) <= 1 and abs(col - _pix(dst[0, j, 0].item())) <= 1


def test_the_identity_warp_changes_nothing():
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    src = control_grid(3, 2)
    assert torch.allclose(tps_warp(x, src, src.clone()), x, atol=1e-5)


def test_strength_zero_only_flips_and_strength_is_bounded():
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(deform(x, Deformation(strength=0, flip=0), g), x, atol=1e-6)
    assert torch.equal(deform(x, Deformation(strength=0, flip=1), g), x.flip(-1))
    with pytest.raises(ValueError, match="strength"):
        Deformation(strength=3)


def test_warp_pulls_in_background_not_zero_and_stronger_means_further():
    x = torch.full((8, 1, 32, 32), -1.0)
    x[:, :, 10:22, 10:22] = 1.0
    out = deform(x, Deformation(strength=1, flip=0), torch.Generator().manual_seed(0))
    assert out[:, :, 0, :].max() < -0.99  # the border stays background
    dists = [(deform(x, Deformation(strength=s, flip=0), torch.Generator().manual_seed(1)) - x).abs().mean().item()
             for s in (0.25, 1.0)]
    assert dists[0] < dists[1]
