"""publish: a translator file plus the registry snippet that lets another home fetch and verify it."""

from __future__ import annotations

import functools
import re
import http.server
import threading

import pytest
import torch
from click.testing import CliRunner

from n2n_hub.errors import InputError, IntegrityError
from n2n_hub.hub import Hub
from n2n_hub.translators.publish import publish
from n2n_hub.catalog.registry import Registry


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on a free 127.0.0.1 port; yields (folder, base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _hub(host, home, registry_files):
    return Hub(home=home, host=host, progress=False, log=lambda m: None, registry=Registry.load(registry_files))


def _samples(t):
    return t.translate(["circle", "a square"], n=3, seed=0, decode=False).latents


@pytest.mark.slow
def test_a_published_translator_is_fetched_over_http_and_verified(toy_host, toy_registry_file, trained_home, tmp_path,
                                                                  served, monkeypatch):
    folder, base = served
    trained = _hub(toy_host, trained_home, [toy_registry_file]).pair("toytext", "toygen")  # the entry's settings
    pub = publish(_hub(toy_host, trained_home, []).cache, trained.metadata["key"][:10], folder, url=base)
    assert pub.published == {"url": base + pub.file.name, "sha256": pub.sha256, "size": pub.file.stat().st_size}

    monkeypatch.delenv("HF_HUB_OFFLINE")
    fetched = _hub(toy_host, tmp_path / "b", [toy_registry_file, pub.snippet]).pair(
        "toytext", "toygen", train_if_missing=False)
    assert fetched.path.is_relative_to(tmp_path / "b")  # in the other home's cache now
    assert fetched.metadata["key"] == trained.metadata["key"]
    assert torch.equal(_samples(fetched), _samples(trained))

    pub.file.write_bytes(pub.file.read_bytes()[:-8] + b"tampered")
    with pytest.raises(IntegrityError, match="refusing it"):
        _hub(toy_host, tmp_path / "c", [toy_registry_file, pub.snippet]).pair("toytext", "toygen",
                                                                              train_if_missing=False)


def test_a_whole_entry_is_written_for_a_pair_without_one_and_reproduces_its_key(toy_host, toy_registry_file,
                                                                                tmp_path):
    from n2n_hub.translators.publish import registry_entry, snippet_text

    trained = _hub(toy_host, tmp_path / "a", [toy_registry_file]).pair("toytext", "toygen", steps=30)
    meta = dict(trained.metadata)
    meta["recipe"] = {**meta["recipe"], "registry_entry": None}
    existing, entry = registry_entry(meta)
    assert existing is None and entry["recipe"] == "dataset" and entry["source_from"] == "label"
    f = tmp_path / "whole.toml"
    f.write_text(snippet_text("toy-shapes", entry))  # the same entry, rebuilt from the file's metadata alone
    again = _hub(toy_host, tmp_path / "a", [f]).pair("toytext", "toygen", train_if_missing=False)
    assert again.path == trained.path


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_snippet_without_url_points_at_the_file_beside_it_even_offline(toy_host, toy_registry_file, trained_home,
                                                                         tmp_path):
    trained = _hub(toy_host, trained_home, [toy_registry_file]).pair("toytext", "toygen")
    pub = publish(_hub(toy_host, trained_home, []).cache, trained.metadata["key"], tmp_path / "out")
    assert pub.name == "toy-shapes" and pub.published["url"] == pub.file.name
    assert pub.snippet.read_text().splitlines()[2:] == [
        "[pairs.toy-shapes.published]", f'url = "{pub.file.name}"', f'sha256 = "{pub.sha256}"',
        f"size = {pub.file.stat().st_size}"]
    fetched = _hub(toy_host, tmp_path / "b", [toy_registry_file, pub.snippet]).pair(
        "toytext", "toygen", train_if_missing=False)
    assert torch.equal(_samples(fetched), _samples(trained))

    logs: list[str] = []
    forced = Hub(home=tmp_path / "b", host=toy_host, progress=False, log=logs.append,
                 registry=Registry.load([toy_registry_file, pub.snippet])).pair("toytext", "toygen", force=True)
    assert any(m.startswith("training a cinn translator") for m in logs)  # --force trains despite the published file
    assert not any("fetching" in m for m in logs) and forced.metadata["key"] == trained.metadata["key"]


def test_publish_refuses_unknown_keys_and_local_data(toy_host, tmp_path):
    hub = _hub(toy_host, tmp_path / "a", [])
    with pytest.raises(InputError, match="no cached translator with key 'nope'"):
        publish(hub.cache, "nope", tmp_path)
    from n2n_hub.translators.publish import registry_entry

    with pytest.raises(InputError, match="trained on local data"):
        registry_entry({"recipe": {"source": "a", "target": "b", "recipe": "dataset", "data_path": "/x"}})


def test_publish_command_writes_both_files(toy_cli_host, tmp_path):
    from n2n_hub.cli.commands import cli

    key = Hub(host=toy_cli_host, progress=False, log=lambda m: None).pair(
        "toytext", "toygen", steps=20, n_blocks=1, hidden=8).metadata["key"]
    result = CliRunner().invoke(cli, ["publish", key[:8], "-o", str(tmp_path / "pub"), "--url",
                                      "https://example.org/t/"])
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and len(list((tmp_path / "pub").glob("*.toml"))) == 1
    bad = CliRunner().invoke(cli, ["publish", "zzz", "-o", str(tmp_path)])
    assert bad.exit_code == 1 and bad.output.startswith("Error: no cached translator with key 'zzz'")


def test_the_default_pair_ships_a_translator_fetched_offline_and_verified(tmp_path):
    """The README's first command gets its translator from the package through the real fetch path."""
    import urllib.parse
    from pathlib import Path

    from n2n_hub.base.atomic import sha256_file

    entry = Registry.load().entries["bert-vaegan-animals"]
    assert entry.published is not None and entry.published.url.startswith("file:")
    shipped = Path(urllib.parse.urlparse(entry.published.url).path)
    assert shipped.parent.name == "published" and sha256_file(shipped) == entry.published.sha256

    logs: list[str] = []
    hub = Hub(home=tmp_path / "h", progress=False, log=logs.append)  # HF_HUB_OFFLINE=1: a local file still fetches
    t = hub.pair("bert", "vaegan", train_if_missing=False)
    assert any("fetching the published translator" in m for m in logs)
    assert t.path.is_relative_to(tmp_path / "h") and sha256_file(t.path) == entry.published.sha256
    images = t.translate(["a photo of a zebra"], n=2, seed=0).outputs
    assert images.shape[0] == 2 and bool(torch.isfinite(images).all())


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_the_release_script_ships_a_registry_pair_and_rewrites_its_published_table(toy_cli_host, toy_registry_file,
                                                                                   tmp_path):
    """bench/release_default.py, run on the toy pair: the shipped file and its table, which a fresh home fetches."""
    import importlib.util
    from pathlib import Path

    from conftest import TOY_REGISTRY
    from n2n_hub.base.atomic import sha256_file

    script = Path(__file__).resolve().parent.parent / "bench" / "release_default.py"
    spec = importlib.util.spec_from_file_location("release_default", script)
    release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(release)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "old.safetensors").write_bytes(b"the translator being replaced")
    logs: list[str] = []
    pub = release.release(("toytext", "toygen"), home=tmp_path / "release", shipped_dir=shipped,
                          registry_path=toy_registry_file, log=logs.append)
    assert sorted(p.name for p in shipped.iterdir()) == [pub.file.name]  # the old file is gone, no snippet left
    assert any(m.startswith("training a cinn translator") for m in logs)
    table = f'[pairs.toy-shapes.published]\n# written by `python bench/release_default.py`'
    again = release.release(("toytext", "toygen"), home=tmp_path / "release", shipped_dir=shipped,
                            registry_path=toy_registry_file, log=logs.append)  # from the cache: the same file
    text = toy_registry_file.read_text()
    assert again.sha256 == pub.sha256 and text.count(table) == 1 and f'url = "shipped/{pub.file.name}"' in text
    assert text.startswith(TOY_REGISTRY.rstrip("\n"))  # the rest of the registry is kept

    fetched: list[str] = []
    t = Hub(home=tmp_path / "user", progress=False, log=fetched.append).pair("toytext", "toygen",
                                                                          train_if_missing=False)
    assert any("fetching the published translator" in m for m in fetched) and sha256_file(t.path) == pub.sha256


