"""`n2n-hub serve`: a real uvicorn server on a free loopback port, over the toy plugin's experts."""

from __future__ import annotations

import base64
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from serve_util import running, toy_hub

from n2n_hub.serve import Limits, ServeSettings, create_app

pytestmark = pytest.mark.slow  # every test talks to a real server on a port

LIMITS = Limits(max_n=16, max_inputs=4, max_samples=32, max_text_chars=40, max_image_bytes=3000,
                max_image_pixels=64 * 64, max_body_bytes=60_000, request_timeout_s=20, max_queue=64)
KEY = "s3cret-key"


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The toy hub with two cached translators: text -> image (registry pair) and image -> image."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve")
    hub = toy_hub(root / "home", root / "registry.toml")
    text_pair = hub.pair("toytext", "toygen")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        (folder / f"{i}.png").write_bytes(png(rng.integers(0, 255, (4, 4))))
    image_pair = hub.pair("toygen", "toygen", data=folder, steps=30, n_blocks=2, hidden=16)
    return {"hub": hub, "text": text_pair, "image": image_pair, "root": root}


def make_app(world, **settings):
    limits = settings.pop("limits", LIMITS)
    s = ServeSettings(**{"max_batch": 8, "max_delay_ms": 5, "limits": limits, **settings})
    return create_app(world["hub"], s, pairs=["toy-shapes"], translators=[world["image"]])


@pytest.fixture(scope="module")
def server(world):
    """Batching on (requests wait up to 150 ms for company), API key off."""
    app = make_app(world, max_delay_ms=150)
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def unbatched(world):
    app = make_app(world, max_batch=1, max_delay_ms=0)
    with running(app) as url:
        yield url, app


def post(url: str, body, path: str = "/v1/translate", **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30, **kw)


TEXT = {"pair": "toy-shapes", "texts": ["a circle", "a square"], "n": 3, "seed": 7}


# -- listing ------------------------------------------------------------------------------
def test_lists_experts_and_the_pairs_it_serves(server):
    url, _ = server
    experts = httpx.get(url + "/v1/experts").json()
    assert {e["id"] for e in experts} == {"toytext", "toygen", "toypix"}
    pairs = httpx.get(url + "/v1/pairs").json()
    served = {p["pair"]: p for p in pairs["served"]}
    assert served["toytext@base->toygen@base"]["state"] == "ready"
    assert served["toytext@base->toygen@base"]["name"] == "toy-shapes"
    assert served["toygen@base->toygen@base"]["source_domain"] == "image"
    assert [e["name"] for e in pairs["registry"]] == ["toy-shapes"]
    assert pairs["allow_train"] is False


