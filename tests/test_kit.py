"""The plugin kit: plugins need nothing beyond ``n2n_hub`` and ``n2n_hub.kit``, and it serves them."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest
import torch

import n2n_hub
import n2n_hub.kit as kit
from n2n_hub import hookspecs

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"n2n_hub": set(n2n_hub.__all__) | {"Hub"}, "n2n_hub.kit": set(kit.__all__)}


def _n2n_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of an n2n_hub module in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "n2n_hub":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "n2n_hub"]
    return found


def test_plugins_import_only_the_public_surface():
    files = sorted((ROOT / "plugins").rglob("*.py"))
    assert len(files) > 30  # the built-ins are here
    bad = []
    for f in files:
        for line, module, names in _n2n_imports(f):
            if module not in PUBLIC:
                bad.append(f"{f.relative_to(ROOT)}:{line} imports {module}")
            else:
                bad += [f"{f.relative_to(ROOT)}:{line} imports {module}.{n}, which is not public"
                        for n in names if n not in PUBLIC[module]]
    assert bad == []


def test_the_surface_check_catches_an_internal_import(tmp_path):
    f = tmp_path / "p.py"
    f.write_text("from n2n_hub.errors import InputError\nfrom n2n_hub.kit import sha256_file\nimport n2n_hub.base.paths\n")
    assert [(m, n) for _, m, n in _n2n_imports(f)] == [("n2n_hub.errors", ["InputError"]),
                                                       ("n2n_hub.kit", ["sha256_file"]), ("n2n_hub.base.paths", [])]


def test_everything_the_kit_lists_exists():
    for name in kit.__all__:
        assert getattr(kit, name) is not None, name
    assert issubclass(kit.MissingWeightsError, kit.N2NError) and issubclass(kit.ShapeError, ValueError)


def _hooks() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(hookspecs).items()
            if callable(fn) and name.startswith("register_") and hasattr(fn, "n2n_hub_spec")}


def test_every_hook_is_documented_and_has_a_test_of_its_own():
    hooks = _hooks()
    assert {"register_experts", "register_bridges", "register_datasets", "register_commands",
            "register_pairs"} <= set(hooks)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    problems = []
    for name, sig in hooks.items():
        params = list(sig.parameters)
        doc = getattr(hookspecs, name).__doc__ or ""
        problems += [f"{name}: docstring lacks ':param {p}:'" for p in params if f":param {p}:" not in doc]
        if f"`{name}({', '.join(params)})`" not in readme:
            problems.append(f"{name}: README does not document `{name}({', '.join(params)})`")
        if not re.search(rf"def test_\w*{name}\w*\(", tests):
            problems.append(f"{name}: no test function named after it")
    assert problems == []


# -- weights files -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 3

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TinyConfig":
        return cls(**json.loads(text))


class Tiny(torch.nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.lin = torch.nn.Linear(config.width, 2)


def test_model_weights_round_trip_rebuilds_the_model_from_its_own_config(tmp_path):
    weights = kit.ModelWeights(kit.WeightsFormat("tiny", "n2n-tiny", "n2n-hub train-expert tiny"), TinyConfig, Tiny)
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=5))
    path = weights.save(model, tmp_path / "w" / "tiny.safetensors", info={"steps": 7})
    loaded, info = weights.load_model(tmp_path / "w")  # a folder with one file resolves to it
    assert loaded.config == TinyConfig(width=5) and info == {"steps": 7}
    assert torch.equal(loaded.lin.weight, model.lin.weight) and not loaded.training
    assert kit.sha256_file(path) == kit.sha256_file(tmp_path / "w" / "tiny.safetensors")

    half = weights.save(model, tmp_path / "half.safetensors", dtype=torch.float16)
    assert (weights.read(half)[1]["lin.weight"] - model.lin.weight).abs().max() < 1e-3


def test_weights_of_another_format_are_refused_with_the_train_command(tmp_path):
    mine = kit.ModelWeights(kit.WeightsFormat("tiny", "n2n-tiny", "n2n-hub train-expert tiny"), TinyConfig, Tiny)
    other = kit.ModelWeights(kit.WeightsFormat("other", "n2n-other", "x"), TinyConfig, Tiny)
    path = other.save(Tiny(TinyConfig()), tmp_path / "o.safetensors")
    with pytest.raises(kit.CacheError, match="not a tiny weights file.*n2n-hub train-expert tiny"):
        mine.load_model(path)


def test_the_shared_weights_format_serves_both_builtin_checkpoint_modules():
    from n2n_segmenter import checkpoint as seg
    from n2n_vaegan import checkpoint as vae

    assert isinstance(seg.WEIGHTS, kit.ModelWeights) and isinstance(vae.WEIGHTS, kit.ModelWeights)
    assert seg.WEIGHTS.dtype == torch.float16 and vae.WEIGHTS.format.format == "n2n-vaegan"


# -- files, datasets ---------------------------------------------------------------------
def test_expert_files_follow_the_hub_home(tmp_path, toy_host):
    from n2n_hub.hub import Hub

    hub = Hub(home=tmp_path / "elsewhere", host=toy_host, progress=False, log=lambda m: None)
    expert = hub.load_expert("toygen")
    assert expert.home == tmp_path / "elsewhere"
    assert kit.experts_dir("toygen", expert.home) == tmp_path / "elsewhere" / "experts" / "toygen"
    assert kit.hub_home() != tmp_path / "elsewhere"  # only inside the hub's own work
    with kit.using_home(tmp_path / "x"):
        assert kit.experts_dir("a") == tmp_path / "x" / "experts" / "a"


def test_biggan_files_follow_the_hub_home(tmp_path):
    from n2n_hub.hub import Hub

    hub = Hub(home=tmp_path / "h", progress=False, log=lambda m: None)
    from n2n_biggan import biggan_spec
    from n2n_biggan.expert import BigGANExpert

    with kit.using_home(hub.home):
        expert = BigGANExpert.from_class_embedding(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)),
                                                   spec=biggan_spec(), progress=False)
    assert expert.dequantizer_path.is_relative_to(tmp_path / "h" / "experts" / "biggan")
    assert not (Path(kit.hub_home()) / "experts" / "biggan").exists()


def test_dataset_access_names_what_is_missing(toy_cli_host):
    data = kit.load_dataset("toyshapes", "test", needs=("image",))
    assert data["image"].shape[1:] == (1, 4, 4) and data["label"].dtype == torch.int64
    assert kit.dataset_spec("toyshapes", labelled=True).class_names == ("circle", "square", "triangle")
    with pytest.raises(kit.InputError, match="no dataset 'nope'; registered datasets: toyshapes"):
        kit.dataset_spec("nope")
    with pytest.raises(kit.InputError, match="has no text data"):
        kit.dataset_spec("toyshapes", needs=("text",))
    with pytest.raises(kit.InputError, match="split must be"):
        kit.load_dataset("toyshapes", "val")


DATASETS_MODULE = '''
from n2n_hub import kit


def inner(split):
    """A dataset that fetches its files once, into the hub's home."""
    path = kit.hub_home() / "datasets" / "inner" / f"{split}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("fetched")
    return {"text": ["a circle", "a square"]}


