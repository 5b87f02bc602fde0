"""One door: a pair is planned once, its plan travels with the translator, experts load once."""

from __future__ import annotations

import torch

import n2n_hub.hub as hub_module
from n2n_hub.translators import file as translator_file
from n2n_hub.hub import Hub


def _count_plans(monkeypatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    real = hub_module.resolve_pair

    def counting(catalog, registry, source, target, **kw):
        calls.append((source, target))
        return real(catalog, registry, source, target, **kw)

    monkeypatch.setattr(hub_module, "resolve_pair", counting)
    return calls


def test_one_translate_plans_the_pair_once_and_loads_each_expert_once(toy_host, toy_registry_file, tmp_path,
                                                                    monkeypatch):
    plans = _count_plans(monkeypatch)
    lines: list[str] = []
    hub = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lines.append)
    r = hub.translate("toytext", "toygen", ["a circle"], n=2, seed=0, steps=30)
    assert plans == [("toytext", "toygen")]
    assert sorted(ln for ln in lines if ln.startswith("loading expert")) == [
        "loading expert toygen@base", "loading expert toytext@base"]
    assert r.latents.shape == (1, 2, 4)

    # the plan the hub made is the one the translator carries
    t = hub.pair("toytext", "toygen", steps=30)
    assert len(plans) == 2 and t.plan is not None
    assert t.plan.source.id == "toytext" and t.plan.target.id == "toygen" and t.plan.recipe == "dataset"


def test_evaluation_uses_the_translators_plan_instead_of_planning_again(toy_hub, monkeypatch):
    plans = _count_plans(monkeypatch)
    report = toy_hub.evaluate("toytext", "toygen", steps=30, samples=16, per_condition=2)
    assert plans == [("toytext", "toygen")]
    assert report.metrics["nll"] is not None and report.metrics["fd_latent"] is not None


def test_a_freshly_trained_translator_is_the_object_trained_and_equal_to_its_file(toy_hub, monkeypatch):
    rebuilt: list[str] = []
    real_load = translator_file.load

    def counting_load(path, map_location="cpu"):
        rebuilt.append(str(path))
        return real_load(path, map_location=map_location)

    monkeypatch.setattr(translator_file, "load", counting_load)
    t = toy_hub.pair("toytext", "toygen", steps=30)
    assert rebuilt == []  # handed out without rebuilding it from the file it was just saved to
    module, meta = real_load(t.path)
    assert meta["config"] == t.module.config() and meta["kind"] == t.kind
    assert all(torch.equal(module.state_dict()[k], v) for k, v in t.module.state_dict().items())
    assert not t.module.training
    a = t.translate(["a triangle"], n=4, seed=5).latents
    again = toy_hub.pair("toytext", "toygen", steps=30)  # now from the cache, rebuilt from the file
    assert rebuilt == [str(t.path)] and torch.equal(again.translate(["a triangle"], n=4, seed=5).latents, a)


def test_the_hub_imports_without_torch_so_listings_stay_fast():
    import subprocess
    import sys

    code = ("import sys, n2n_hub.hub, n2n_hub.cli.commands; "
            "print(sorted(m for m in ('torch', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_reaches_evaluation_diagnosis_and_publishing_through_the_hub(toy_cli_host, toy_registry_file,
                                                                            tmp_path, monkeypatch):
    from click.testing import CliRunner

    from n2n_hub.cli.commands import cli

    monkeypatch.setenv("N2N_HUB_HOME", str(tmp_path / "home"))
    called = []
    for door in ("evaluate", "evaluate_prompts", "diagnose", "publish"):
        def record(self, *args, _door=door, **kwargs):
            called.append(_door)
            raise hub_module.InputError(f"{_door} reached")
        monkeypatch.setattr(Hub, door, record)
    prompts = tmp_path / "p.tsv"
    prompts.write_text("circle\tnames\ta circle\n")
    for args in (["evaluate", "toytext", "toygen"], ["evaluate", "toytext", "toygen", "--prompts", str(prompts)],
                 ["diagnose", "toytext", "toygen"], ["publish", "0" * 32]):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 1 and "reached" in out.output, out.output
    assert called == ["evaluate", "evaluate_prompts", "diagnose", "publish"]


def _hub_references(source: str) -> list[int]:
    """Lines that import the hub module or name ``Hub`` in code (annotations included)."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "hub" \
                and (node.level > 0 or (node.module or "").startswith("n2n_hub")):
            lines.append(node.lineno)
        elif isinstance(node, ast.Import) and any(a.name == "n2n_hub.hub" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and any(a.name == "Hub" for a in node.names):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Name) and node.id == "Hub") or (isinstance(node, ast.Attribute) and node.attr == "Hub"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ("Hub", "n2n_hub.hub"):
            lines.append(node.lineno)
    return lines


def test_no_room_below_the_door_imports_or_names_the_hub():
    """Evaluation, diagnosis, prompt scoring, publishing and the rest take values; only the faces hold a Hub."""
    from pathlib import Path

    import n2n_hub

    root = Path(n2n_hub.__file__).parent
    faces = {root / "cli", root / "serve"}
    rooms = [p for p in root.rglob("*.py") if p.parent != root and not faces & set(p.parents)]
    assert {p.parent.name for p in rooms} >= {"evaluation", "translators", "catalog", "data", "training"}
    found = {str(p.relative_to(root)): lines for p in sorted(rooms)
             if (lines := _hub_references(p.read_text(encoding="utf-8")))}
    assert found == {}
    # the scan does see a reference
    assert _hub_references("from ..hub import Hub\n") == [1]
    assert _hub_references("def f(hub: 'Hub') -> None:\n    pass\n") == [1]
    assert _hub_references("import n2n_hub.hub\n") == [1]
