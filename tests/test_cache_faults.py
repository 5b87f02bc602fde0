"""The cache under attack: swapped, garbage and foreign files, symlinks, and files of other settings.

Each test injects the fault the way it happens on a user's disk and checks what the user
sees (one line, exit 1, nothing deleted that the store did not write).
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from toy_util import TOY_REGISTRY

from n2n_hub.base.atomic import sha256_file
from n2n_hub.cli.commands import cli
from n2n_hub.errors import CacheError
from n2n_hub.hub import Hub


@pytest.fixture
def run(toy_cli_host, toy_registry_file):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


def _swap_in(dst, src) -> None:
    """Put ``src``'s weights under ``dst``'s key with a sidecar whose sha256 agrees (a careful swap)."""
    shutil.copyfile(src, dst)
    side = json.loads(dst.with_suffix(".json").read_text())
    side["sha256"] = sha256_file(dst)
    dst.with_suffix(".json").write_text(json.dumps(side))


def test_a_valid_translator_of_other_settings_under_a_key_is_refused_on_load_and_by_verify(toy_hub):
    cinn = toy_hub.pair("toytext", "toygen", steps=30)
    mlp = toy_hub.pair("toytext", "toygen", translator="mlp", steps=30)
    _swap_in(cinn.path, mlp.path)
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=lambda m: None)
    with pytest.raises(CacheError, match=r"other settings.*different module.*it is a mlp.*n2n-hub cache rm"):
        hub.pair("toytext", "toygen", steps=30)
    problems = {e.key: p for e, p in hub.cache.verify()}
    assert problems[mlp.path.stem] is None
    assert "other settings" in problems[cinn.path.stem]


def _published(tmp_path, monkeypatch, artifact):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    reg = tmp_path / "pub.toml"
    reg.write_text(TOY_REGISTRY + f'\n[pairs.toy-shapes.published]\nurl = "{artifact.as_uri()}"\n'
                                  f'sha256 = "{sha256_file(artifact)}"\n')
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_published_translator_answers_only_the_settings_it_was_trained_with(trained_toy_hub, tmp_path, monkeypatch):
    trained = trained_toy_hub.pair("toytext", "toygen")  # the registry's settings: what is published
    artifact = tmp_path / "published.safetensors"
    shutil.copyfile(trained.path, artifact)
    trained_toy_hub.cache.remove()
    _published(tmp_path, monkeypatch, artifact)
    said: list[str] = []
    hub = Hub(home=trained_toy_hub.home, host=trained_toy_hub.host, progress=False, log=said.append)
    mlp = hub.pair("toytext", "toygen", translator="mlp", steps=20)
    assert mlp.kind == "mlp" and not any("fetching" in s for s in said)
    with pytest.raises(CacheError, match="no cached translator"):
        hub.pair("toytext", "toygen", steps=40, train_if_missing=False)
    fetched = hub.pair("toytext", "toygen", train_if_missing=False)
    assert fetched.kind == "cinn" and sha256_file(fetched.path) == sha256_file(artifact)
    assert len(hub.cache.entries()) == 2


def test_a_published_file_of_other_settings_is_not_cached_under_the_requested_key(toy_hub, tmp_path, monkeypatch):
    other = toy_hub.pair("toytext", "toygen", steps=20)  # not what the registry entry asks for
    artifact = tmp_path / "published.safetensors"
    shutil.copyfile(other.path, artifact)
    toy_hub.cache.remove()
    _published(tmp_path, monkeypatch, artifact)
    said: list[str] = []
    hub = Hub(home=toy_hub.home, host=toy_hub.host, progress=False, log=said.append)
    with pytest.raises(CacheError, match="no cached translator"):
        hub.pair("toytext", "toygen", train_if_missing=False)
    assert any("trained with other settings" in s and "not caching it" in s for s in said)
    assert hub.cache.entries() == []


@pytest.mark.parametrize("garbage", [b"\x89\xff\x00\xfe garbage \x80", b"[1, 2, 3]", b'"a string"'])
def test_cache_commands_survive_a_garbage_sidecar(run, tmp_path, garbage):
    assert run("pair", "toytext", "toygen", "--steps", "20").exit_code == 0
    entry = json.loads(run("cache", "list", "--json").output)[0]
    sidecar = tmp_path / "home" / "translators" / entry["pair"] / f"{entry['key']}.json"
    sidecar.write_bytes(garbage)
    out = tmp_path / "x.png"
    used = run("translate", "toytext", "toygen", "a circle", "-o", str(out), "--steps", "20")
    assert used.exit_code == 1 and ("is unreadable" in used.output or "not a JSON object" in used.output)
    assert f"n2n-hub cache rm {entry['key']}" in used.output and "Traceback" not in used.output
    listed = run("cache", "list")
    assert listed.exit_code == 0 and entry["key"] in listed.output
    verified = run("cache", "verify")
    assert verified.exit_code == 1 and "BAD" in verified.output and "0 ok, 1 bad" in verified.output
    removed = run("cache", "rm", entry["key"])
    assert removed.exit_code == 0 and not sidecar.exists()
    assert run("pair", "toytext", "toygen", "--steps", "20").exit_code == 0
    sidecar.write_bytes(garbage)
    assert run("cache", "rm", "--all").exit_code == 0
    assert json.loads(run("cache", "list", "--json").output) == []


def test_rm_removes_only_what_the_store_wrote_inside_the_root(run, tmp_path):
    assert run("pair", "toytext", "toygen", "--steps", "20").exit_code == 0
    entry = json.loads(run("cache", "list", "--json").output)[0]
    root = tmp_path / "home" / "translators"
    key = entry["key"]
    # a user's notes beside the entries, and a foreign json in a folder of its own
    notes = root / entry["pair"] / "notes.json"
    notes.write_text('{"mine": true}')
    (root / "mine").mkdir()
    (root / "mine" / "data.json").write_text("{}")
    # a symlinked folder pointing outside the cache, holding files named like an entry
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{key}.json").write_text('{"sha256": "x"}')
    (outside / f"{key}.safetensors").write_bytes(b"precious")
    (root / "linked").symlink_to(outside, target_is_directory=True)

    assert [e["key"] for e in json.loads(run("cache", "list", "--json").output)] == [key]
    assert run("cache", "rm", "linked").exit_code == 1  # not a pair folder of ours
    assert run("cache", "rm", key[:6]).exit_code == 0
    assert run("cache", "rm", "--all").exit_code == 0
    assert notes.read_text() == '{"mine": true}' and (root / "mine" / "data.json").exists()
    assert (outside / f"{key}.safetensors").read_bytes() == b"precious" and (outside / f"{key}.json").exists()
    assert not (root / entry["pair"] / f"{key}.safetensors").exists()


def test_a_cache_root_that_is_a_file_is_one_line(run, tmp_path, monkeypatch):
    home = tmp_path / "afile"
    home.write_text("not a folder")
    monkeypatch.setenv("N2N_HUB_HOME", str(home))
    for args in (("cache", "list"), ("pair", "toytext", "toygen", "--steps", "5")):
        out = run(*args)
        assert out.exit_code == 1 and "is a file, not a folder" in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_translate_evaluate_and_the_api_use_the_translator_pair_just_made(run, tmp_path, toy_host):
    paired = run("pair", "toytext", "toygen", "--steps", "25", "--json")
    key = json.loads(paired.output[paired.output.index("{"):])["key"]
    out = run("translate", "toytext", "toygen", "a circle", "-o", str(tmp_path / "c.png"))
    assert out.exit_code == 0 and f"using translator {key}" in out.output and "current one" in out.output
    assert "training" not in out.output and len(json.loads(run("cache", "list", "--json").output)) == 1
    api = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)
    assert api.pair("toytext", "toygen").path.stem == key
    report = api.evaluate("toytext", "toygen", samples=8, per_condition=2, features="toygen", train_if_missing=False)
    assert report.translator_path.endswith(f"{key}.safetensors")
    # explicit settings still choose another translator; `pair` with none goes back to the defaults
    assert api.pair("toytext", "toygen", steps=30).path.stem != key
    again = run("pair", "toytext", "toygen")
    assert again.exit_code == 0 and key not in again.output
    assert Hub(home=tmp_path / "home", host=toy_host, progress=False).pair("toytext", "toygen").metrics["steps"] == 150


def test_too_little_data_is_refused_and_a_failed_translator_is_not_cached(toy_hub, monkeypatch):
    from n2n_hub.errors import InputError, TrainingError
    from n2n_hub.data.recipes import PairData

    full = toy_hub.training_pairs

    def three(plan, split="train"):
        d = full(plan, split)
        return PairData(d.source[:3], d.target[:3])
    monkeypatch.setattr(toy_hub, "training_pairs", three)
    with pytest.raises(InputError, match="only 3 training pairs.*at least 32"):
        toy_hub.pair("toytext", "toygen", steps=20)
    monkeypatch.setattr(toy_hub, "training_pairs", full)

    import n2n_hub.hub

    real_train = n2n_hub.hub.train

    def diverged(*args, **kwargs):  # what a run on too little data reports: a held-out NLL of 6e16
        result = real_train(*args, **kwargs)
        result.best_val_nll = 6e16
        return result
    monkeypatch.setattr(n2n_hub.hub, "train", diverged)
    with pytest.raises(TrainingError, match="failed validation.*6e\\+16.*nothing was cached"):
        toy_hub.pair("toytext", "toygen", steps=20)
    assert toy_hub.cache.entries() == [] and not list(toy_hub.cache.root.rglob("*.ckpt.safetensors"))
