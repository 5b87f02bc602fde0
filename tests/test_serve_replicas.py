"""Replicas: two `n2n-hub serve` processes over one shared cache home, as behind a load balancer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_util import free_port
from toy_util import TOY_REGISTRY

pytestmark = pytest.mark.slow  # server processes on ports


def listing(home: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``home`` with its mtime (ns) and size: what a read-only user leaves unchanged."""
    out = {}
    for folder, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            out[str(path.relative_to(home))] = (st.st_mtime_ns, st.st_size)
    return out


def wait_ready(proc: subprocess.Popen, url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not get ready"
        time.sleep(0.2)


def test_two_replicas_over_one_cache_answer_the_same_bytes_and_change_nothing(plugin_env, trained_toy_home, tmp_path):
    home = Path(shutil.copytree(trained_toy_home, tmp_path / "shared-home"))  # the registry's pair, trained
    registry = tmp_path / "registry.toml"
    registry.write_text(TOY_REGISTRY)
    env = {**plugin_env, "N2N_HUB_HOME": str(home), "N2N_HUB_REGISTRY": str(registry), "OMP_NUM_THREADS": "1"}
    before = listing(home)
    assert any(p.endswith(".safetensors") for p in before)  # the translator both replicas will read

    procs, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "n2n_hub", "serve", "toy-shapes", "--port", str(port), "--threads", "1",
                 "--max-delay-ms", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls):
            wait_ready(proc, url)
        for url in urls:
            served = httpx.get(url + "/v1/pairs").json()["served"]
            assert [(p["name"], p["state"]) for p in served] == [("toy-shapes", "ready")]
        body = {"pair": "toy-shapes", "texts": ["a circle", "a square"], "n": 3, "seed": 11, "temperature": 0.7}
        for fmt, extra in (("png", {}), ("safetensors", {}), ("json", {"include_latents": True, "samples": True})):
            a, b = (httpx.post(url + "/v1/translate", json={**body, **extra, "format": fmt}, timeout=60)
                    for url in urls)
            assert a.status_code == b.status_code == 200, (fmt, a.text[:200], b.text[:200])
            assert a.content == b.content, fmt
            assert len(a.content) > 100
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert listing(home) == before  # nothing trained, written, touched or deleted in the shared home
