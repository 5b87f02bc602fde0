"""`transfer` end to end on tiny experts: keep the residual, swap the condition, refuse bad requests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from toy_util import TOY_REGISTRY, TOY_TRANSFER_REGISTRY, toy_domains_plugin

from n2n_hub.errors import IncompatiblePairError, InputError
from n2n_hub.hub import Hub
from n2n_hub.base.inputs import read_exact_images


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory, trained_toy_home):
    """One cache for the module, starting from ``trained_toy_home``: each toy translator is trained once."""
    return Path(shutil.copytree(trained_toy_home, tmp_path_factory.mktemp("transfer") / "home"))


@pytest.fixture
def transfer_hub(toy_host, tmp_path, monkeypatch, shared_home):
    toy_host.register(toy_domains_plugin(), "toydomains")
    reg = tmp_path / "registry.toml"
    reg.write_text(TOY_TRANSFER_REGISTRY)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    return Hub(home=shared_home, host=toy_host, progress=False, log=lambda m: None)


def _shapes():
    from n2n_toy.experts import load_shapes

    return load_shapes("test")


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_unpaired_transfer_moves_exemplars_into_the_new_domain_and_back(transfer_hub):
    data = _shapes()
    x, labels = data["image"][:30], data["label"][:30]
    to_square = transfer_hub.transfer("toydomain", "toygen", x, to="square")
    # the flow finds each exemplar's own domain by likelihood
    inferred = torch.tensor([["circle", "square", "triangle"].index(i["from"]) for i in to_square.info])
    assert (inferred == labels).float().mean() >= 0.9
    # outputs lie in the new domain: toy class k has latent mean k - 1, so square's is 0
    assert to_square.latents.mean().abs() < 0.25
    assert to_square.outputs.shape == x.shape
    # ... and the residual survives the round trip exactly (the flow is invertible)
    names = [i["from"] for i in to_square.info]
    from n2n_hub.translators.transfer import run_transfer

    t = transfer_hub.pair("toydomain", "toygen")
    back = run_transfer(t, "domain", to_square.outputs, to=names, from_="square")
    z = t.target.encode(x)
    ok = (inferred == labels)
    assert torch.allclose(back.latents[ok], z[ok], atol=1e-3)


def test_the_residual_keeps_within_domain_position(transfer_hub):
    """Two circles that differ keep their order after becoming squares (what 'pose kept' means here)."""
    data = _shapes()
    circles = data["image"][data["label"] == 0][:12]
    out = transfer_hub.transfer("toydomain", "toygen", circles, to="square", from_="circle")
    z_in = transfer_hub.load_expert("toygen").encode(circles)
    corr = np.corrcoef(z_in[:, 0].numpy(), out.latents[:, 0].numpy())[0, 1]
    assert corr > 0.8


def test_fresh_samples_are_drawn_only_when_asked_and_are_reproducible(transfer_hub):
    x = _shapes()["image"][:3]
    a = transfer_hub.transfer("toydomain", "toygen", x, to="triangle", n=4, seed=3)
    b = transfer_hub.transfer("toydomain", "toygen", x, to="triangle", n=4, seed=3)
    assert a.resampled.shape == (3, 4, 1, 4, 4) and torch.equal(a.resampled, b.resampled)
    assert transfer_hub.transfer("toydomain", "toygen", x, to="triangle").resampled is None


def test_bad_requests_are_one_clear_line(transfer_hub, tmp_path):
    x = _shapes()["image"][:2]
    with pytest.raises(InputError, match="unknown domain 'hexagon'.*circle, square, triangle"):
        transfer_hub.transfer("toydomain", "toygen", x, to="hexagon")
    with pytest.raises(IncompatiblePairError, match="no notion of --appearance.*--to"):
        transfer_hub.transfer("toydomain", "toygen", x, appearance=x)
    with pytest.raises(IncompatiblePairError, match="recipe 'deformation'.*no notion of --to.*--appearance"):
        transfer_hub.transfer("toygen", "toygen", x, to="square")
    with pytest.raises(InputError, match="needs the new condition: pass --to"):
        transfer_hub.transfer("toydomain", "toygen", x)
    with pytest.raises(InputError, match="2 exemplar.*3 --to domains"):
        transfer_hub.transfer("toydomain", "toygen", x, to=["circle", "square", "triangle"])


def test_image_files_of_the_wrong_size_or_channels_are_refused_not_resized(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(InputError, match="8×8 with 1 channel.*reads 4×4 images with 1 channel"):
        read_exact_images([tmp_path / "big.png"], (1, 4, 4), "toygen")
    with pytest.raises(InputError, match="3 channel"):
        read_exact_images([tmp_path / "rgb.png"], (1, 4, 4), "toygen")
    assert torch.equal(read_exact_images([tmp_path / "ok.png"], (1, 4, 4), "toygen"), torch.ones(1, 1, 4, 4))


def test_appearance_transfer_keeps_the_residual_and_takes_the_new_condition(transfer_hub):
    data = _shapes()
    shape, look = data["image"][:4], data["image"][-4:]
    t = transfer_hub.pair("toygen", "toygen")
    from n2n_hub.translators.transfer import run_transfer

    out = run_transfer(t, "appearance", shape, appearance=look)
    z, c_old, c_new = t.target.encode(shape), t.encode_source(shape), t.encode_source(look)
    v = t.module.residual(z, c_old)
    assert torch.allclose(t.module.residual(out.latents, c_new), v, atol=1e-3)


def test_cli_transfer_writes_the_grid_and_json_facts(transfer_hub, toy_cli_host, tmp_path, monkeypatch, shared_home):
    from n2n_hub.cli.commands import cli

    monkeypatch.setenv("N2N_HUB_HOME", str(shared_home))
    data = _shapes()
    paths = []
    for i in (0, 1):
        arr = ((data["image"][i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"ex{i}.png")
        paths.append(str(tmp_path / f"ex{i}.png"))
    out = tmp_path / "grid.png"
    r = CliRunner().invoke(cli, ["transfer", "toydomain", "toygen", *paths, "--to", "square", "-n", "2",
                                 "--seed", "0", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    facts = json.loads(r.output[r.output.index("{"):])
    assert [f["to"] for f in facts["results"]] == ["square", "square"]
    assert all(f["from_is"] == "inferred" and "residual_norm" in f for f in facts["results"])
    with Image.open(out) as im:  # 2 rows x (exemplar, transfer, 2 samples), 64-pixel tiles, 2-pixel gaps
        assert im.size == (4 * 66 + 2, 2 * 66 + 2)
    r = CliRunner().invoke(cli, ["transfer", "toydomain", "toygen", paths[0], "--to", "hexagon", "-o", str(out)])
    assert r.exit_code == 1 and "unknown domain 'hexagon'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["transfer", "toydomain", "toygen", paths[0], "--appearance", paths[1],
                                 "-o", str(out)])
    assert r.exit_code == 1 and "no notion of --appearance" in r.output



def test_exemplar_guided_transfer_keeps_the_residual_under_a_new_source_condition(toy_host, tmp_path, monkeypatch,
                                                                                 shared_home):
    reg = tmp_path / "registry.toml"
    reg.write_text(TOY_REGISTRY)
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    hub = Hub(home=shared_home, host=toy_host, progress=False, log=lambda m: None)
    x = _shapes()["image"][:2]
    with pytest.raises(InputError, match="reads 'text'.*--from"):
        hub.transfer("toytext", "toygen", x, condition=["a square"])
    with pytest.raises(IncompatiblePairError, match="recipe 'dataset'.*no notion of --to.*--condition"):
        hub.transfer("toytext", "toygen", x, to="square")
    out = hub.transfer("toytext", "toygen", x, condition=["a square"], from_=["a circle", "a circle"])
    t = hub.pair("toytext", "toygen")
    v_old = t.residual(["a circle"] * 2, t.target.encode(x))
    assert torch.allclose(t.residual(["a square"] * 2, out.latents), v_old, atol=1e-3)


def test_cli_transfer_refuses_unreadable_missing_and_wrong_sized_images_in_one_line(transfer_hub, toy_cli_host,
                                                                                      tmp_path, monkeypatch):
    """Each bad exemplar file is named in one line with exit 1, before anything is trained."""
    from n2n_hub.cli.commands import cli

    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path / "empty-home"))
    (tmp_path / "garbage.png").write_bytes(bytes(range(256)) * 8)
    Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(tmp_path / "photo.jpg")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "ok.png")
    cases = [
        ([str(tmp_path / "garbage.png"), "--to", "square"], "cannot read image"),
        ([str(tmp_path / "missing.png"), "--to", "square"], "missing.png does not exist"),
        ([str(tmp_path / "photo.jpg"), "--to", "square"], "640×480 with 3 channel(s); toygen@base reads 4×4 images with 1"),
        ([str(tmp_path / "ok.png"), "--appearance", str(tmp_path / "ok.png")], "no notion of --appearance"),
        ([str(tmp_path / "ok.png"), "--to", "hexagon"], "unknown domain 'hexagon'"),
    ]
    for args, message in cases:
        r = CliRunner().invoke(cli, ["transfer", "toydomain", "toygen", *args, "-o", str(tmp_path / "o.png"),
                                     "--no-train"])
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1, (args, r.output)
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], (args, r.output)
    r = CliRunner().invoke(cli, ["transfer", "toygen", "toygen", str(tmp_path / "ok.png"), "--to", "square",
                                 "-o", str(tmp_path / "o.png"), "--no-train"])
    assert r.exit_code == 1 and "recipe 'deformation') has no notion of --to" in r.output
    assert not (tmp_path / "o.png").exists()
