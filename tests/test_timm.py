"""The timm expert: any timm model by its address, its taps and shapes known before weights load,
weights from the Hugging Face cache, a folder or the hub's experts dir, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from blob_plugin import BLOB_CLASSES, install_blob_host, load_blobs

from n2n_hub import ExpertSpec, Representation, hookimpl
from n2n_hub.errors import InputError, OfflineError, ShapeError, UnknownExpertError

REGISTRY = """
[pairs.timm-tinyae]
source = "timm"
target = "tinyae"
recipe = "dataset"
dataset = "blobs"

[pairs.timm-tinyae.training]
steps = 4

[pairs.timm-pooled-tinyae]
source = "timm:pooled"
target = "tinyae"
recipe = "dataset"
dataset = "blobs"

[pairs.timm-pooled-tinyae.flow]
n_blocks = 2
hidden = 16
depth = 1

[pairs.timm-pooled-tinyae.training]
steps = 6
batch_size = 32
val_every = 3
warmup_steps = 1
"""


@pytest.fixture
def timm_host(monkeypatch, tmp_path):
    """The real timm plugin and the blobs plugin, also used by the CLI."""
    import n2n_timm

    return install_blob_host(monkeypatch, tmp_path, REGISTRY, timm=n2n_timm)


@pytest.fixture
def hub(timm_host, tmp_path):
    from n2n_hub.hub import Hub

    return Hub(home=tmp_path / "home", host=timm_host, progress=False, log=lambda m: None)


def cli_run(*args: str):
    from n2n_hub.cli.commands import cli

    return CliRunner().invoke(cli, list(args))


def one_line_failure(res) -> str:
    """Exit status 1 and the error in one line (progress lines such as "loading expert ..." may precede it)."""
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and res.output.strip().endswith(errors[0]) and "Traceback" not in res.output, res.output
    return errors[0]


def save_tiny(folder, arch="test_resnet.r160_in1k", seed=0, **kwargs):
    """A random-init timm model saved in timm's Hugging Face layout (config.json + model.safetensors)."""
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, **kwargs)
    save_for_hf(model, str(folder), safe_serialization=True)
    return model.eval()


