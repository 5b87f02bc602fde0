"""`pair --plan` states what training will cost: steps, batch, flow size and parameters, and a timed step."""

from __future__ import annotations

import pytest

import json

from click.testing import CliRunner

from n2n_hub.cli.commands import cli


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_the_plan_states_steps_batch_parameters_and_an_estimate(toy_hub):
    plan = toy_hub.plan("toytext", "toygen")
    cost = toy_hub.estimate(plan)
    trained = toy_hub.pair(plan)
    assert cost.parameters == sum(p.numel() for p in trained.module.parameters())
    assert cost.steps == trained.metadata["training"]["steps"] == 150
    assert cost.batch_size == trained.metadata["training"]["batch_size"] == 64
    assert 0 < cost.step_seconds < 5 and cost.seconds == cost.steps * cost.step_seconds
    bigger = toy_hub.estimate(plan, steps=300, n_blocks=6)
    assert bigger.steps == 300 and bigger.parameters > cost.parameters


def test_pair_plan_prints_and_serialises_the_estimate(toy_cli_host, toy_registry_file):
    text = CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--plan", "--steps", "40"])
    assert text.exit_code == 0, text.output
    line = text.output.splitlines()[-1]
    assert line.startswith("training: 40 steps of batch 64,") and "parameters; one step takes" in line
    data = json.loads(CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--plan", "--json"]).output)
    assert data["estimate"]["steps"] == 150 and data["estimate"]["parameters"] > 0
    assert data["recipe"] == "dataset"  # the plan's own record is still there


def test_after_early_stopping_the_step_that_was_kept_is_reported():
    from n2n_hub.hub import _steps_kept

    assert _steps_kept({"metrics": {"steps": 5000, "best_step": 1800}}) == "the weights of step 1800 of 5000"
    assert _steps_kept({"metrics": {"steps": 5000, "best_step": 5000}}) == "5000 steps"
    assert _steps_kept({"training": {"steps": 300}, "metrics": {}}) == "300 steps"