def test_openapi_page_documents_every_route(server):
    url, _ = server
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    for route in ("/v1/translate", "/v1/translate/upload", "/v1/transfer", "/v1/pairs", "/v1/experts", "/healthz", "/readyz",
                  "/metrics"):
        assert route in paths
    schema = paths["/v1/translate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"texts", "n", "temperature", "seed", "format"} <= set(schema["properties"])


# -- translating --------------------------------------------------------------------------
def test_translate_texts_gives_the_python_apis_latents_and_a_grid(server, world):
    url, _ = server
    r = post(url, {**TEXT, "include_latents": True, "samples": True})
    assert r.status_code == 200, r.text
    d = r.json()
    want = world["text"].translate(TEXT["texts"], n=3, seed=7)
    assert torch.allclose(torch.tensor(d["latents"]), want.latents, atol=1e-6)
    assert d["latent_shape"] == [2, 3, 4]
    assert [row["input"] for row in d["results"]] == TEXT["texts"]
    assert all(len(row["samples"]) == 3 and len(row["images_png"]) == 3 for row in d["results"])
    grid = Image.open(io.BytesIO(base64.b64decode(d["grid_png"])))
    # 4x4 tiles enlarged to 64 px, 2 px padding: 3 columns, 2 rows
    assert grid.size == (3 * 66 + 2, 2 * 66 + 2)
    one = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["results"][1]["images_png"][2]))))
    expected = ((want.outputs[5, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(one, expected)  # per-sample PNGs keep the target's resolution


def test_png_and_safetensors_formats(server, world):
    url, _ = server
    r = post(url, {**TEXT, "format": "png"})
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (200, 134)
    r = post(url, {**TEXT, "source": "toytext", "target": "toygen", "pair": None, "format": "safetensors"})
    assert r.status_code == 200, r.text
    latents = st_load(r.content)["latents"]
    assert torch.allclose(latents, world["text"].translate(TEXT["texts"], n=3, seed=7).latents, atol=1e-6)


def test_seeded_requests_are_byte_identical_and_seeds_matter(server):
    url, _ = server
    a, b = post(url, {**TEXT, "format": "png"}), post(url, {**TEXT, "format": "png"})
    assert a.content == b.content
    assert post(url, {**TEXT, "format": "png", "seed": 8}).content != a.content
    assert post(url, {**TEXT, "format": "json"}).content == post(url, {**TEXT, "format": "json"}).content


def test_temperature_zero_gives_the_same_sample_in_every_column(server):
    url, _ = server
    d = post(url, {**TEXT, "temperature": 0, "include_latents": True}).json()
    lat = torch.tensor(d["latents"])
    assert d["temperature"] == 0
    assert torch.allclose(lat[:, :1].expand_as(lat), lat)
    assert not torch.allclose(lat[0], lat[1])


def test_translate_uploaded_images_multipart_and_base64(server, world):
    url, _ = server
    rng = np.random.default_rng(3)
    imgs = [png(rng.integers(0, 255, (4, 4))) for _ in range(2)]
    files = [("images", (f"im{i}.png", b, "image/png")) for i, b in enumerate(imgs)]
    form = {"source": "toygen", "target": "toygen", "n": "2", "seed": "1"}
    r = httpx.post(url + "/v1/translate/upload", data={**form, "include_latents": "true"}, files=files)
    assert r.status_code == 200, r.text
    d = r.json()
    assert [row["input"] for row in d["results"]] == ["im0.png", "im1.png"]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(io.BytesIO(b)), dtype=np.float32))[None] for b in imgs])
    want = world["image"].translate(x / 127.5 - 1, n=2, seed=1)
    assert torch.allclose(torch.tensor(d["latents"]), want.latents, atol=1e-6)
    files = []  # the same files read from disk, as the command line reads them
    for i, b in enumerate(imgs):
        files.append(world["root"] / f"upload-{i}.png")
        files[-1].write_bytes(b)
    assert torch.allclose(torch.tensor(d["latents"]), world["image"].translate(files, n=2, seed=1).latents, atol=1e-6)
    b64 = post(url, {"source": "toygen", "target": "toygen", "n": 2, "seed": 1, "include_latents": True,
                     "images": [base64.b64encode(b).decode() for b in imgs]}).json()
    assert b64["latents"] == d["latents"]


def test_translate_source_latents_as_json_or_safetensors(server, world):
    url, _ = server
    t = world["text"]
    c = t.encode_source(TEXT["texts"])
    r = post(url, {"pair": "toy-shapes", "latents": c.tolist(), "n": 3, "seed": 7, "include_latents": True})
    assert r.status_code == 200, r.text
    want = t.translate(TEXT["texts"], n=3, seed=7).latents
    assert torch.allclose(torch.tensor(r.json()["latents"]), want, atol=1e-6)
    up = httpx.post(url + "/v1/translate/upload", data={"pair": "toy-shapes", "n": "3", "seed": "7", "format": "safetensors"},
                    files={"latents": ("c.safetensors", st_save({"latents": c}), "application/octet-stream")})
    assert up.status_code == 200, up.text
    assert torch.allclose(st_load(up.content)["latents"], want, atol=1e-6)


def test_transfer_keeps_the_exemplars_residual_under_a_new_condition(server, world):
    url, app = server
    t = world["text"]
    ex = post(url, {"pair": "toy-shapes", "texts": ["a circle", "a square"], "n": 1, "seed": 5,
                    "include_latents": True}).json()
    z_ex = torch.tensor(ex["latents"])[:, 0]
    body = {"pair": "toy-shapes", "texts": ["a triangle", "a square"], "include_latents": True,
            "exemplar": {"texts": ["a circle", "a square"], "target_latents": z_ex.tolist()}}
    transfers = app.state.n2n.calls["transfer"]
    r = post(url, body, path="/v1/transfer")
    assert r.status_code == 200, r.text
    assert app.state.n2n.calls["transfer"] == transfers + 1  # it went through the pair's batch queue
    got = torch.tensor(r.json()["latents"])
    assert torch.allclose(got, t.transfer(z_ex, ["a circle", "a square"], ["a triangle", "a square"]), atol=1e-5)
    assert torch.allclose(got[1], z_ex[1], atol=1e-4)  # same condition: the exemplar comes back
    assert r.json()["grid_png"]
    bad = post(url, {**body, "exemplar": {"texts": ["a circle"], "target_latents": z_ex.tolist()}}, path="/v1/transfer")
    assert bad.status_code == 400 and "one of each" in bad.json()["error"]


