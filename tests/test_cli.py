"""Every CLI command: its happy path, and its error path as one clean line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from n2n_hub.cli.commands import cli


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


def test_experts_list_filter_and_json(run):
    out = run("experts")
    assert out.exit_code == 0 and "toytext" in out.output and "toygen" in out.output
    assert "toygen" not in run("experts", "-q", "text").output
    data = json.loads(run("experts", "list", "--json").output)
    assert {d["id"] for d in data} == {"toytext", "toygen", "toypix"}
    assert run("experts", "-q", "zzz").output.strip() == "no experts match"


def test_experts_show_and_unknown_expert(run):
    out = run("experts", "show", "toygen")
    assert out.exit_code == 0 and "prior: N(0, I)" in out.output and "base (default)" in out.output
    bad = run("experts", "show", "toygne")
    assert bad.exit_code == 1
    assert "Error: unknown expert 'toygne'. Did you mean 'toygen'" in bad.output
    assert "Traceback" not in bad.output


def test_plugins_json_reports_hooks(run):
    data = json.loads(run("plugins", "--json").output)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["toy"]["hooks"] == ["register_datasets", "register_experts"]
    assert names["captions"]["hooks"] == ["register_bridges"]


def test_pairs_lists_registry_entries(run):
    out = run("pairs")
    assert out.exit_code == 0 and "toy-shapes" in out.output and "recipe=dataset" in out.output
    assert any(e["name"] == "bert-vaegan-animals" for e in json.loads(run("pairs", "--json").output))


def test_pair_plan_train_and_errors(run):
    plan = run("pair", "toytext", "toygen", "--plan")
    assert "recipe 'dataset'" in plan.output
    out = run("pair", "toytext", "toygen", "--steps", "30")
    assert out.exit_code == 0, out.output
    assert "cinn translator at" in out.output and "held-out NLL" in out.output
    meta = json.loads(run("pair", "toytext", "toygen", "--steps", "30", "--json").output)
    assert meta["source"]["address"] == "toytext@base" and meta["metrics"]["steps"] > 0
    missing = run("pair", "toytext", "toygen", "--steps", "31", "--no-train")
    assert missing.exit_code == 1 and "no cached translator" in missing.output
    impossible = run("pair", "toygen", "toytext")
    assert impossible.exit_code == 1 and "cannot make training pairs" in impossible.output
    assert "no route from toygen@base to toytext@base" in impossible.output  # nor through other experts
    bad_steps = run("pair", "toytext", "toygen", "--steps", "0")
    assert bad_steps.exit_code == 1 and "--steps" in bad_steps.output  # usage errors exit 1 too


def test_translate_writes_png_grid_json_and_latents(run, tmp_path):
    png = tmp_path / "grid.png"
    out = run("translate", "toytext", "toygen", "a circle", "a square", "-n", "3", "--seed", "1", "-o", str(png),
              "--steps", "30")
    assert out.exit_code == 0, out.output
    with Image.open(png) as im:
        assert im.mode == "L" and im.size[0] > im.size[1]  # 3 columns, 2 rows
    latents = tmp_path / "z.safetensors"
    run("translate", "toytext", "toygen", "a circle", "-n", "2", "-o", str(latents), "--steps", "30")
    from safetensors.torch import load_file

    assert load_file(str(latents))["latents"].shape == (1, 2, 4)
    data = json.loads(run("translate", "toytext", "toygen", "a circle", "-n", "2", "--json", "--steps", "30").output)
    assert data["results"][0]["input"] == "a circle" and len(data["results"][0]["samples"]) == 2
    assert data["temperature"] == 1.0  # the toy pair sets none
    cooler = run("translate", "toytext", "toygen", "a circle", "-n", "2", "--json", "--steps", "30", "-t", "0.7")
    assert json.loads(cooler.output)["temperature"] == 0.7


def test_translate_checks_inputs_before_training(run, tmp_path, toy_host):
    from n2n_hub import ExpertSpec, Representation, hookimpl
    import types

    spec = ExpertSpec(id="imgenc", version="1", loader="n2n_toy.experts:ToyGenerator", input_domain="image",
                      representation=Representation((4,)), input_shape=(1, 4, 4))
    toy_host.register(types.SimpleNamespace(register_experts=hookimpl(lambda register: register(spec))), "imgplug")
    out = run("translate", "imgenc", "toygen", str(tmp_path / "missing.png"), "-o", str(tmp_path / "out.png"))
    assert out.exit_code == 1 and "input image" in out.output and "does not exist" in out.output
    assert not (tmp_path / "home" / "translators").exists()  # nothing was trained


def test_translate_error_paths(run, tmp_path):
    bad_ext = run("translate", "toytext", "toygen", "x", "-o", str(tmp_path / "out.jpg"))
    assert bad_ext.exit_code == 1 and "use a .png" in bad_ext.output
    unknown = run("translate", "nope", "toygen", "x")
    assert unknown.exit_code == 1 and "unknown expert 'nope'" in unknown.output
    no_out = run("translate", "toytext", "toygen", "x")
    assert no_out.exit_code == 1 and "pass -o FILE.png" in no_out.output
    assert not (tmp_path / "home" / "translators").exists()  # refused before training
    text_out = run("translate", "toytext", "toygen", "x", "-o", str(tmp_path / "out.txt"), "--steps", "30")
    assert text_out.exit_code == 1 and "produces images; use -o FILE.png" in text_out.output


def test_cache_commands(run, tmp_path):
    assert run("cache", "path").output.strip().endswith("home")
    assert "no cached translators" in run("cache", "list").output
    run("pair", "toytext", "toygen", "--steps", "30")
    entries = json.loads(run("cache", "list", "--json").output)
    assert len(entries) == 1
    ok = run("cache", "verify")
    assert ok.exit_code == 0 and "1 ok, 0 bad" in ok.output
    path = entries[0]["path"]
    with open(path, "r+b") as f:
        f.seek(-2, 2)
        f.write(b"\x00\x01")
    bad = run("cache", "verify")
    assert bad.exit_code == 1 and "BAD" in bad.output and "sha256" in bad.output
    assert run("cache", "rm").exit_code == 1
    missing = run("cache", "rm", "ffff")
    assert missing.exit_code == 1 and "no cached translator matches" in missing.output
    removed = run("cache", "rm", entries[0]["key"][:8])
    assert removed.exit_code == 0 and "removed" in removed.output
    assert json.loads(run("cache", "list", "--json").output) == []


def test_install_and_uninstall_call_pip(run, monkeypatch):
    calls = []
    monkeypatch.setattr("subprocess.call", lambda cmd: calls.append(cmd) or 0)
    assert run("install", "n2n-something").exit_code == 0
    assert calls[-1][1:] == ["-m", "pip", "install", "n2n-something"]
    assert run("uninstall", "-y", "n2n-something").exit_code == 0
    assert calls[-1][-3:] == ["uninstall", "-y", "n2n-something"]
    monkeypatch.setattr("subprocess.call", lambda cmd: 1)
    failed = run("install", "n2n-missing")
    assert failed.exit_code == 1 and "pip exited with status 1" in failed.output
    assert run("uninstall", "n2n-hub").exit_code == 1


# What a user runs to see what is there; none of it may wait for torch (or the experts' libraries).
LISTINGS = {("--help",): "train-expert", ("experts",): "vaegan", ("pairs",): "bert-vaegan-animals",
            ("plugins",): "register_lazy_commands", ("cache", "list"): "toytext", ("train-expert", "--help"): "segmenter"}
HEAVY = ("torch", "transformers", "timm", "torchvision", "segmentation_models_pytorch", "safetensors.torch")
RUN_CLI = """import sys
from n2n_hub.cli import main
sys.argv = ["n2n-hub", *sys.argv[1:]]
try:
    main()
