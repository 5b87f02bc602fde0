"""Model diagnosis: one cINN and one MLP per layer, a metric table, and the Fig. S4 image."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from n2n_hub.errors import InputError, UnknownExpertError


@pytest.mark.slow
def test_diagnose_trains_both_kinds_per_layer_and_draws_the_figure(blob_hub, tmp_path):
    fig = tmp_path / "diag.png"
    result = blob_hub.diagnose("segmenter", "tinyae", ["early", "last"], figure=fig, inputs=5, cinn_rows=2,
                      per_condition=3)
    assert result.layers == ["early", "last"] and result.features == "segmenter:middle"
    assert [(e.source, e.kind) for e in result.evaluations] == [
        ("segmenter:early@animals", "cinn"), ("segmenter:early@animals", "mlp"),
        ("segmenter:last@animals", "cinn"), ("segmenter:last@animals", "mlp")]
    for layer in ("early", "last"):
        cinn, mlp = result.get(layer, "cinn"), result.get(layer, "mlp")
        assert cinn.metrics["nll"] is not None and cinn.metrics["diversity_pixels"] > 0
        assert mlp.metrics["mse"] is not None and mlp.metrics["diversity_pixels"] == 0.0
        assert cinn.metrics["fd_features"] is not None and cinn.metrics["consistency_cosine"] is not None
    assert len(blob_hub.cache.entries()) == 4
    with Image.open(fig) as im:
        # rows: input, reconstruction, then per layer 2 cINN samples + 1 MLP; 5 columns of 64-px tiles
        assert im.size == (120 + 5 * 66 + 2, (2 + 2 * 3) * 66 + 2)
    table = result.table()
    assert table.splitlines()[1].split()[:4] == ["layer", "translator", "NLL", "MSE"]
    assert len(table.splitlines()) == 2 + 4 + 1
    assert table.splitlines()[-1].startswith("reference: independent real data scores FD latent")
    again = blob_hub.diagnose("segmenter", "tinyae", ["early", "last"], train_if_missing=False, per_condition=3)
    assert again.to_dict()["results"][0]["metrics"] == result.to_dict()["results"][0]["metrics"]  # cached, seeded


def test_diagnose_refuses_bad_layers(blob_hub, tmp_path):
    with pytest.raises(InputError, match="without a tap"):
        blob_hub.diagnose("segmenter:early", "tinyae")
    with pytest.raises(UnknownExpertError, match="no layer\\(s\\) conv5.*early, middle, last, labels"):
        blob_hub.diagnose("segmenter", "tinyae", ["early", "conv5"])
    with pytest.raises(InputError, match="twice"):
        blob_hub.diagnose("segmenter", "tinyae", ["early", "early"])
    with pytest.raises(InputError, match="PNG"):
        blob_hub.diagnose("segmenter", "tinyae", ["early"], figure=tmp_path / "f.jpg")


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_diagnose_command_happy_path(blob_host, tmp_path):
    from n2n_hub.cli.commands import cli

    fig = tmp_path / "fig.png"
    runner = CliRunner()
    out = runner.invoke(cli, ["diagnose", "segmenter", "tinyae", "--layers", "middle", "-o", str(fig),
                              "--per-condition", "2"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "middle  cinn" in out.output and "middle  mlp" in out.output and f"wrote {fig}" in out.output
    assert fig.is_file()
    data = json.loads(runner.invoke(cli, ["diagnose", "segmenter", "tinyae", "--layers", "middle", "--json",
                                          "--no-train", "--per-condition", "2"]).output)
    assert [r["kind"] for r in data["results"]] == ["cinn", "mlp"] and data["figure"] is None
    assert data["results"][0]["layer"] == "middle" and "fd_features" in data["results"][0]["metrics"]


def test_diagnose_command_error_paths(toy_cli_host, toy_registry_file):
    from n2n_hub.cli.commands import cli

    runner = CliRunner()
    no_taps = runner.invoke(cli, ["diagnose", "toytext", "toygen"])
    assert no_taps.exit_code == 1 and "has no layer(s) early, middle, last" in no_taps.output
    assert "Traceback" not in no_taps.output and len(no_taps.output.strip().splitlines()) == 1
    unknown = runner.invoke(cli, ["diagnose", "segmentr", "toygen"])
    assert unknown.exit_code == 1 and "unknown expert 'segmentr'" in unknown.output
    empty = runner.invoke(cli, ["diagnose", "toytext", "toygen", "--layers", ","])
    assert empty.exit_code == 1 and "no layers to diagnose" in empty.output
