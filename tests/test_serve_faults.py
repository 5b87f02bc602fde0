"""The server is a trust boundary: what a caller can make it read, hold, wait for, return or say.

Every test runs a real uvicorn server on a free loopback port (traffic only to 127.0.0.1, every
loop bounded) over the toy plugin's text -> image pair.
"""

from __future__ import annotations

import json
import selectors
import shutil
import socket
import threading
import time
from dataclasses import replace

import httpx
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save as st_save
from serve_util import running, toy_hub

from n2n_hub.serve import Limits, ServeSettings, create_app
from n2n_hub.serve.access import AddressPolicy

LIMITS = Limits(max_n=8, max_inputs=4, max_samples=32, request_timeout_s=20)
KEY = "fault-key"
TEXT = {"pair": "toy-shapes", "texts": ["a circle", "a square"], "n": 2, "seed": 3}
PAIR = "toytext@base->toygen@base"

pytestmark = pytest.mark.slow  # every test here starts a real server on a loopback port


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("faults")
    hub = toy_hub(root / "home", root / "registry.toml")
    return {"hub": hub, "text": hub.pair("toytext", "toygen"), "root": root}


def app_for(world, **settings):
    limits = settings.pop("limits", LIMITS)
    return create_app(world["hub"], ServeSettings(max_delay_ms=2, limits=limits, **settings), pairs=["toy-shapes"])


@pytest.fixture(scope="module")
def server(world):
    app = app_for(world, api_key=KEY)
    with running(app) as url:
        yield url, app


def post(url, body, path="/v1/translate", **kw):
    return httpx.post(url + path, json=body, timeout=30, headers={"X-API-Key": KEY}, **kw)


def one_line(r: httpx.Response) -> str:
    msg = r.json()["error"]
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 400, msg
    return msg


# -- 5. the server reads only what its operator named ------------------------------------------
@pytest.mark.parametrize("source", ["toytext@/proc/self", "toytext@../../etc", "toytext@org/repo", "toytext@other"])
def test_an_address_off_the_allow_list_is_refused_before_anything_is_touched(server, plan_count, source):
    url, app = server
    slots = set(app.state.n2n.pool.slots)
    r = post(url, {"source": source, "target": "toygen", "texts": ["a circle"]})
    assert r.status_code == 403, r.text
    assert f"source {source!r} is not an address this server serves" in one_line(r)
    assert "--allow-address" in r.json()["error"]
    assert plan_count == [] and set(app.state.n2n.pool.slots) == slots  # nothing planned, no slot, no thread


def test_served_and_registry_addresses_are_allowed_and_unknown_experts_are_404(server, plan_count):
    url, _ = server
    for source, target in (("toytext", "toygen"), ("toytext@base", "toygen@base"), ("TOYTEXT", "toygen")):
        assert post(url, {"source": source, "target": target, "texts": ["a circle"]}).status_code == 200
    r = post(url, {"source": "nobody@/etc", "target": "toygen", "texts": ["a"]})
    assert r.status_code == 404 and "unknown expert 'nobody'" in one_line(r)


def test_allow_address_patterns_stay_within_one_path_segment():
    policy = AddressPolicy(["bert", "vaegan@animals"], ["bert@*", "segmenter:*@/srv/models/*"])
    assert policy.allows("bert") and policy.allows("BERT") and policy.allows("bert@bert-base-uncased")
    assert policy.allows("segmenter:last@/srv/models/seg1")
    for refused in ("bert@/proc/self", "bert@org/repo", "vaegan@other", "segmenter:last@/srv/models/a/b",
                    "segmenter:last@/srv/models/..", ""):
        assert not policy.allows(refused), refused


def test_the_number_of_pairs_is_bounded(world):
    app = app_for(world, limits=replace(LIMITS, max_pairs=0))
    with running(app) as url:
        r = httpx.post(url + "/v1/translate", json={"source": "toygen", "target": "toygen", "n": 1,
                                                    "latents": [[0.0, 0.0, 0.0, 0.0]]}, timeout=30)
        assert (r.status_code, r.json()["limit"]) == (503, "max_pairs"), r.text
        assert app.state.n2n.pool.slots.keys() == {PAIR}
        assert httpx.post(url + "/v1/translate", json=TEXT, timeout=30).status_code == 200  # start-up pairs serve


