"""`evaluate --prompts`: scoring prompts as people write them, per class and kind, with reference lines."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from n2n_hub.cli.commands import cli
from n2n_hub.errors import InputError
from n2n_hub.evaluation.prompts import read_prompts

CLASSES = ("circle", "square", "triangle")


def write(path, rows):
    path.write_text("# comment\nclass\tkind\tprompt\n" + "".join(f"{c}\t{k}\t{p}\n" for c, k, p in rows))
    return path


def template_rows(shift: int = 0):
    """Prompts the toy pair was trained on, labelled with the class ``shift`` places further."""
    rows = []
    for i, c in enumerate(CLASSES):
        label = CLASSES[(i + shift) % 3]
        rows += [(label, "names", f"a photo of a {c}"), (label, "names", f"a {c}"),
                 (label, "sentences", f"a picture of a {c}"), (label, "sentences", f"this is a {c}")]
    return rows


def test_prompt_file_rows_comments_header_and_two_column_form(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_text("# held out\nclass\tkind\tprompt\nzebra\tnames\tzebra\n\nCow\tsentences\ta cow in a barn\n")
    rows = read_prompts(p)
    assert [(r.cls, r.kind, r.text) for r in rows] == [("zebra", "names", "zebra"), ("Cow", "sentences", "a cow in a barn")]
    p.write_text("zebra\ta zebra\n")
    assert read_prompts(p)[0].kind == "prompts"


@pytest.mark.parametrize("text, match", [("zebra\tnames\ta\tb\n", r"p.tsv:1: expected class<TAB>kind<TAB>prompt"),
                                         ("# only a comment\n", "holds no prompts"),
                                         ("zebra\t\tzebra\n", "p.tsv:1")])
def test_malformed_prompt_files_name_the_line_and_the_format(tmp_path, text, match):
    p = tmp_path / "p.tsv"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        read_prompts(p)


def test_scores_follow_the_prompted_class_and_fall_when_the_labels_are_wrong(toy_hub, tmp_path):
    right = toy_hub.evaluate_prompts("toytext", "toygen", write(tmp_path / "right.tsv", template_rows()), n=16)
    wrong = toy_hub.evaluate_prompts("toytext", "toygen", write(tmp_path / "wrong.tsv", template_rows(1)), n=16)
    assert right.prompts == 12 and right.samples_per_prompt == 16 and right.classifier == "n2n_toy.experts:classify_shapes"
    assert set(right.top1) == {"names", "sentences"} and set(right.per_class) == set(CLASSES)
    # the toy classes are well separated: decoded real latents are classified almost perfectly
    assert right.ceiling is not None and right.ceiling > 0.95
    for kind in ("names", "sentences"):
        assert right.top1[kind] > 0.8
        assert wrong.top1[kind] < 0.2
        assert right.centroid[kind] > 0.8 and wrong.centroid[kind] < 0.2
        assert math.isclose(right.top1[kind] + 0.0, sum(right.per_class[c][kind] for c in CLASSES) / 3, rel_tol=1e-6)
    assert right.top5 == {}  # three classes: top-5 would always hit
    nll = right.nll
    assert nll["nll_image_part"] == pytest.approx(nll["nll_test_images_train_phrasing"]
                                                  - nll["nll_train_images_train_phrasing"])
    assert nll["nll_phrasing_part_names"] == pytest.approx(nll["nll_test_images_names"]
                                                           - nll["nll_test_images_train_phrasing"])
    # wrong labels pair test images with prompts of another class: far less likely
    assert wrong.nll["nll_test_images_names"] > right.nll["nll_test_images_names"] + 1.0
    assert "ceiling (real latents)" in right.table() and "circle" in right.table()


def test_unknown_class_in_the_file_lists_the_targets_classes(toy_hub, tmp_path):
    p = write(tmp_path / "p.tsv", [("zebra", "names", "zebra")])
    with pytest.raises(InputError, match=r"unknown class\(es\) \['zebra'\].*circle, square, triangle"):
        toy_hub.evaluate_prompts("toytext", "toygen", p, n=2)


def test_cli_evaluate_prompts_prints_json_and_fails_in_one_line(toy_cli_host, toy_registry_file, tmp_path):
    p = write(tmp_path / "p.tsv", template_rows())
    r = CliRunner().invoke(cli, ["evaluate", "toytext", "toygen", "--prompts", str(p), "--per-condition", "4",
                                 "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["samples_per_prompt"] == 4 and out["top1"]["names"] > 0.8
    r = CliRunner().invoke(cli, ["evaluate", "toytext", "toygen", "--prompts", str(tmp_path / "missing.tsv")])
    assert r.exit_code == 1 and "missing.tsv does not exist" in r.output and "Traceback" not in r.output
