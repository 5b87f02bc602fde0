"""Images a user brings are read the same way everywhere, or refused in one line: never clipped in silence."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from n2n_hub.base.inputs import open_image, read_exact_images, read_images
from n2n_hub.errors import InputError


def _save(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path)
    return path


@pytest.mark.parametrize("kind", ["16-bit", "float"])
def test_wide_samples_are_refused_not_clipped(tmp_path, kind):
    if kind == "16-bit":
        path = _save(tmp_path / "deep.png", np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    else:
        path = tmp_path / "float.tiff"
        Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), mode="F").save(path)
    for read in (lambda: read_images([path], (1, 4, 4)), lambda: read_exact_images([path], (1, 4, 4), "toygen")):
        with pytest.raises(InputError, match="8-bit") as err:
            read()
        assert str(path) in str(err.value) and len(str(err.value).splitlines()) == 1


def test_an_image_over_the_pixel_limit_is_one_line_in_every_reader(tmp_path, monkeypatch):
    path = _save(tmp_path / "big.png", np.zeros((64, 64), dtype=np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is then more than twice the limit
    for read in (lambda: read_images([path], (1, 4, 4)), lambda: read_exact_images([path], (1, 64, 64), "x"),
                 lambda: open_image(path.read_bytes())):
        with pytest.raises(InputError, match="more pixels"):
            read()


def test_bytes_and_files_decode_alike(tmp_path):
    path = _save(tmp_path / "ok.png", np.full((4, 4), 255, dtype=np.uint8))
    assert np.array_equal(np.asarray(open_image(path)), np.asarray(open_image(path.read_bytes())))
    assert read_exact_images([path], (1, 4, 4), "x").eq(1).all()
    with pytest.raises(InputError, match="cannot read image the uploaded image"):
        open_image(b"not an image")
