"""Progress piped into a log: a few plain lines, never thousands of redrawn frames."""

from __future__ import annotations

import io

from click.testing import CliRunner
import pytest

from n2n_hub.cli.commands import cli
from n2n_hub.base.progress import PlainProgress, tqdm


def test_progress_in_a_log_is_occasional_plain_lines(monkeypatch):
    log = io.StringIO()
    clock = iter(range(0, 10_000, 1))  # one second per step
    monkeypatch.setattr("n2n_hub.base.progress.time.monotonic", lambda: float(next(clock)))
    bar = tqdm(total=100, desc="train (nll)", unit="step", file=log)
    assert isinstance(bar, PlainProgress)
    for _ in range(100):
        bar.update(1)
        bar.set_postfix({"nll": "1.2345"}, refresh=False)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 4  # at 30, 60 and 90 seconds, and when done
    assert lines[-1].startswith("train (nll): 100/100 step (100%)") and "nll=1.2345" in lines[-1]


@pytest.mark.slow
def test_training_from_the_cli_into_a_pipe_writes_few_lines(toy_cli_host, toy_registry_file, monkeypatch):
    monkeypatch.setenv("N2N_HUB_PROGRESS_EVERY", "3600")
    out = CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--steps", "300"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "\r" not in out.output
    progress = [ln for ln in out.output.splitlines() if " step " in ln and "/300" in ln]
    assert len(progress) == 1 and "300/300" in progress[0]
