"""`n2n-hub serve` as an operator runs it: a real process, loopback, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from click.testing import CliRunner
from serve_util import TOY_REGISTRY, free_port

from n2n_hub.cli.commands import cli


@pytest.mark.slow
def test_serve_trains_only_when_allowed_and_finishes_in_flight_requests_on_sigterm(plugin_env, tmp_path):
    registry = tmp_path / "registry.toml"
    registry.write_text(TOY_REGISTRY)
    env = {**plugin_env, "N2N_HUB_HOME": str(tmp_path / "home"), "N2N_HUB_REGISTRY": str(registry),
           "OMP_NUM_THREADS": "1"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "n2n_hub", "serve", "toy-shapes", "--allow-train", "--port",
                             str(port), "--max-delay-ms", "1500", "--threads", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not get ready"
            time.sleep(0.2)
        answer: dict = {}
        body = {"pair": "toy-shapes", "texts": ["a circle"], "n": 2, "seed": 0}
        t = threading.Thread(target=lambda: answer.update(r=httpx.post(url + "/v1/translate", json=body, timeout=30)))
        t.start()
        time.sleep(0.5)  # the request now waits in the batch queue (1.5 s delay)
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert answer["r"].status_code == 200
        assert len(answer["r"].json()["results"][0]["samples"]) == 2
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    rows = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["path"] == "/v1/translate" and r["status"] == 200 for r in rows)
    assert "Finished server process" in err
    assert list((tmp_path / "home" / "translators").rglob("*.safetensors"))  # --allow-train trained it


def test_serve_refuses_an_unset_api_key_variable(monkeypatch):
    monkeypatch.delenv("N2N_TEST_NO_KEY", raising=False)
    r = CliRunner().invoke(cli, ["serve", "--api-key-env", "N2N_TEST_NO_KEY"])
    assert r.exit_code == 1
    assert "N2N_TEST_NO_KEY is not set" in r.output and len(r.output.strip().splitlines()) == 1