class _StandInHub(http.server.BaseHTTPRequestHandler):
    """The Hugging Face endpoints an upload of small files uses: the card's metadata check, preupload
    and commit. The metadata check answers as the hub does, with our offline rendering of its rules."""

    received: dict[str, bytes] = {}
    validated: list[str] = []

    def log_message(self, *args):  # type: ignore[no-untyped-def]
        pass

    def _json(self, obj, code=200):  # type: ignore[no-untyped-def]
        import json

        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # type: ignore[no-untyped-def]
        import base64
        import json

        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        repo = self.path.split("/")[3:5]
        if self.path == "/api/validate-yaml":
            from n2n_hub.translators.card import check_card

            content = json.loads(data)["content"]
            _StandInHub.validated.append(content)
            try:
                check_card(content)
            except InputError as e:
                self._json({"errors": [{"message": str(e)}]}, 400)
            else:
                self._json({"errors": [], "warnings": []})
        elif "/preupload/" in self.path:
            files = json.loads(data)["files"]
            self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        elif "/commit/" in self.path:
            for line in data.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    _StandInHub.received["/".join(repo) + ":" + item["value"]["path"]] = base64.b64decode(
                        item["value"]["content"])
            host = f"http://127.0.0.1:{self.server.server_address[1]}"
            self._json({"commitUrl": f"{host}/{'/'.join(repo)}/commit/{'a' * 40}", "commitOid": "a" * 40,
                        "pullRequestUrl": None})
        else:
            self._json({"error": "not here"}, 404)


