"""Odd arguments and odd files: one line naming the problem and the fix, exit status 1, no work done."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from n2n_hub.cli.commands import cli


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


def one_line_error(out) -> str:
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) <= 3, out.output  # click prints usage lines above a usage error
    return lines[-1]


@pytest.mark.parametrize("args, says", [
    (("-t", "nan"), "--temperature"), (("-t", "inf"), "--temperature"), (("-t", "-1"), "--temperature"),
    (("--lr", "nan"), "--lr"), (("--lr", "inf"), "--lr"), (("--seed", str(2**63)), "--seed"),
    (("-n", "100000"), "--num-samples"), (("-n", "0"), "--num-samples"), (("--steps", "0"), "--steps"),
    (("--device", "tpu"), "--device 'tpu'"), (("--device", "cuda:99"), "cuda:99"),
    (("--device", "banana"), "not a device"), (("--no-such-option",), "No such option"),
])
def test_bad_numbers_devices_and_usage_are_one_line_exit_1_before_any_work(run, tmp_path, args, says):
    out = run("translate", "toytext", "toygen", "a circle", "-o", str(tmp_path / "x.png"), *args)
    assert says in one_line_error(out) or says in out.output
    assert not (tmp_path / "home" / "translators").exists() and not (tmp_path / "x.png").exists()


def test_output_paths_are_checked_before_training(run, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "out.png").mkdir()
    for target, says in ((tmp_path / "out.png", "is a folder"), (afile / "x.png", "is a file, not a folder"),
                         (tmp_path / "nope" / "x.png", "does not exist"),
                         # unwritable even for root: permission bits alone would let this through
                         (Path("/proc/x.png"), "cannot write in the folder")):
        out = run("translate", "toytext", "toygen", "a circle", "-o", str(target))
        assert says in one_line_error(out)
    assert not (tmp_path / "home" / "translators").exists()


def test_empty_prompts_are_refused_before_any_work(run, tmp_path):
    for blank in ("", "   ", "\t\n"):
        out = run("translate", "toytext", "toygen", "a circle", blank, "-o", str(tmp_path / "x.png"))
        assert "input 2 is empty" in one_line_error(out)
    assert not (tmp_path / "home" / "translators").exists() and not (tmp_path / "x.png").exists()


def test_non_utf8_prompts_are_refused_by_name(run, tmp_path):
    bad = b"a \xff\xfe circle".decode("utf-8", "surrogateescape")  # what a shell passes for these bytes
    out = run("translate", "toytext", "toygen", "fine", bad, "-o", str(tmp_path / "x.png"))
    assert "input 2 is not valid UTF-8" in one_line_error(out)


def test_extreme_but_valid_values_work(run, tmp_path):
    out = run("translate", "toytext", "toygen", "a circle", "-o", str(tmp_path / "x.png"), "--steps", "20",
              "--seed", str(2**63 - 1), "-t", "0")
    assert out.exit_code == 0, out.output and (tmp_path / "x.png").is_file()


@pytest.mark.parametrize("table, value, says", [
    ("flow", "n_blocks = 0", "flow.n_blocks must be a finite whole number in [1,"),
    ("flow", "hidden = -3", "flow.hidden"), ("flow", "hidden = 2.5", "flow.hidden must be a whole number"),
    ("flow", "clamp = nan", "flow.clamp must be a finite number"),
    ("training", "lr = 0.0", "training.lr"), ("training", "val_fraction = 1.5", "training.val_fraction"),
])
def test_bad_registry_values_name_the_file_and_the_pair(run, toy_registry_file, table, value, says):
    name = value.split(" = ")[0]
    kept = [ln for ln in toy_registry_file.read_text().splitlines() if not ln.startswith(f"{name} = ")]
    toy_registry_file.write_text("\n".join(kept).replace(f"[pairs.toy-shapes.{table}]",
                                                         f"[pairs.toy-shapes.{table}]\n{value}"))
    line = one_line_error(run("pair", "toytext", "toygen", "--steps", "5"))
    assert str(toy_registry_file) in line and "[pairs.toy-shapes]" in line and says in line


def test_an_image_over_the_pixel_limit_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from n2n_hub.errors import InputError
    from n2n_hub.base.inputs import read_images

    path = tmp_path / "big.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels is then a decompression bomb
    with pytest.raises(InputError, match="more pixels than n2n-hub reads"):
        read_images([path], (1, 16, 16))


def test_an_unexpected_error_is_one_line_with_a_debug_hint_and_debug_shows_it(run, monkeypatch):
    import n2n_hub.hub

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero deep inside")
    monkeypatch.setattr(n2n_hub.hub.Hub, "pairs", broken)
    line = one_line_error(run("pairs"))
    assert "unexpected ZeroDivisionError: division by zero deep inside" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        run("--debug", "pairs")
    assert "unexpected ZeroDivisionError" in one_line_error(run("pairs"))  # --debug held for its own run only


def test_many_samples_decode_in_chunks_and_make_a_grid_a_viewer_opens(run, tmp_path, toy_modules, monkeypatch):
    from PIL import Image

    from n2n_hub.base.images import MAX_COLUMNS
    from n2n_hub.translators.translator import DECODE_CHUNK

    toy = toy_modules[0].experts.ToyGenerator
    sizes: list[int] = []
    real_decode = toy.decode
    monkeypatch.setattr(toy, "decode", lambda self, z: sizes.append(len(z)) or real_decode(self, z))
    assert run("pair", "toytext", "toygen", "--steps", "20").exit_code == 0
    sizes.clear()
    out = run("translate", "toytext", "toygen", "a circle", "a square", "-n", "1000", "-o", str(tmp_path / "many.png"))
    assert out.exit_code == 0, out.output
    assert max(sizes) <= DECODE_CHUNK and sum(sizes) == 2000
    with Image.open(tmp_path / "many.png") as im:
        im.load()  # PIL reopens it without a decompression-bomb error
        width, height = im.size
    tile = 64 + 2
    assert width == MAX_COLUMNS * tile + 2 and height == 2 * 32 * tile + 2  # 1000 samples wrap to 32 rows each


def test_the_python_api_refuses_the_same_values(toy_hub):
    from n2n_hub.errors import InputError

    with pytest.raises(InputError, match="n_blocks must be a finite whole number"):
        toy_hub.pair("toytext", "toygen", steps=10, n_blocks=0)
    with pytest.raises(InputError, match="clamp must be a finite number"):
        toy_hub.pair("toytext", "toygen", steps=10, clamp=float("nan"))
    t = toy_hub.pair("toytext", "toygen", steps=20)
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(InputError, match="temperature must be a finite number"):
            t.translate(["a circle"], n=2, temperature=bad)
    with pytest.raises(InputError, match="seed must be"):
        t.translate(["a circle"], n=2, seed=2**63)
    assert t.translate(["a circle"], n=2, temperature=0.0, seed=2**63 - 1).latents.isfinite().all()


def _commands(group, path=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # plugin commands too, which load when asked for
        cmd = group.get_command(ctx, name)
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + (name,))


def test_every_numeric_option_of_every_command_is_finite_and_bounded():
    """nan, inf and absurd sizes are refused where they enter, for plugin commands too."""
    from n2n_hub.cli.commands import _register_plugin_commands
    from n2n_hub.kit import FiniteFloat

    _register_plugin_commands()
    commands = dict(_commands(cli))
    assert ("train-expert", "vaegan") in commands and ("transfer",) in commands
    loose = []
    for path, cmd in commands.items():
        for p in cmd.params:
            t = p.type
            bounded = isinstance(t, FiniteFloat) or (
                isinstance(t, click.IntRange) and t.min is not None and t.max is not None)
            if not bounded and isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
                loose.append(f"{' '.join(path)} --{p.name}: {t!r}")
    assert loose == []


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_transfer_refuses_a_temperature_that_is_not_finite_before_any_work(run, tmp_path, value):
    out = run("transfer", "toytext", "toygen", str(tmp_path / "x.png"), "-n", "2", "-t", value)
    assert "finite number" in one_line_error(out)
    assert not (tmp_path / "home" / "translators").exists()
