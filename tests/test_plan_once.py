"""A request is planned once: faces make a plan and hand it on; the hub never plans it again."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from n2n_hub.errors import InputError


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_pair_takes_a_plan_and_does_not_plan_again(toy_hub, plan_count):
    plan = toy_hub.plan("toytext", "toygen")
    assert len(plan_count) == 1
    t = toy_hub.pair(plan)
    assert len(plan_count) == 1
    assert t.plan is plan
    # the same translator as pairing by name
    assert toy_hub.pair("toytext", "toygen").path == t.path


def test_a_plan_carries_its_own_settings(toy_hub):
    plan = toy_hub.plan("toytext", "toygen")
    with pytest.raises(InputError, match="plan"):
        toy_hub.pair(plan, "toygen")
    with pytest.raises(InputError, match="plan"):
        toy_hub.pair(plan, translator="mlp")
    with pytest.raises(InputError, match="target"):
        toy_hub.pair("toytext")


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_cli_translate_plans_once(toy_cli_host, toy_registry_file, plan_count, tmp_path):
    from n2n_hub.cli.commands import cli

    CliRunner().invoke(cli, ["pair", "toytext", "toygen"], catch_exceptions=False)
    plan_count.clear()
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["translate", "toytext", "toygen", "a circle", "-n", "2", "--seed", "0",
                                      "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert len(plan_count) == 1


SELF_REGISTRY = """
[pairs.toy-self]
source = "toygen"
target = "toygen"
recipe = "deformation"
dataset = "toyshapes"
[pairs.toy-self.flow]
n_blocks = 2
hidden = 16
[pairs.toy-self.training]
steps = 40
batch_size = 64
val_every = 20
"""


@pytest.fixture
def image_hub(toy_host, tmp_path, monkeypatch):
    from n2n_hub.hub import Hub

    reg = tmp_path / "self.toml"
    reg.write_text(SELF_REGISTRY)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    return Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)


def _image_folder(tmp_path, n=3):
    from n2n_toy.experts import load_shapes

    images = load_shapes("test")["image"][:n]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(images):
        arr = ((im[0].numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(arr, mode="L").save(folder / f"{i}.png")
    return folder


def test_hub_translate_and_transfer_read_image_files_like_the_cli(image_hub, tmp_path, plan_count):
    """The Python API takes image paths and folders, as the command line does, planning each call once."""
    folder = _image_folder(tmp_path)
    from_files = image_hub.translate("toygen", "toygen", [str(folder / "0.png"), folder / "1.png"], n=2, seed=0)
    assert len(plan_count) == 1
    from_folder = image_hub.translate("toygen", "toygen", folder, n=2, seed=0)
    assert from_files.latents.shape[:2] == (2, 2)
    assert from_folder.latents.shape[:2] == (3, 2)
    assert from_files.inputs.equal(from_folder.inputs[:2])  # a folder is its files, in name order
    translator = image_hub.pair("toygen", "toygen")
    assert translator.translate([folder / "0.png", folder / "1.png"], n=2, seed=0).latents.equal(from_files.latents)
    with pytest.raises(InputError, match="does not exist"):
        image_hub.translate("toygen", "toygen", [tmp_path / "missing.png"], n=1)

    plan_count.clear()
    moved = image_hub.transfer("toygen", "toygen", [folder / "0.png", folder / "1.png"],
                               appearance=[folder / "2.png"])
    assert len(plan_count) == 1
    assert moved.outputs.shape == (2, 1, 4, 4)
    with pytest.raises(InputError, match="folder"):
        image_hub.transfer("toygen", "toygen", folder, appearance=[folder / "2.png"])


def test_cli_transfer_plans_once(image_hub, toy_cli_host, plan_count, tmp_path):
    from n2n_hub.cli.commands import cli

    folder = _image_folder(tmp_path)
    out = tmp_path / "moved.png"
    result = CliRunner().invoke(cli, ["transfer", "toygen", "toygen", str(folder / "0.png"), "--appearance",
                                      str(folder / "1.png"), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert len(plan_count) == 1



def test_translate_names_image_inputs_by_file_says_what_it_converted_and_shows_the_inputs(image_hub, toy_cli_host,
                                                                                           tmp_path):
    import json

    from n2n_hub.cli.commands import cli

    folder = _image_folder(tmp_path, n=2)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8), mode="RGB").save(tmp_path / "big.png")
    out = tmp_path / "grid.png"
    args = ["translate", "toygen", "toygen", str(folder), str(tmp_path / "big.png"), "-n", "3", "--seed", "0"]
    result = CliRunner().invoke(cli, args + ["-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    stdout = result.stdout
    rows = json.loads(stdout[stdout.index("{"):])["results"]
    assert [r["input"] for r in rows] == [str(folder / "0.png"), str(folder / "1.png"), str(tmp_path / "big.png")]
    assert "big.png is 8×8 RGB; toygen@base reads 4×4 grey images, so it was converted and resized" in result.stderr
    with Image.open(out) as im:  # three rows of four tiles: each input, then its three samples
        assert round(3 * im.width / im.height) == 4


@pytest.mark.parametrize("style", ["repeated", "commas"])
def test_transfer_takes_one_appearance_per_exemplar_repeated_or_comma_separated(image_hub, toy_cli_host, tmp_path,
                                                                                 style):
    import json

    from n2n_hub.cli.commands import cli

    folder = _image_folder(tmp_path, n=3)
    looks = [str(folder / "1.png"), str(folder / "2.png")]
    given = ["--appearance", looks[0], "--appearance", looks[1]] if style == "repeated" else \
        ["--appearance", ",".join(looks)]
    result = CliRunner().invoke(cli, ["transfer", "toygen", "toygen", str(folder / "0.png"), str(folder / "1.png"),
                                      *given, "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout[result.stdout.index("{"):])["results"]) == 2


@pytest.mark.parametrize("where", ["a folder", "a missing folder", "/proc"])
def test_transfer_refuses_an_output_it_cannot_write_before_any_work(image_hub, toy_cli_host, tmp_path, where,
                                                                    plan_count):
    from n2n_hub.cli.commands import cli

    folder = _image_folder(tmp_path, n=2)
    (tmp_path / "dir.png").mkdir()
    out = {"a folder": tmp_path / "dir.png", "a missing folder": tmp_path / "nowhere" / "x.png",
           "/proc": "/proc/x.png"}[where]
    result = CliRunner().invoke(cli, ["transfer", "toygen", "toygen", str(folder / "0.png"), "--appearance",
                                      str(folder / "1.png"), "-o", str(out)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert plan_count == []  # refused before the pair was even planned
