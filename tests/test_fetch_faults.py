"""Downloads of published translators are bounded and owned; registry URLs keep their meaning when merged.

Each fault is injected the way it happens: a loopback HTTP server that streams forever, one
that trickles a byte at a time, one that answers with bytes that are not HTTP, and a
`cache gc` run while a download is in progress.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from n2n_hub.base.atomic import sha256_file
from n2n_hub.catalog.registry import Published, Registry, shipped_registry_path
from n2n_hub.errors import OfflineError, RegistryError
from n2n_hub.translators.store import TranslatorStore

KEY = "0123456789abcdef0123456789abcdef"
pytestmark = pytest.mark.slow  # loopback HTTP servers


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """These servers are on loopback: let the store fetch."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


class _Server:
    """A loopback HTTP server whose handler is a function of (handler, path)."""

    def __init__(self, respond):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/t.safetensors"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        outer.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def make(respond):
        s = _Server(respond)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _endless(handler):
    handler.send_response(200)
    handler.end_headers()
    chunk = b"\0" * 65536
    for _ in range(100_000):  # bounded: 6.5 GB, far past any cap below
        handler.wfile.write(chunk)


def test_an_endless_body_is_stopped_at_the_registry_size(server, tmp_path):
    s = server(_endless)
    store = TranslatorStore(tmp_path / "translators")
    start = time.monotonic()
    with pytest.raises(OfflineError, match="more than the 1000000 bytes"):
        store.fetch(Published("0" * 64, s.url, size=1_000_000), KEY, "a--b")
    assert time.monotonic() - start < 10
    assert store.find(KEY) is None
    assert not any((tmp_path / "translators").rglob("download.safetensors"))  # nothing left behind


def test_a_declared_length_over_the_cap_is_refused_before_reading(server, tmp_path):
    def declared(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**12))
        handler.end_headers()

    s = server(declared)
    with pytest.raises(OfflineError, match="declares 1000000000000 bytes"):
        TranslatorStore(tmp_path / "t").fetch(Published("0" * 64, s.url, size=1000), KEY, "a--b")


def test_a_trickling_remote_meets_the_total_deadline(server, tmp_path):
    def trickle(handler):
        handler.send_response(200)
        handler.end_headers()
        for _ in range(200):  # bounded: 40 s at most
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)

    s = server(trickle)
    store = TranslatorStore(tmp_path / "t")
    store.fetch_deadline_s = 1.0
    start = time.monotonic()
    with pytest.raises(OfflineError, match="not done after 1 s"):
        store.fetch(Published("0" * 64, s.url), KEY, "a--b")
    assert time.monotonic() - start < 5


def test_bytes_that_are_not_http_never_reach_the_terminal(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"\x1b[31mNOT HTTP\x07\x00 at all\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    try:
        with pytest.raises(OfflineError) as err:
            TranslatorStore(tmp_path / "t").fetch(Published("0" * 64, url), KEY, "a--b")
    finally:
        listener.close()
    text = str(err.value)
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert len(text.splitlines()) == 1


def test_cache_gc_leaves_a_download_in_progress_alone(server, toy_hub, tmp_path):
    made = toy_hub.pair("toytext", "toygen")
    body = made.path.read_bytes()
    digest = sha256_file(made.path)
    store = TranslatorStore(tmp_path / "other-home" / "translators")
    key = made.path.name.split(".")[0]
    started = threading.Event()

    def slowly(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:100])
        handler.wfile.flush()
        started.set()
        time.sleep(1.0)  # gc runs now
        handler.wfile.write(body[100:])

    s = server(slowly)
    outcome = {}

    def fetch():
        try:
            outcome["path"] = store.fetch(Published(digest, s.url), key, "toytext--toygen")
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    worker = threading.Thread(target=fetch)
    worker.start()
    assert started.wait(10)
    removed = store.gc()
    worker.join(20)
    assert removed == []
    assert "error" not in outcome, outcome.get("error")
    assert sha256_file(outcome["path"]) == digest


def test_a_malformed_registry_url_is_one_line_naming_the_file(tmp_path):
    reg = tmp_path / "r.toml"
    reg.write_text('[pairs.x]\nsource = "a"\ntarget = "b"\nrecipe = "dataset"\ndataset = "d"\n'
                   '[pairs.x.published]\nsha256 = "' + "0" * 64 + '"\nurl = "http://[::1/x"\n')
    with pytest.raises(RegistryError, match=r"r.toml.*malformed"):
        Registry.load([reg])


def test_touching_a_builtin_entry_keeps_its_shipped_translator(tmp_path):
    """A user file that sets one key merges over the shipped entry; the relative URL still means the package."""
    user = tmp_path / "user.toml"
    user.write_text("[pairs.bert-vaegan-animals]\ntemperature = 0.7\n")
    entry = Registry.load([shipped_registry_path(), user]).entries["bert-vaegan-animals"]
    assert entry.temperature == 0.7
    url = entry.published.url
    assert url.startswith("file:")
    shipped = Path(url.removeprefix("file://"))
    assert shipped.is_file() and shipped.parent.name == "published"


def test_a_plugin_cannot_replace_a_builtin_entry(tmp_path):
    table = {"source": "bert", "target": "vaegan", "recipe": "dataset", "dataset": "animals"}
    reg = Registry.load([shipped_registry_path(), tmp_path / "none.toml"],
                        plugin_pairs={"bert-vaegan-animals": ("sneaky", table)})
    assert reg.entries["bert-vaegan-animals"].origin == str(shipped_registry_path())
    assert [(name, plugin) for name, plugin, _ in reg.conflicts] == [("bert-vaegan-animals", "sneaky")]


def test_the_shipped_translator_is_copied_not_downloaded(tmp_path):
    """The fetch path also serves the packaged file (a file URL), within the same bounds."""
    entry = Registry.load([shipped_registry_path()]).entries["bert-vaegan-animals"]
    store = TranslatorStore(tmp_path / "t")
    path = store.fetch(entry.published, KEY, "x--y")
    assert sha256_file(path) == entry.published.sha256
    shutil.rmtree(tmp_path / "t")