def hf_cache(root, repo, model_folder):
    """A Hugging Face cache holding one snapshot of ``repo``, as ``hf download`` leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_folder / name, snap / name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return root


# -- taps and shapes, before any weights ---------------------------------------------------------------------
@pytest.mark.slow  # over half a second: the quick subset leaves it out
@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224", "convnext_atto", "mobilenetv3_small_050"])
def test_taps_are_the_models_stages_with_timms_channels_and_strides(hub, name):
    import timm

    spec = hub.expert_spec(f"timm@{name}")
    with torch.device("meta"):
        info = timm.create_model(name, pretrained=False).feature_info  # timm's own record of the model's stages
    stages = [d["module"] for d in info]
    assert list(spec.taps) == [*stages, "pooled", "logits"]
    _, h, w = spec.input_shape
    for d in info:
        red = d["reduction"]
        assert spec.taps[d["module"]].shape == (d["num_chs"], -(-h // red), -(-w // red)), d
    assert spec.taps["logits"].shape == (1000,)
    assert spec.representation == spec.taps["pooled"]
    assert spec.license and spec.variants[0].source.startswith("hf-hub:timm/")


def test_show_lists_taps_shapes_licence_and_paper_without_weights(timm_host):
    res = cli_run("experts", "show", "timm@resnet50.a1_in1k", "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["taps"]["layer3"]["shape"] == [1024, 14, 14] and d["taps"]["pooled"]["shape"] == [2048]
    assert d["license"] == "apache-2.0" and "arXiv:2110.00476" in d["description"]
    assert d["input_shape"] == [3, 224, 224] and d["variants"][0]["name"] == "resnet50.a1_in1k"


def test_the_registered_default_is_resnet18_as_timm_reports_it(hub):
    import n2n_timm

    computed = hub.expert_spec("timm@resnet18")
    assert n2n_timm.DEFAULT_TAPS == computed.taps
    assert n2n_timm.timm_spec().input_shape == computed.input_shape


def test_a_registry_entry_without_a_tap_serves_every_tap(hub):
    assert hub.plan("timm:layer2@resnet18", "tinyae").entry.name == "timm-tinyae"
    assert hub.plan("timm@resnet18", "tinyae").entry.name == "timm-tinyae"
    assert hub.plan("timm:pooled@resnet18", "tinyae").entry.name == "timm-pooled-tinyae"  # a tapped entry wins


# -- weights: the Hugging Face cache, a folder, the experts dir -------------------------------------------------
def test_pretrained_name_loads_from_the_hugging_face_cache_offline(hub, tmp_path, monkeypatch):
    model = save_tiny(tmp_path / "tiny")
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache(tmp_path / "hf", "timm/test_resnet.r160_in1k", tmp_path / "tiny")))
    expert = hub.load_expert("timm@test_resnet.r160_in1k")
    x = torch.rand(3, 1, 32, 32) * 2 - 1  # grey 32×32: made RGB 160×160 and normalised
    prepared = expert.preprocess(x, "test", torch.device("cpu"))
    assert prepared.shape == (3, 3, 160, 160)
    with torch.no_grad():
        want = model.forward_head(model.forward_features(prepared), pre_logits=True)
    assert torch.allclose(expert.encode(x), want, atol=1e-5)
    assert torch.allclose(expert.encode(x, tap="logits"), model(prepared), atol=1e-5)
    # the same files as an HF repo id, and as a local folder: one path, one result
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache(tmp_path / "hf2", "someorg/tiny-resnet", tmp_path / "tiny")))
    for address in ("timm@someorg/tiny-resnet", f"timm@{tmp_path / 'tiny'}"):
        other = hub.load_expert(address)
        assert torch.allclose(other.encode(x), want, atol=1e-5)
        assert other.fingerprint() == expert.fingerprint()


def test_stage_taps_equal_timms_features_only_model(hub, tmp_path):
    import timm

    model = save_tiny(tmp_path / "tiny")
    expert = hub.load_expert(f"timm@{tmp_path / 'tiny'}")
    features = timm.create_model("test_resnet.r160_in1k", pretrained=False, features_only=True).eval()
    features.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")})
    x = torch.rand(2, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        maps = features(expert.preprocess(x, "test", torch.device("cpu")))
    names = [d["module"] for d in features.feature_info.get_dicts()]
    for name, want in zip(names, maps):
        got = expert.encode(x, tap=name)
        assert got.shape[1:] == expert.representation_for(name).shape
        assert torch.allclose(got, want, atol=1e-5), name


def test_inputs_become_what_the_model_expects(hub, tmp_path):
    save_tiny(tmp_path / "tiny")
    expert = hub.load_expert(f"timm@{tmp_path / 'tiny'}")  # RGB 160×160, mean = std = 0.5
    grey = torch.full((1, 1, 20, 24), 0.5)  # 0.75 in [0, 1]
    out = expert.preprocess(grey, "test", torch.device("cpu"))
    assert out.shape == (1, 3, 160, 160) and torch.allclose(out, torch.full_like(out, 0.5))  # (0.75-0.5)/0.5
    with pytest.raises(ShapeError, match=r"values in \[-1, 1\]"):
        expert.encode(torch.full((1, 3, 8, 8), 255.0))
    with pytest.raises(ShapeError, match="1 or 3"):
        expert.encode(torch.zeros(1, 2, 8, 8))
    with pytest.raises(UnknownExpertError, match="no tap 'layer9'.*layer1.*pooled"):
        expert.encode(torch.zeros(1, 3, 8, 8), tap="layer9")


def test_missing_weights_say_where_to_put_them(hub, timm_host, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    with pytest.raises(OfflineError, match=r"hf download timm/test_vit\.r160_in1k.*experts/timm/test_vit\.r160_in1k"):
        hub.load_expert("timm@test_vit.r160_in1k")
    text = one_line_failure(cli_run("pair", "timm:pooled@test_vit.r160_in1k", "tinyae"))
    assert "offline" in text and "hf download timm/test_vit.r160_in1k" in text


def test_weights_of_another_architecture_name_both(hub, tmp_path):
    save_tiny(tmp_path / "resnet")
    save_tiny(tmp_path / "vit", arch="test_vit.r160_in1k")
    shutil.copy(tmp_path / "vit" / "model.safetensors", tmp_path / "resnet" / "model.safetensors")
    with pytest.raises(InputError, match=r"weights .*model\.safetensors do not fit the architecture test_resnet"):
        hub.load_expert(f"timm@{tmp_path / 'resnet'}")
    text = one_line_failure(cli_run("pair", f"timm:pooled@{tmp_path / 'resnet'}", "tinyae"))
    assert "do not fit the architecture test_resnet" in text


# -- errors, each one line ------------------------------------------------------------------------------------
def test_an_unknown_model_suggests_names(timm_host):
    text = one_line_failure(cli_run("experts", "show", "timm@resnt18"))
    assert "no model 'resnt18'" in text and "Did you mean" in text and "resnet18" in text
    text = one_line_failure(cli_run("experts", "show", "timm@resnet18.nope"))
    assert "resnet18.a1_in1k" in text and "train-expert timm" in text


def test_a_missing_tap_lists_the_taps_the_model_has(timm_host):
    text = one_line_failure(cli_run("experts", "show", "timm:layer9@resnet18"))
    assert "no tap 'layer9'" in text and "act1, layer1, layer2, layer3, layer4, pooled, logits" in text


def test_a_model_without_intermediate_features_says_so(timm_host, monkeypatch):
    import timm.models.resnet

    from n2n_timm import model as timm_model

    monkeypatch.setattr(timm_model, "_LAYOUTS", {})
    monkeypatch.delattr(timm.models.resnet.ResNet, "forward_intermediates")
    text = one_line_failure(cli_run("experts", "show", "timm:layer3@resnet34"))
    assert "cannot give intermediate features" in text and "pooled, logits" in text
    res = cli_run("experts", "show", "timm:pooled@resnet34", "--json")
    assert res.exit_code == 0 and set(json.loads(res.output)["taps"]) == {"pooled", "logits"}


def test_search_finds_timm_models_by_name(timm_host):
    res = cli_run("experts", "-q", "convnext_at")
    assert res.exit_code == 0, res.output
    assert "timm" in res.output and "convnext_atto" in res.output and "convnext_atto.d2_in1k" in res.output
    res = cli_run("experts", "-q", "resnet1*t", "--json")  # a wildcard, as timm.list_models takes it
    assert [v["name"] for v in json.loads(res.output)[0]["variants"]] == ["resnet10t", "resnet14t"]
    res = cli_run("experts", "-q", "resnet10t*", "--json")
    assert [v["name"] for v in json.loads(res.output)[0]["variants"]] == ["resnet10t", "resnet10t.c3_in1k"]
    assert cli_run("experts", "-q", "no-such-model-anywhere").output.strip() == "no experts match"


@pytest.mark.slow  # runs the CLI as a process, as a user does
def test_registration_and_search_import_neither_torch_nor_timm(tmp_path, timm_host):
    """`n2n-hub experts` stays fast: the names come from a file in the hub home, computed once."""
    from n2n_timm import names

    home = tmp_path / "home"
    names.names(home)  # computed once (here, in the test process) and kept in the hub home
    assert names.cache_file(home).is_file()
    code = ("import sys, n2n_timm; from n2n_hub.catalog.host import PluginHost; h = PluginHost(); h._loaded = True; "
            "h.register(n2n_timm, 'timm'); c = h.collect(); hits = c.search('resnet18'); "
            "print(sorted(c.experts), [s.id for s in hits], 'resnet18.a1_in1k' in [v.name for v in hits[0].variants], "
            "'torch' in sys.modules, 'timm' in sys.modules)")
    env = {**__import__("os").environ, "N2N_HUB_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "['timm'] ['timm'] True False False"


def broken_index(spec, query):
    raise RuntimeError("the model index is unreadable")


def not_a_spec(spec, address):
    return "a string"


class ZooPlugin:
    @hookimpl
    def register_experts(self, register):
        register(ExpertSpec(id="zoo", version="1", loader="blob_plugin:TinyAE", input_domain="image",
                            representation=Representation((8,)), accepts_hub_ids=True,
                            variant_spec="test_timm:not_a_spec", find_variants="test_timm:broken_index"))


def test_variant_hooks_that_fail_are_contained(tmp_path):
    from n2n_hub.catalog.host import PluginHost
    from n2n_hub.errors import PluginError
    from n2n_hub.hub import Hub

    host = PluginHost()
    host._loaded = True
    assert host.register(ZooPlugin(), "zoo")
    hub = Hub(home=tmp_path / "home", host=host, progress=False, log=lambda m: None)
    assert hub.experts("resnet") == []  # a failing search hook hides nothing else and raises nothing
    assert any("the model index is unreadable" in p.reason for p in hub.catalog.problems)
    assert hub.expert_spec("zoo").id == "zoo"  # no variant named: the hook is not called
    with pytest.raises(PluginError, match="variant_spec returned a str, expected an ExpertSpec"):
        hub.expert_spec("zoo@model")


# -- trained here ---------------------------------------------------------------------------------------------
def test_train_expert_saves_a_model_folder_timm_itself_reads(hub, timm_host, tmp_path):
    import timm

    from n2n_hub.cli.commands import cli
    from n2n_timm import commands

    commands.register(cli)
    res = CliRunner().invoke(cli, ["train-expert", "timm", "--model", "test_resnet", "--dataset", "blobs",
                                   "--epochs", "1", "--batch-size", "32"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "test split: accuracy" in res.output and "timm@test_resnet.blobs" in res.output
    folder = tmp_path / "home" / "experts" / "timm" / "test_resnet.blobs"
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and config["label_names"] == list(BLOB_CLASSES)
    assert 0 <= config["n2n_hub"]["test_accuracy"] <= 1 and config["n2n_hub"]["dataset"] == "blobs"
    # the folder is timm's own layout: timm loads it, and so does the expert, by its name
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    expert = hub.load_expert("timm@test_resnet.blobs")
    images = load_blobs("test")["image"][:4]
    with torch.no_grad():
        assert torch.allclose(expert.encode(images, tap="logits"), theirs(images), atol=1e-5)  # mean = std = 0.5
    assert expert.spec.input_shape == (1, 32, 32) and expert.class_names == BLOB_CLASSES
    assert "trained here on blobs" in hub.expert_spec("timm@test_resnet.blobs").description
    assert any(v.name == "test_resnet.blobs" for v in hub.catalog.search("resnet.blobs")[0].variants)

    # Sec. E: a layer of the trained model is the source of a translator, here the closed-form linear one
    t = hub.pair("timm:pooled@test_resnet.blobs", "tinyae", translator="linear")
    assert t.kind == "linear" and t.metrics["steps"] == 0 and t.metrics["best_val_mse"] is not None
    r = t.translate(images, n=2, seed=0)
    assert r.latents.shape == (4, 2, 8) and torch.equal(r.latents[:, 0], r.latents[:, 1])

    bad = CliRunner().invoke(cli, ["train-expert", "timm", "--model", "resnt18", "--dataset", "blobs"])
    assert "Did you mean" in one_line_failure(bad)
    bad = CliRunner().invoke(cli, ["train-expert", "timm", "--model", "test_resnet", "--dataset", "blobs",
                                   "--model-arg", "nonsense"])
    assert "KEY=VALUE" in one_line_failure(bad)
    bad = CliRunner().invoke(cli, ["train-expert", "timm", "--model", "test_resnet", "--dataset", "blobs",
                                   "--name", "resnet18.a1_in1k"])
    assert "timm already uses" in one_line_failure(bad)


# -- diagnosis of several models side by side ------------------------------------------------------------------
@pytest.mark.slow
def test_diagnose_puts_many_models_in_one_table_and_evaluates_each_cell_once(hub, tmp_path, monkeypatch):
    from n2n_hub.cli.commands import cli
    from n2n_hub.evaluation import diagnosis as diagnosis_module

    registry = tmp_path / "generic.toml"  # every tap through one entry, as `timm-vaegan-animals` does
    registry.write_text(REGISTRY.split("[pairs.timm-pooled-tinyae]")[0]
                        + "[pairs.timm-tinyae.flow]\nn_blocks = 2\nhidden = 16\ndepth = 1\n")
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(registry))
    folders = {arch: tmp_path / arch for arch in ("test_resnet", "test_vit", "test_convnext")}
    for arch, folder in folders.items():
        save_tiny(folder, arch, num_classes=3)
    models = [f"timm@{folder}" for folder in folders.values()]
    measured = []
    real = diagnosis_module.evaluate_translator
    monkeypatch.setattr(diagnosis_module, "evaluate_translator", lambda *a, **k: measured.append(a) or real(*a, **k))

    two = hub.diagnose(models[:2], "tinyae", "all", per_condition=2, samples=16)
    taps = {m: list(hub.expert_spec(m).taps) for m in models}
    assert two.addresses == [f"timm:{tap}@{folders[arch]}" for arch in ("test_resnet", "test_vit")
                             for tap in taps[f"timm@{folders[arch]}"]]
    assert "layer1" in taps[models[0]] and "blocks.0" in taps[models[1]] and "pooled" in taps[models[1]]
    rows = two.rows()
    assert [(r["model"], r["tap"]) for r in rows] == [(f"timm@{folders[a]}", t) for a in ("test_resnet", "test_vit")
                                                       for t in taps[f"timm@{folders[a]}"]]
    for row in rows:
        assert not row.get("skipped"), row.get("skipped")
        assert row["cinn"]["nll"] is not None and row["mlp"]["mse"] is not None and row["linear"]["mse"] is not None
        assert 0 <= row["cka"] <= 1
    assert len(measured) == 3 * len(rows)

    # a third model: only its own cells are trained and measured; the others' numbers come back unchanged
    trained_before = len(hub.cache.entries())
    three = hub.diagnose(models, "tinyae", "pooled", per_condition=2, samples=16)
    assert len(measured) == 3 * len(rows) + 3 and len(hub.cache.entries()) == trained_before + 3
    pooled = [r for r in rows if r["tap"] == "pooled"]
    assert three.rows()[:2] == pooled and three.rows()[2]["model"] == models[2]
    assert len(three.table().splitlines()) == 2 + 3 + 1

    # the command: one table, JSON rows, and one-line errors
    res = CliRunner().invoke(cli, ["diagnose", *models, "tinyae", "--layers", "pooled", "--json", "--no-train",
                                   "--per-condition", "2", "--samples", "16"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["model"] for r in data["rows"]] == models and {r["tap"] for r in data["rows"]} == {"pooled"}
    assert data["sources"] == models and len(measured) == 3 * len(rows) + 3  # all cached
    bad = CliRunner().invoke(cli, ["diagnose", *models[:2], "tinyae", "--layers", "layer1"])
    assert "has no layer(s) layer1" in one_line_failure(bad) and "blocks.0" in bad.output
    bad = CliRunner().invoke(cli, ["diagnose", *models[:2], "tinyae", "--layers", "layer1,stages.9"])
    assert "no model has the layer(s) stages.9" in one_line_failure(bad)
    # models name their layers differently: each takes the listed taps it has
    mixed = hub.diagnose(models, "tinyae", "layer2,blocks.1,stages.1,pooled", per_condition=2, samples=16,
                         kinds=["cinn"])
    assert [(r["model"], r["tap"]) for r in mixed.rows()] == [
        (models[0], "layer2"), (models[0], "pooled"), (models[1], "blocks.1"), (models[1], "pooled"),
        (models[2], "stages.1"), (models[2], "pooled")]