# -- limits and bad input -------------------------------------------------------------------
@pytest.mark.parametrize("body, status, limit", [
    ({"n": 17}, 413, "max_n"),
    ({"texts": ["a"] * 5, "n": 1}, 413, "max_inputs"),
    ({"texts": ["a"] * 4, "n": 9}, 413, "max_samples"),
    ({"texts": ["x" * 41]}, 413, "max_text_chars"),
    ({"texts": ["y" * 30] * 4, "latents": None, "pair": "p" * 70_000}, 413, "max_body_bytes"),
])
def test_limits_are_4xx_naming_the_limit(server, body, status, limit):
    url, _ = server
    r = post(url, {**TEXT, **body})
    assert r.status_code == status, r.text
    assert r.json()["limit"] == limit
    assert str(LIMITS.__dict__[limit]) in r.json()["error"]


def test_image_bytes_and_pixels_are_limited(server):
    url, _ = server
    big = png(np.random.default_rng(0).integers(0, 255, (80, 80)))  # 6400 pixels, > 3000 bytes
    flat = png(np.zeros((70, 70)))  # small file, too many pixels
    assert len(flat) < LIMITS.max_image_bytes < len(big)
    for data, limit in ((big, "max_image_bytes"), (flat, "max_image_pixels")):
        r = httpx.post(url + "/v1/translate/upload", data={"source": "toygen", "target": "toygen"},
                       files=[("images", ("x.png", data, "image/png"))])
        assert (r.status_code, r.json()["limit"]) == (413, limit), r.text


@pytest.mark.parametrize("raw, status, words", [
    (b'{"pair": "toy-shapes", "texts": ["a"', 400, "malformed JSON"),
    (b'["a circle"]', 400, "JSON object"),
    (json.dumps({"pair": "nope", "texts": ["a"]}).encode(), 404, "unknown pair 'nope'"),
    (json.dumps({"source": "nobody", "target": "toygen", "texts": ["a"]}).encode(), 404, "unknown expert 'nobody'"),
    (json.dumps({**TEXT, "temperature": -1}).encode(), 400, "temperature must be a finite number in [0, 10], got -1"),
    (json.dumps({**TEXT, "temperature": "hot"}).encode(), 400, "temperature must be a number, got 'hot'"),
    (b'{"pair": "toy-shapes", "texts": ["a", "\\ud800"]}', 400, "input 2 is not valid UTF-8"),
    (json.dumps({"pair": "toy-shapes", "texts": ["a", "  "]}).encode(), 400, "input 2 is empty"),
    (json.dumps({**TEXT, "seed": 2**64}).encode(), 400, "'seed' must be <="),
    (json.dumps({**TEXT, "n": 0}).encode(), 400, "'n' must be >= 1"),
    (json.dumps({**TEXT, "colour": "red"}).encode(), 400, "unknown field"),
    (json.dumps({**TEXT, "format": "gif"}).encode(), 400, "unknown format"),
    (json.dumps({"pair": "toy-shapes", "images": ["aGVsbG8="]}).encode(), 400, "reads 'text' inputs"),
    (json.dumps({"source": "toygen", "target": "toygen", "images": ["aGVsbG8="]}).encode(), 400, "cannot read image"),
    (json.dumps({"source": "toygen", "target": "toygen", "images": ["***"]}).encode(), 400, "not valid base64"),
    (json.dumps({"pair": "toy-shapes", "latents": [[1.0, 2.0, 3.0]]}).encode(), 400, "expected (B, 8)"),
    (json.dumps({"pair": "toy-shapes"}).encode(), 400, "exactly one of"),
    (json.dumps({"source": "toygen", "target": "toytext", "texts": ["a"]}).encode(), 422, "toytext"),
])
def test_bad_input_gets_one_line_4xx_and_the_server_lives_on(server, raw, status, words):
    url, _ = server
    r = httpx.post(url + "/v1/translate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert words in msg and "\n" not in msg and "Traceback" not in msg
    assert post(url, TEXT).status_code == 200


def test_png_for_a_pair_without_images_and_non_multipart_upload(server):
    url, _ = server
    r = httpx.post(url + "/v1/translate/upload", json=TEXT)
    assert r.status_code == 415 and "multipart" in r.json()["error"]


# -- batching --------------------------------------------------------------------------------
def _concurrently(url: str, bodies: list[dict]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: post(url, b), bodies))