finally:
    print("HEAVY", sorted(m for m in %r if m in sys.modules))
""" % (HEAVY,)


@pytest.mark.slow  # runs the command as a process, as a user does
def test_help_and_listings_import_no_torch_as_a_user_runs_them(toy_hub, monkeypatch):
    toy_hub.pair("toytext", "toygen", steps=20)  # `cache list` has a translator to show
    monkeypatch.delenv("N2N_HUB_REGISTRY")  # the installed plugins and registry, as a user has them
    for args, shows in LISTINGS.items():
        p = subprocess.run([sys.executable, "-c", RUN_CLI, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert shows in p.stdout, (args, p.stdout[-500:])
        assert p.stdout.rstrip().endswith("HEAVY []"), (args, p.stdout.rstrip()[-200:])


@pytest.mark.slow  # runs the command as a process, as a user does
def test_a_cache_root_that_is_a_file_still_lets_help_answer_and_listings_fail_in_one_line(tmp_path, monkeypatch):
    home = tmp_path / "afile"
    home.write_text("not a folder")
    monkeypatch.setenv("N2N_HUB_HOME", str(home))
    helped = subprocess.run([sys.executable, "-m", "n2n_hub", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "train-expert" in helped.stdout
    listed = subprocess.run([sys.executable, "-m", "n2n_hub", "experts"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert listed.stderr.strip().splitlines() == [f"Error: the cache folder {home} is a file, not a folder; point "
                                                  "N2N_HUB_HOME at a folder (or move that file away)"]
