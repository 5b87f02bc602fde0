"""Model diagnosis: a cINN, an MLP and a linear map per layer, one table row per layer, and the Fig. S4 image."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from n2n_hub.errors import InputError, UnknownExpertError


@pytest.mark.slow
def test_diagnose_trains_every_kind_per_layer_and_draws_the_figure(blob_hub, tmp_path, monkeypatch):
    from n2n_hub.evaluation import diagnosis as diagnosis_module
    from n2n_hub.evaluation.similarity import linear_cka
    from n2n_hub.hub import Hub

    fig = tmp_path / "diag.png"
    result = blob_hub.diagnose("segmenter", "tinyae", ["early", "last"], figure=fig, inputs=5, cinn_rows=2,
                               per_condition=3)
    assert result.layers == ["early", "last"] and result.features == "segmenter:middle"
    assert [(e.source, e.kind) for e in result.evaluations] == [
        (f"segmenter:{layer}@animals", kind) for layer in ("early", "last") for kind in ("cinn", "mlp", "linear")]
    for layer in ("early", "last"):
        cinn, mlp, linear = (result.get(layer, kind) for kind in ("cinn", "mlp", "linear"))
        assert cinn.metrics["nll"] is not None and cinn.metrics["diversity_pixels"] > 0
        for baseline in (mlp, linear):
            assert baseline.metrics["mse"] is not None and baseline.metrics["diversity_pixels"] == 0.0
        assert cinn.metrics["fd_features"] is not None and cinn.metrics["consistency_cosine"] is not None
        # the CKA column is linear CKA of the tap and the target latent on the held-out pairs
        address = f"segmenter:{layer}@animals"
        held = blob_hub.held_out(blob_hub.pair(address, "tinyae"))
        assert result.cka[address] == pytest.approx(linear_cka(held.test.source, held.test.target), abs=1e-12)
        assert 0 < result.cka[address] <= 1 and result.seconds[address]["cinn"] > 0
    assert len(blob_hub.cache.entries()) == 6
    with Image.open(fig) as im:
        # rows: input, reconstruction, then per layer 2 cINN samples, the MLP and the linear map; 5 columns
        assert im.size == (120 + 5 * 66 + 2, (2 + 2 * 4) * 66 + 2)
    lines = result.table().splitlines()
    assert lines[1].split()[:5] == ["model", "tap", "CKA", "cINN", "NLL"]
    assert [ln.split()[:2] for ln in lines[2:4]] == [["segmenter@animals", "early"], ["segmenter@animals", "last"]]
    assert lines[-1].startswith("reference: independent real data scores FD latent")

    # every cell is cached: asking again evaluates nothing and gives the same numbers
    measured = []
    real = diagnosis_module.evaluate_translator
    monkeypatch.setattr(diagnosis_module, "evaluate_translator", lambda *a, **k: measured.append(a) or real(*a, **k))
    again = blob_hub.diagnose("segmenter", "tinyae", ["early", "last"], train_if_missing=False, per_condition=3)
    assert measured == [] and again.to_dict()["rows"] == result.to_dict()["rows"]
    # a cell file cut short is reported and measured again, never trusted
    cell = sorted((blob_hub.home / "evaluations").glob("*.json"))[0]
    cell.write_text(cell.read_text()[:40])
    logged = []
    listening = Hub(home=blob_hub.home, host=blob_hub.host, progress=False, log=logged.append)
    third = listening.diagnose("segmenter", "tinyae", ["early", "last"], train_if_missing=False, per_condition=3)
    assert len(measured) == 1 and any("unreadable" in m and cell.name in m for m in logged)
    assert [e.metrics for e in third.evaluations] == [e.metrics for e in result.evaluations]  # seeded
    # another setting is another cell
    listening.diagnose("segmenter", "tinyae", ["last"], train_if_missing=False, per_condition=2)
    assert len(measured) == 4
    # and so are other weights under the same key (`pair --force` keeps the key)
    from n2n_hub.evaluation.cells import cell_key

    t = blob_hub.pair("segmenter:last@animals", "tinyae")
    before = cell_key(t, {"seed": 0})
    with torch.no_grad():
        next(t.module.parameters()).add_(1.0)
    assert cell_key(t, {"seed": 0}) != before and cell_key(t, {"seed": 1}) != cell_key(t, {"seed": 0})
    # a home whose evaluations folder is a file says so in one line
    import shutil

    from n2n_hub.errors import CacheError

    blocked = Hub(home=tmp_path / "blocked", host=blob_hub.host, progress=False, log=lambda m: None)
    blocked.home.mkdir()
    (blocked.home / "evaluations").write_text("not a folder")
    for entry in (blob_hub.home / "translators").iterdir():  # the same translators, so only the cell write fails
        shutil.copytree(entry, blocked.home / "translators" / entry.name)
    with pytest.raises(CacheError, match="must be a writable folder"):
        blocked.diagnose("segmenter", "tinyae", ["last"], train_if_missing=False, per_condition=2, samples=8)


def test_diagnose_refuses_bad_layers(blob_hub, tmp_path):
    with pytest.raises(InputError, match="without a tap"):
        blob_hub.diagnose("segmenter:early", "tinyae")
    with pytest.raises(UnknownExpertError, match="no layer\\(s\\) conv5.*early, middle, last, labels"):
        blob_hub.diagnose("segmenter", "tinyae", ["early", "conv5"])
    with pytest.raises(InputError, match="twice"):
        blob_hub.diagnose("segmenter", "tinyae", ["early", "early"])
    with pytest.raises(InputError, match="PNG"):
        blob_hub.diagnose("segmenter", "tinyae", ["early"], figure=tmp_path / "f.jpg")
    with pytest.raises(InputError, match="does not decode into images"):
        blob_hub.diagnose("segmenter", "segmenter", ["early"], figure=tmp_path / "f.png")


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_diagnose_command_happy_path(blob_host, tmp_path):
    from n2n_hub.cli.commands import cli

    fig = tmp_path / "fig.png"
    runner = CliRunner()
    out = runner.invoke(cli, ["diagnose", "segmenter", "tinyae", "--layers", "middle", "-o", str(fig),
                              "--per-condition", "2", "--steps", "30"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    row = [ln for ln in out.stdout.splitlines() if ln.startswith("segmenter@animals")]
    assert len(row) == 1 and row[0].split()[1] == "middle" and f"wrote {fig}" in out.stdout
    assert "[1/3] segmenter:middle@animals -> tinyae: cINN" in out.stderr  # progress per cell
    assert fig.is_file()
    res = runner.invoke(cli, ["diagnose", "segmenter", "tinyae", "--layers", "middle", "--json", "--no-train",
                              "--per-condition", "2", "--translators", "cinn,linear", "--steps", "30"])
    data = json.loads(res.stdout)
    assert [r["kind"] for r in data["results"]] == ["cinn", "linear"] and data["figure"] is None
    assert data["results"][0]["layer"] == "middle" and "fd_features" in data["results"][0]["metrics"]
    (row,) = data["rows"]
    assert row["model"] == "segmenter@animals" and row["tap"] == "middle" and 0 < row["cka"] <= 1
    assert row["mlp"] is None and row["linear"]["mse"] is not None


def test_diagnose_command_error_paths(toy_cli_host, toy_registry_file):
    from n2n_hub.cli.commands import cli

    runner = CliRunner()
    no_taps = runner.invoke(cli, ["diagnose", "toytext", "toygen"])
    assert no_taps.exit_code == 1 and "has no taps to diagnose" in no_taps.output
    assert "Traceback" not in no_taps.output and len(no_taps.output.strip().splitlines()) == 1
    unknown = runner.invoke(cli, ["diagnose", "segmentr", "toygen"])
    assert unknown.exit_code == 1 and "unknown expert 'segmentr'" in unknown.output
    empty = runner.invoke(cli, ["diagnose", "toytext", "toygen", "--layers", ","])
    assert empty.exit_code == 1 and "no layers to diagnose" in empty.output
    alone = runner.invoke(cli, ["diagnose", "toytext"])
    assert alone.exit_code == 1 and "name at least one SOURCE and then the TARGET" in alone.output
    twice = runner.invoke(cli, ["diagnose", "toytext", "toytext", "toygen"])
    assert twice.exit_code == 1 and "named twice" in twice.output
    kinds = runner.invoke(cli, ["diagnose", "toytext", "toygen", "--translators", "mlp,cinn"])
    assert kinds.exit_code == 1 and "cinn first" in kinds.output
    twice = runner.invoke(cli, ["diagnose", "toytext", "toygen", "--translators", "cinn,mlp,mlp"])
    assert twice.exit_code == 1 and "each once" in twice.output
