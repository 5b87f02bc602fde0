"""publish: a translator file plus the registry snippet that lets another home fetch and verify it."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch
from click.testing import CliRunner

from n2n_hub.errors import InputError, IntegrityError
from n2n_hub.hub import Hub
from n2n_hub.publish import publish
from n2n_hub.registry import Registry


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


def test_a_published_translator_is_fetched_over_http_and_verified(toy_host, toy_registry_file, tmp_path, served,
                                                                  monkeypatch):
    folder, base = served
    trained = _hub(toy_host, tmp_path / "a", [toy_registry_file]).pair("toytext", "toygen")  # the entry's settings
    pub = publish(_hub(toy_host, tmp_path / "a", []).cache, trained.metadata["key"][:10], folder, url=base)
    assert pub.published == {"url": base + pub.file.name, "sha256": pub.sha256}

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
    from n2n_hub.publish import registry_entry, snippet_text

    trained = _hub(toy_host, tmp_path / "a", [toy_registry_file]).pair("toytext", "toygen", steps=30)
    meta = dict(trained.metadata)
    meta["recipe"] = {**meta["recipe"], "registry_entry": None}
    existing, entry = registry_entry(meta)
    assert existing is None and entry["recipe"] == "dataset" and entry["source_from"] == "label"
    f = tmp_path / "whole.toml"
    f.write_text(snippet_text("toy-shapes", entry))  # the same entry, rebuilt from the file's metadata alone
    again = _hub(toy_host, tmp_path / "a", [f]).pair("toytext", "toygen", train_if_missing=False)
    assert again.path == trained.path


def test_a_snippet_without_url_points_at_the_file_beside_it_even_offline(toy_host, toy_registry_file, tmp_path):
    trained = _hub(toy_host, tmp_path / "a", [toy_registry_file]).pair("toytext", "toygen")
    pub = publish(_hub(toy_host, tmp_path / "a", []).cache, trained.metadata["key"], tmp_path / "out")
    assert pub.name == "toy-shapes" and pub.published["url"] == pub.file.name
    assert pub.snippet.read_text().splitlines()[2:] == [
        "[pairs.toy-shapes.published]", f'url = "{pub.file.name}"', f'sha256 = "{pub.sha256}"']
    fetched = _hub(toy_host, tmp_path / "b", [toy_registry_file, pub.snippet]).pair(
        "toytext", "toygen", train_if_missing=False)
    assert torch.equal(_samples(fetched), _samples(trained))


def test_publish_refuses_unknown_keys_and_local_data(toy_host, tmp_path):
    hub = _hub(toy_host, tmp_path / "a", [])
    with pytest.raises(InputError, match="no cached translator with key 'nope'"):
        publish(hub.cache, "nope", tmp_path)
    from n2n_hub.publish import registry_entry

    with pytest.raises(InputError, match="trained on local data"):
        registry_entry({"recipe": {"source": "a", "target": "b", "recipe": "dataset", "data_path": "/x"}})


def test_publish_command_writes_both_files(toy_cli_host, tmp_path):
    from n2n_hub.cli import cli

    key = Hub(host=toy_cli_host, progress=False, log=lambda m: None).pair(
        "toytext", "toygen", steps=20, n_blocks=1, hidden=8).metadata["key"]
    result = CliRunner().invoke(cli, ["publish", key[:8], "-o", str(tmp_path / "pub"), "--url",
                                      "https://example.org/t/"])
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and len(list((tmp_path / "pub").glob("*.toml"))) == 1
    bad = CliRunner().invoke(cli, ["publish", "zzz", "-o", str(tmp_path)])
    assert bad.exit_code == 1 and bad.output.startswith("Error: no cached translator with key 'zzz'")