@pytest.mark.slow
def test_publish_uploads_through_huggingface_hub_to_a_local_endpoint(toy_host, tmp_path, monkeypatch):
    import huggingface_hub.constants

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandInHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    _StandInHub.validated.clear()
    try:
        hub = _hub(toy_host, tmp_path / "a", [])
        key = hub.pair("toytext", "toygen", steps=10, n_blocks=1, hidden=8).metadata["key"]
        pub = publish(hub.cache, key, tmp_path / "out", hf_repo="me/translators", upload=True,
                      endpoint=endpoint, token="hf_test")
        # a card the hub rejects stops the upload with the hub's reason, on one line
        import n2n_hub.translators.publish as publishing

        monkeypatch.setattr(publishing, "check_card", lambda text: None)
        monkeypatch.setattr(publishing, "model_card", lambda *a, **k: "---\nlicense: MIT License\ntags: [n2n-hub]\n"
                                                                     "n2n_hub: {}\n---\n# x\n")
        with pytest.raises(InputError, match=r"upload of .* failed: .*'MIT License' is not a Hugging Face licence id")\
                as rejected:
            publish(hub.cache, key, tmp_path / "out3", hf_repo="me/translators", upload=True, endpoint=endpoint,
                    token="hf_test")
        assert "\n" not in str(rejected.value)
    finally:
        server.shutdown()
        server.server_close()
    assert pub.published == {"hf_repo": "me/translators", "hf_file": pub.file.name, "sha256": pub.sha256,
                             "size": pub.file.stat().st_size}
    assert _StandInHub.received[f"me/translators:{pub.file.name}"] == pub.file.read_bytes()
    card = _StandInHub.received["me/translators:README.md"]  # the card arrives with the file, as the repo's card
    assert card == pub.card.read_bytes() and card.startswith(b"---\n") and b"- n2n-hub" in card
    assert _StandInHub.validated[0] == card.decode()  # huggingface_hub had the hub check its metadata first
    assert 'hf_repo = "me/translators"' in pub.snippet.read_text()
    with pytest.raises(InputError, match="--upload needs --hf-repo"):
        publish(hub.cache, key, tmp_path / "out2", upload=True)


# -- every input checked before any work; every snippet loads ------------------------------
BAD_INPUTS = [
    (["--url", "https://example.org/t/\nx = 1"], r"--url .* must not contain spaces or control characters"),
    (["--url", "https://example.org/my folder/"], r"must not contain spaces"),
    (["--url", "ftp://example.org/t/"], r"must be an http\(s\):// or file: URL"),
    (["--url", "example.org/t/"], r"must be an http\(s\):// or file: URL"),
    (["--url", "https:///t/"], r"names no host"),
    (["--url", "http://[::1/x"], r"is malformed"),
    (["--name", "a.b"], r"--name 'a.b' is not a registry entry name"),
    (["--name", "../../x"], r"--name '../../x' is not a registry entry name"),
    (["--name", ""], r"--name '' is not a registry entry name"),
    (["--name", 'x"]\n[pairs.y'], r"is not a registry entry name"),
    (["--hf-repo", "not a repo"], r"--hf-repo 'not a repo' is not a Hugging Face repository id"),
    (["--hf-repo", "me/t", "--hf-file", "../x.safetensors"], r"--hf-file '../x.safetensors' is not a file path"),
    (["--hf-repo", "me/t", "--hf-file", "README.md"], r"is not a file path inside the repository"),
    (["--hf-repo", "me/t", "--url", "https://example.org/"], r"give --url or --hf-repo, not both"),
]


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_publish_refuses_each_bad_input_in_one_line_before_any_work(toy_cli_host, tmp_path):
    from n2n_hub.cli.commands import cli

    key = Hub(host=toy_cli_host, progress=False, log=lambda m: None).pair(
        "toytext", "toygen", steps=20, n_blocks=1, hidden=8).metadata["key"]
    out = tmp_path / "pub"
    for args, message in BAD_INPUTS:
        result = CliRunner().invoke(cli, ["publish", key[:8], "-o", str(out), *args])
        assert result.exit_code == 1, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: "), result.output
        assert re.search(message, result.output), (message, result.output)
        assert not out.exists(), args  # nothing made, not even the folder

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    under_a_file = a_file / "sub"
    readme = tmp_path / "project"
    readme.mkdir()
    (readme / "README.md").write_text("# my project\n")
    for where, message in ((a_file, r"-o .*a-file is a file, not a folder"),
                           (under_a_file, r"-o .*sub is not a folder we can write to"),
                           (readme, r"README.md exists and is not an n2n-hub model card")):
        result = CliRunner().invoke(cli, ["publish", key[:8], "-o", str(where)])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert re.search(message, result.output), (message, result.output)
    assert a_file.read_text() == "not a folder" and (readme / "README.md").read_text() == "# my project\n"
    assert sorted(p.name for p in readme.iterdir()) == ["README.md"]  # the probe file is gone too