def _counting(app):
    slot = app.state.n2n.pool.slots["toytext@base->toygen@base"]
    module = slot.translator.module
    calls = {"inverse": 0}
    original = module.sample_inverse  # the flow call of sampling

    def inverse(v, c):
        calls["inverse"] += 1
        return original(v, c)

    return module, original, inverse, calls


BODIES = [{"pair": "toy-shapes", "texts": [f"shape {'o' * i}"] * (1 + i % 2), "n": 1 + i % 3, "seed": i,
           "format": "png", "temperature": 0.5 + 0.1 * i} for i in range(6)]


def test_batching_merges_concurrent_requests_into_one_encode_and_one_cinn_call(server, world):
    url, app = server
    import n2n_toy.experts

    module, original, inverse, calls = _counting(app)
    module.sample_inverse = inverse
    encodes = n2n_toy.experts.CALLS["toytext.encode"]
    try:
        rs = _concurrently(url, BODIES)
    finally:
        module.sample_inverse = original
    assert [r.status_code for r in rs] == [200] * 6
    assert calls["inverse"] <= 2 and n2n_toy.experts.CALLS["toytext.encode"] - encodes <= 2
    metrics = httpx.get(url + "/metrics").text
    assert 'n2n_batch_size_bucket{le="1.0",pair="toytext@base->toygen@base"}' in metrics
    for body, r in zip(BODIES, rs):  # each caller got its own answer
        want = world["text"].translate(body["texts"], n=body["n"], seed=body["seed"], temperature=body["temperature"])
        from n2n_hub.base.images import grid_image

        buf = io.BytesIO()
        grid_image(want.outputs, ncol=body["n"]).save(buf, format="PNG", compress_level=1)
        assert r.content == buf.getvalue()


def test_seeded_answers_are_byte_identical_with_and_without_batching(server, unbatched):
    batched_url, _ = server
    plain_url, plain_app = unbatched
    module, original, inverse, calls = _counting(plain_app)
    module.sample_inverse = inverse
    try:
        alone = _concurrently(plain_url, BODIES)
    finally:
        module.sample_inverse = original
    assert calls["inverse"] == len(BODIES)  # batching off: one call per request
    together = _concurrently(batched_url, BODIES)
    assert [a.content for a in alone] == [t.content for t in together]
    json_bodies = [{**b, "format": "safetensors"} for b in BODIES]
    assert [r.content for r in _concurrently(plain_url, json_bodies)] == \
        [r.content for r in _concurrently(batched_url, json_bodies)]


def test_one_bad_request_in_a_batch_fails_alone(server):
    url, app = server
    slot = app.state.n2n.pool.slots["toytext@base->toygen@base"]
    sizes: list[int] = []
    original = slot.batcher.on_batch
    slot.batcher.on_batch = lambda n: (sizes.append(n), original(n))
    bad = {"pair": "toy-shapes", "latents": [[0.0] * 7], "n": 2}  # 7 numbers, the source gives 8
    try:
        rs = _concurrently(url, BODIES[:3] + [bad] + BODIES[3:])
    finally:
        slot.batcher.on_batch = original
    assert [r.status_code for r in rs] == [200] * 3 + [400] + [200] * 3
    assert "expected (B, 8)" in rs[3].json()["error"]
    assert max(sizes) > 1  # the bad request really shared a batch


# -- queue, time, key ----------------------------------------------------------------------
def _blocked(app):
    """Hold the pair's worker until the returned event is set."""
    slot = app.state.n2n.pool.slots["toytext@base->toygen@base"]
    gate, started = threading.Event(), threading.Event()
    run = slot.batcher.run_batch

    def held(jobs):
        started.set()
        gate.wait(30)
        return run(jobs)

    slot.batcher.run_batch = held
    return slot, run, gate, started