def outer(split):
    """A dataset made from another one, as plugin code reads it."""
    return {"text": [t.upper() for t in kit.load_dataset("inner", split, needs=("text",))["text"]]}
'''


def test_load_dataset_reads_the_running_hub_s_dataset_under_its_home(tmp_path, monkeypatch):
    import types

    import n2n_hub.catalog.host
    from n2n_hub import DatasetSpec, hookimpl
    from n2n_hub.catalog.host import PluginHost
    from n2n_hub.hub import Hub

    (tmp_path / "my_datasets.py").write_text(DATASETS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    nothing_installed = PluginHost()
    nothing_installed._loaded = True
    monkeypatch.setattr(n2n_hub.catalog.host, "_host", nothing_installed)

    def register_datasets(register):
        for name in ("inner", "outer"):
            register(DatasetSpec(id=name, version="1", loader=f"my_datasets:{name}", domains=("text",)))

    mine = PluginHost()
    mine._loaded = True
    assert mine.register(types.SimpleNamespace(register_datasets=hookimpl(register_datasets)), "mine")
    hub = Hub(home=tmp_path / "elsewhere", host=mine, progress=False, log=lambda m: None)
    assert hub.load_dataset("outer", "test") == {"text": ["A CIRCLE", "A SQUARE"]}
    assert (tmp_path / "elsewhere" / "datasets" / "inner" / "test.txt").read_text() == "fetched"
    assert not (kit.hub_home() / "datasets").exists()  # not under $N2N_HUB_HOME
    with pytest.raises(kit.InputError, match="no dataset 'inner'"):  # outside the hub's work: what is installed
        kit.load_dataset("inner", "test")


def test_hf_cache_dir_reads_the_environment_when_called(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    assert kit.hf_cache_dir() is None  # huggingface_hub's own default
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert kit.hf_cache_dir() == str(tmp_path / "hf" / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", "~/hub-cache")
    assert kit.hf_cache_dir() == str(Path("~/hub-cache").expanduser())  # it wins over HF_HOME


def test_bert_and_biggan_find_hugging_face_files_where_the_kit_says():
    from n2n_bert import checkpoints
    from n2n_biggan import weights

    assert checkpoints.hf_cache_dir is kit.hf_cache_dir and weights.hf_cache_dir is kit.hf_cache_dir