def test_a_folder_url_gets_the_file_name_and_the_snippet_loads_with_size(toy_host, tmp_path):
    hub = _hub(toy_host, tmp_path / "a", [])
    key = hub.pair("toytext", "toygen", steps=10, n_blocks=1, hidden=8).metadata["key"]
    pub = publish(hub.cache, key, tmp_path / "out", url="https://example.org/t%20x/?v=1#", name="my_pair-2")
    entry = Registry.load([pub.snippet]).entries["my_pair-2"]  # a whole entry: loads on its own
    assert entry.published.url == "https://example.org/t%20x/?v=1#" and entry.published.size == pub.file.stat().st_size
    again = publish(hub.cache, key, tmp_path / "out", url="https://example.org/t/")
    assert Registry.load([again.snippet]).entries[again.name].published.url == "https://example.org/t/" + pub.file.name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["README.md", pub.file.name, "my_pair-2.toml", again.snippet.name])


def test_toml_strings_are_escaped_so_every_character_reads_back():
    import sys

    from n2n_hub.translators.publish import snippet_text, toml_string

    tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")
    every = "".join(chr(c) for c in range(0x80)) + 'é→😀"\\\'"""\\u0000[pairs.x]\n'
    assert tomllib.loads(f"a = {toml_string(every)}")["a"] == every
    for c in range(0x80):
        assert tomllib.loads(f"a = {toml_string(chr(c))}")["a"] == chr(c), c
    entry = {"source": "a\"b", "target": "c\nd", "recipe": "dataset", "bridges": ["x\\y"],
             "options": {"augment": ["hflip"], "weights": {"a b": 1.5, "c": [1, 2]}},
             "flow": {"n_blocks": 2}, "training": {"lr": 1e-05}}
    assert tomllib.loads(snippet_text("p", entry)) == {"pairs": {"p": entry}}
    with pytest.raises(InputError, match="not a registry entry name"):
        snippet_text("a.b", entry)


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_snippet_that_would_not_load_is_never_left_behind(toy_host, tmp_path, monkeypatch):
    import n2n_hub.translators.publish as publishing
    from n2n_hub.errors import RegistryError

    hub = _hub(toy_host, tmp_path / "a", [])
    key = hub.pair("toytext", "toygen", steps=10, n_blocks=1, hidden=8).metadata["key"]
    first = publish(hub.cache, key, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

    def refuse(path, key, raw):  # type: ignore[no-untyped-def]
        raise RegistryError(f"{path}: [pairs.{key}] refused")

    monkeypatch.setattr(publishing, "parse_entry", refuse)
    with pytest.raises(InputError, match=r"the registry snippet for 'toytext-base-toygen-base' would not load \(\S*out/toytext-base-toygen-base"
                                         r"\.toml: \[pairs.toytext-base-toygen-base\] refused\)"):
        publish(hub.cache, key, tmp_path / "out", url="https://example.org/t/")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before  # the last good one stays
    with pytest.raises(InputError, match="would not load"):
        publish(hub.cache, key, tmp_path / "fresh")
    assert not any((tmp_path / "fresh").glob("*.toml")) and not any((tmp_path / "fresh").glob("*.safetensors"))
    assert first.snippet.is_file()