def test_full_queue_gets_429_and_recovers(world):
    app = make_app(world, max_batch=1, max_delay_ms=0, limits=replace(LIMITS, max_queue=1))
    with running(app) as url:
        slot, run, gate, started = _blocked(app)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, url, TEXT)
            assert started.wait(10)
            second = pool.submit(post, url, TEXT)
            while slot.batcher.depth < 1:
                threading.Event().wait(0.01)
            third = post(url, TEXT)
            gate.set()
            assert (third.status_code, third.json()["limit"], third.headers["retry-after"]) == (429, "max_queue", "1")
            assert first.result().status_code == second.result().status_code == 200
        slot.batcher.run_batch = run
        assert post(url, TEXT).status_code == 200


def test_request_time_is_limited(world):
    app = make_app(world, limits=replace(LIMITS, request_timeout_s=0.5))
    with running(app) as url:
        slot, run, gate, started = _blocked(app)
        r = post(url, TEXT)
        gate.set()
        assert (r.status_code, r.json()["limit"]) == (408, "request_timeout_s")
        slot.batcher.run_batch = run
        assert post(url, TEXT).status_code == 200


def test_api_key_guards_every_route_but_health(world):
    app = make_app(world, api_key=KEY)
    with running(app) as url:
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
        assert httpx.get(url + "/readyz").status_code == 200
        routes = [("GET", "/"), ("GET", "/docs"), ("GET", "/static/app.js"), ("GET", "/v1/pairs"), ("GET", "/v1/experts"),
                  ("GET", "/metrics"), ("GET", "/openapi.json"), ("POST", "/v1/translate"),
                  ("POST", "/v1/translate/upload")]
        for method, path in routes:
            r = httpx.request(method, url + path, json=TEXT if method == "POST" else None)
            assert r.status_code == 401, path
            assert "API key" in r.json()["error"]
            wrong = httpx.request(method, url + path, headers={"X-API-Key": KEY + "x"})
            assert wrong.status_code == 401, path
        assert httpx.get(url + "/v1/pairs", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert httpx.get(url + "/", auth=("anyone", KEY)).status_code == 200
        assert post(url, TEXT, headers={"X-API-Key": KEY}).status_code == 200


# -- pairs loading on demand -----------------------------------------------------------------
def test_lazy_pairs_answer_503_with_retry_after_until_loaded(world):
    app = create_app(world["hub"], ServeSettings(lazy=True, limits=LIMITS))
    with running(app, ready=False) as url:
        assert httpx.get(url + "/v1/pairs").json()["served"] == []
        first = post(url, TEXT)
        assert first.status_code == 503 and first.headers["retry-after"] == "5"
        assert "loading" in first.json()["error"]
        app.state.n2n.pool.slots["toytext@base->toygen@base"].done.wait(30)
        assert post(url, TEXT).status_code == 200


def test_an_uncached_pair_is_never_trained_unless_allowed(world, tmp_path):
    hub = toy_hub(tmp_path / "empty-home", tmp_path / "registry.toml")
    for allow, final in ((False, 404), (True, 200)):
        app = create_app(hub, ServeSettings(lazy=True, allow_train=allow, limits=LIMITS))
        with running(app, ready=False) as url:
            assert post(url, TEXT).status_code == 503
            app.state.n2n.pool.slots["toytext@base->toygen@base"].done.wait(60)
            r = post(url, TEXT)
            assert r.status_code == final, r.text
            if not allow:
                assert "no cached translator" in r.json()["error"] and "--allow-train" in r.json()["error"]
                assert list((tmp_path / "empty-home").rglob("*.safetensors")) == []


def test_by_default_it_serves_the_registry_pairs_whose_translators_are_cached(world, tmp_path):
    app = create_app(world["hub"], ServeSettings(limits=LIMITS))
    with running(app) as url:
        served = httpx.get(url + "/v1/pairs").json()["served"]
        assert [(p["name"], p["state"]) for p in served] == [("toy-shapes", "ready")]
    empty = toy_hub(tmp_path / "empty-home", tmp_path / "registry.toml")
    app = create_app(empty, ServeSettings(limits=LIMITS))  # nothing cached: nothing loaded, nothing trained
    with running(app, ready=False) as url:
        assert httpx.get(url + "/v1/pairs").json()["served"] == []
        assert httpx.get(url + "/readyz").status_code == 503
    assert not (tmp_path / "empty-home" / "translators").exists() or \
        not list((tmp_path / "empty-home" / "translators").rglob("*.safetensors"))


def test_readyz_waits_for_start_up_pairs(world):
    app = make_app(world)
    gate = threading.Event()
    pool = app.state.n2n.pool
    load = pool._load
    pool._load = lambda slot: (gate.wait(30), load(slot))
    with running(app, ready=False) as url:
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert httpx.get(url + "/healthz").status_code == 200
        gate.set()
        pool.slots["toytext@base->toygen@base"].done.wait(30)
        assert httpx.get(url + "/readyz").json()["ready"] is True


# -- operations ------------------------------------------------------------------------------
def test_metrics_count_requests_latency_batches_and_queue_depth(server):
    url, _ = server
    post(url, TEXT)
    post(url, {**TEXT, "n": 100})
    text = httpx.get(url + "/metrics").text
    assert 'n2n_requests_total{route="/v1/translate",status="200"}' in text
    assert 'n2n_requests_total{route="/v1/translate",status="413"}' in text
    assert 'n2n_request_seconds_bucket{le="0.5",route="/v1/translate"}' in text
    assert 'n2n_batches_total{pair="toytext@base->toygen@base"}' in text
    assert 'n2n_queue_depth{pair="toytext@base->toygen@base"} 0.0' in text


def test_access_log_is_one_json_object_per_request(server, caplog):
    url, _ = server
    with caplog.at_level("INFO", logger="n2n_hub.serve.access"):
        post(url, TEXT, headers={"X-Request-ID": "abc123"})
    rows = [json.loads(r.getMessage()) for r in caplog.records if r.name == "n2n_hub.serve.access"]
    row = next(r for r in rows if r["request_id"] == "abc123")
    assert (row["method"], row["path"], row["status"], row["pair"]) == \
        ("POST", "/v1/translate", 200, "toytext@base->toygen@base")
    assert row["ms"] > 0


def test_the_page_is_self_contained(server):
    url, _ = server
    html = httpx.get(url + "/").text
    assert '<select id="pair"' in html and "/static/app.js" in html
    assert "/static/docs.js" in httpx.get(url + "/docs").text  # the OpenAPI page, also offline
    for asset in ("/static/app.js", "/static/style.css", "/static/docs.js"):
        r = httpx.get(url + asset)
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text
    assert "http" not in html.replace("http-equiv", "")


def test_an_unexpected_error_is_a_500_json_line_with_the_request_id(world):
    app = make_app(world)
    with running(app) as url:
        pool = app.state.n2n.pool

        def broken(*args):
            raise RuntimeError("disk on fire")

        pool.plan, original = broken, pool.plan
        try:  # fields this server has not planned before
            r = post(url, {**TEXT, "pair": None, "source": "toytext", "target": "toygen"},
                     headers={"X-Request-ID": "req-500"})
        finally:
            pool.plan = original
        assert r.status_code == 500 and r.headers["x-request-id"] == "req-500"
        assert r.json() == {"error": "internal error: RuntimeError: disk on fire"}
        ok = post(url, TEXT)
        assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 16
        assert 'n2n_requests_total{route="/v1/translate",status="500"} 1.0' in httpx.get(url + "/metrics").text


def test_a_servers_first_request_to_a_pair_plans_it_once_and_later_requests_never(world, plan_count):
    app = create_app(world["hub"], ServeSettings(lazy=True, limits=LIMITS))
    with running(app, ready=False) as url:
        plan_count.clear()  # start-up planned the registry's pairs; requests start now
        body = {**TEXT, "pair": None, "source": "toytext", "target": "toygen"}
        assert post(url, body).status_code == 503  # the first request starts the load
        assert plan_count == [("toytext", "toygen")]
        app.state.n2n.pool.slots["toytext@base->toygen@base"].done.wait(30)
        for _ in range(3):
            assert post(url, body).status_code == 200
        assert post(url, TEXT).status_code == 200  # the registry name of a start-up pair: planned at start-up
        assert plan_count == [("toytext", "toygen")]


def test_errors_are_not_kept_and_are_planned_again(world, plan_count):
    app = make_app(world)
    with running(app) as url:
        plan_count.clear()
        for _ in range(2):
            r = post(url, {**TEXT, "pair": None, "source": "toygen", "target": "toytext"})
            assert r.status_code == 422 and "toytext" in r.json()["error"]
        assert plan_count == [("toygen", "toytext")] * 2