def test_health_without_the_key_says_up_and_ready_and_nothing_more(server):
    url, _ = server
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(url + "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    told = httpx.get(url + "/readyz", headers={"X-API-Key": KEY}).json()
    assert told["ready"] is True and [p["pair"] for p in told["pairs"]] == [PAIR]
    assert "uptime_s" in httpx.get(url + "/healthz", headers={"X-API-Key": KEY}).json()


def test_a_failed_pair_is_retried_after_its_back_off_and_readyz_reflects_it(tmp_path):
    hub = toy_hub(tmp_path / "home", tmp_path / "registry.toml")
    path = hub.pair("toytext", "toygen").path
    moved = tmp_path / "away.safetensors"
    shutil.move(path, moved)
    app = create_app(hub, ServeSettings(lazy=True, retry_failed_s=0.3, api_key=KEY, limits=LIMITS),
                     pairs=["toy-shapes"])
    slot = lambda: app.state.n2n.pool.slots[PAIR]  # noqa: E731
    with running(app, ready=False) as url:
        assert httpx.get(url + "/readyz").status_code == 200  # lazy: nothing loaded, nothing failed
        assert post(url, TEXT).status_code == 503  # starts the load
        assert slot().done.wait(30) and slot().state == "failed"
        gone = post(url, TEXT)
        assert gone.status_code == 404 and "no cached translator" in one_line(gone)
        ready = httpx.get(url + "/readyz")
        assert (ready.status_code, ready.json()) == (503, {"ready": False})  # no paths, no error texts
        told = httpx.get(url + "/readyz", headers={"X-API-Key": KEY}).json()
        assert told["pairs"][0]["state"] in ("failed", "loading")
        shutil.move(moved, path)  # the operator restores the file
        deadline = time.monotonic() + 20
        while (r := post(url, TEXT)).status_code != 200:
            assert r.status_code in (404, 503) and time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert slot().state == "ready" and httpx.get(url + "/readyz").status_code == 200


def test_a_failed_start_up_pair_is_retried_by_readiness_checks(tmp_path):
    hub = toy_hub(tmp_path / "home", tmp_path / "registry.toml")
    path = hub.pair("toytext", "toygen").path
    moved = tmp_path / "away.safetensors"
    shutil.move(path, moved)
    app = create_app(hub, ServeSettings(retry_failed_s=0.3, limits=LIMITS), pairs=["toy-shapes"])
    with running(app, ready=False) as url:
        assert app.state.n2n.pool.slots[PAIR].done.wait(30)
        assert httpx.get(url + "/readyz").status_code == 503
        shutil.move(moved, path)  # no request comes (a load balancer sends none to an unready server)
        deadline = time.monotonic() + 20
        while httpx.get(url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert httpx.post(url + "/v1/translate", json=TEXT).status_code == 200


# -- 6. slow clients are cut off ----------------------------------------------------------------
def still_open(socks: list[socket.socket], seconds: float) -> list[socket.socket]:
    """The sockets the server has not closed within ``seconds`` (all of them are closed here after)."""
    pending = set(socks)
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                try:
                    closed = key.fileobj.recv(1) == b""  # type: ignore[union-attr]
                except OSError:
                    closed = True
                if closed:
                    sel.unregister(key.fileobj)
                    pending.discard(key.fileobj)  # type: ignore[arg-type]
    for s in socks:
        s.close()
    return list(pending)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_idle_sockets_and_a_body_at_one_byte_a_second_are_cut_off_while_health_answers(world, http):
    limits = replace(LIMITS, header_timeout_s=1.0, body_timeout_s=1.5, idle_timeout_s=1.0, max_connections=64)
    app = app_for(world, limits=limits)
    with running(app, http=http) as url:
        port = int(url.rsplit(":", 1)[1])
        t0 = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
        slow_body = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow_body.sendall(b"POST /v1/translate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: 200\r\n\r\n")
        slow_head = socket.create_connection(("127.0.0.1", port), timeout=5)
        answers: dict[str, bytes] = {}

        def trickle(name: str, sock: socket.socket, data: bytes) -> None:
            got, stop = b"", time.monotonic() + 10
            for byte in data:  # one byte a second, until the server answers or hangs up (or 10 s pass)
                if time.monotonic() > stop:
                    break
                try:
                    sock.sendall(bytes([byte]))
                    sock.settimeout(1.0)
                    got = sock.recv(4096)
                    if got:
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            answers[name] = got

        threads = [threading.Thread(target=trickle, args=("body", slow_body, b'{"pair": "toy-shapes"' + b" " * 178)),
                   threading.Thread(target=trickle, args=("head", slow_head, b"GET /healthz HTTP/1.1\r\nhost: x\r\n"))]
        for th in threads:
            th.start()
        health_ms = []
        while any(th.is_alive() for th in threads) and time.monotonic() - t0 < 15:
            start = time.monotonic()
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            health_ms.append((time.monotonic() - start) * 1000)
            time.sleep(0.2)
        for th in threads:
            th.join(10)
        assert answers["body"].startswith(b"HTTP/1.1 408") and b"body_timeout_s" in answers["body"]
        assert answers["head"].startswith(b"HTTP/1.1 408")
        assert max(health_ms) < 1000, health_ms
        assert not still_open(idle, seconds=5)  # each was evicted or passed its header deadline
        assert time.monotonic() - t0 < 25
        assert httpx.post(url + "/v1/translate", json=TEXT, timeout=10).status_code == 200


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_headers_past_the_size_limit_are_refused_and_the_connection_closed(world, http):
    app = app_for(world, limits=replace(LIMITS, max_header_bytes=2048))
    with running(app, http=http) as url:
        sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 4096)
            answer = sock.recv(4096)
            assert answer.split(b" ")[1] in (b"400", b"431"), answer  # h11 says 400 itself
            assert not still_open([sock], seconds=3)
        finally:
            sock.close()
        assert httpx.get(url + "/healthz").status_code == 200


# -- 7. latents are checked on the way in and on the way out ------------------------------------
def _latents_file(x: torch.Tensor) -> dict:
    return {"latents": ("z.safetensors", st_save({"latents": x}), "application/octet-stream")}


def test_latents_out_of_range_are_400_on_every_input_path(server, world):
    url, _ = server
    c = world["text"].encode_source(["a circle"])
    for bad, words in ((torch.full_like(c, 1e30), "values up to 1e+30"), (c * float("nan"), "NaN or infinite")):
        raw = json.dumps({"pair": "toy-shapes", "latents": bad.tolist()}).encode()
        r = httpx.post(url + "/v1/translate", content=raw, headers={"X-API-Key": KEY})
        assert r.status_code == 400 and "'latents' holds" in one_line(r) and words in r.json()["error"]
        up = httpx.post(url + "/v1/translate/upload", data={"pair": "toy-shapes"}, files=_latents_file(bad),
                        headers={"X-API-Key": KEY})
        assert up.status_code == 400 and words in one_line(up)
    z = torch.zeros(1, 4)
    for bad, words in ((z + 1e30, "values up to 1e+30"), (z * float("nan"), "NaN or infinite")):
        body = {"pair": "toy-shapes", "texts": ["a square"],
                "exemplar": {"texts": ["a circle"], "target_latents": bad.tolist()}}
        r = httpx.post(url + "/v1/transfer", content=json.dumps(body).encode(), headers={"X-API-Key": KEY})
        assert r.status_code == 400 and "'target_latents' holds" in one_line(r) and words in r.json()["error"]
    assert post(url, TEXT).status_code == 200


def test_latents_out_of_range_on_the_way_out_say_whose_fault(server, world):
    url, app = server
    module = app.state.n2n.pool.slots[PAIR].translator.module
    real = module.sample_inverse  # the flow call of sampling and transfer
    module.sample_inverse = lambda v, c: real(v, c) * 1e9  # a translator gone wrong
    try:
        ours = post(url, TEXT)
        theirs = post(url, {"pair": "toy-shapes", "latents": world["text"].encode_source(["a circle"]).tolist()})
        transfer = post(url, {"pair": "toy-shapes", "texts": ["a square"],
                              "exemplar": {"texts": ["a circle"], "target_latents": [[0.0] * 4]}}, path="/v1/transfer")
    finally:
        module.sample_inverse = real
    assert ours.status_code == 500 and "fault of this server's translator" in one_line(ours)
    assert theirs.status_code == 422 and "the latents sent translate to values up to" in one_line(theirs)
    assert transfer.status_code == 422 and "the latents sent" in one_line(transfer)
    assert post(url, TEXT).status_code == 200


# -- 8. no tracebacks, no 500 for bad input ------------------------------------------------------
@pytest.mark.parametrize("raw, words", [
    (b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    (json.dumps({**TEXT, "n": None}).encode(), "'n' must be an integer, got None"),
    (json.dumps({**TEXT, "n": "²"}).encode(), "'n' must be an integer"),
    (json.dumps({**TEXT, "n": "9" * 5000}).encode(), "'n' must be an integer"),
    (json.dumps({**TEXT, "temperature": ["x" * 10_000]}).encode(), "temperature must be a number"),
    (json.dumps({"pair": "toy-shapes", "latents": 5}).encode(), "one row per input"),
    (json.dumps({"pair": "toy-shapes", "latents": [[10 ** 400]]}).encode(), "'latents' must be"),
    (json.dumps({"pair": "toy-shapes", "format": {"a": 1}, "texts": ["a"]}).encode(), "unknown format"),
])
def test_bad_input_is_a_4xx_line_never_a_500(server, raw, words):
    url, _ = server
    r = httpx.post(url + "/v1/translate", content=raw, headers={"X-API-Key": KEY, "content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text[:300]
    assert words in one_line(r)


def test_a_zero_dimensional_latents_upload_is_a_4xx_line(server):
    url, _ = server
    r = httpx.post(url + "/v1/translate/upload", data={"pair": "toy-shapes"}, files=_latents_file(torch.tensor(1.0)),
                   headers={"X-API-Key": KEY})
    assert r.status_code == 400 and "one row per input" in one_line(r)


def test_serve_with_an_unknown_pair_or_a_busy_port_is_one_line_and_exit_1(toy_cli_host, toy_registry_file):
    from n2n_hub.cli.commands import cli

    r = CliRunner().invoke(cli, ["serve", "nosuch-pair", "--port", "0"])
    assert r.exit_code == 1 and "unknown pair 'nosuch-pair'" in r.output
    assert len(r.output.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert r.exit_code == 1 and f"port {port} on 127.0.0.1 is already in use" in r.output
    assert len(r.output.strip().splitlines()) == 1

