"""Flow sizes that fit: chosen from the target, the data and the device; said; overridable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.errors import InputError
from n2n_hub.hub import Hub
from n2n_hub.catalog.planning import choose_size, size_flow


def test_cpu_and_few_pairs_get_the_small_flow_and_a_gpu_the_papers():
    assert choose_size(128, 50_000, "cpu")[0] == "small"
    assert choose_size(128, 50_000, "cuda:0")[0] == "paper"
    assert choose_size(128, None, "cuda")[0] == "paper"
    preset, why = choose_size(128, 800, "cuda")
    assert preset == "small" and "800 pairs" in why
    assert size_flow("paper", 268) == {"n_blocks": 20, "hidden": 8 * 268, "depth": 3}  # Table S3
    with pytest.raises(InputError, match="unknown size 'huge'"):
        size_flow("huge", 8)


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_the_small_flow_is_a_small_fraction_of_the_papers_parameters():
    cond = ConditionSpec.infer((384,), "float32", None)
    count = {p: sum(t.numel() for t in ConditionalINN(128, cond, **size_flow(p, 128)).parameters())
             for p in ("small", "medium", "paper")}
    assert count["small"] < count["medium"] < count["paper"]
    assert count["small"] * 30 < count["paper"]


def _hub(toy_host, tmp_path, device="cpu"):
    return Hub(home=tmp_path / "home", host=toy_host, device=device, progress=False, log=lambda m: None)


def test_a_pair_without_an_entry_is_sized_for_the_device_and_says_so(toy_host, tmp_path):
    plan = _hub(toy_host, tmp_path).plan("toytext", "toygen")
    assert plan.entry is None and plan.flow == size_flow("small", 4)
    assert "flow: 4 blocks" in plan.explain() and "size 'small' chosen for a 4-d target on the CPU" in plan.explain()
    gpu = _hub(toy_host, tmp_path, device="cuda").plan("toytext", "toygen")
    assert gpu.flow == size_flow("paper", 4) and "device cuda" in gpu.sizing


def test_size_flags_override_the_registry_and_the_choice(toy_host, toy_registry_file, tmp_path):
    hub = _hub(toy_host, tmp_path)
    entry_plan = hub.plan("toytext", "toygen")
    assert entry_plan.flow == {"n_blocks": 3, "hidden": 32} and "registry entry 'toy-shapes'" in entry_plan.sizing
    assert hub.plan("toytext", "toygen", size="medium").flow == size_flow("medium", 4)
    mixed = hub.plan("toytext", "toygen", size="small", n_blocks=2, hidden=8)
    assert mixed.flow == {"n_blocks": 2, "hidden": 8, "depth": 2} and "n_blocks=2, hidden=8 given" in mixed.sizing


def test_pair_trains_the_size_it_chose_and_prints_it(toy_cli_host, tmp_path):
    from n2n_hub.cli.commands import cli

    result = CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--steps", "20", "--size", "small",
                                      "--blocks", "2"])
    assert result.exit_code == 0, result.output
    assert "flow: 2 blocks, hidden 64, depth 2 (size 'small' (asked for), with n_blocks=2 given)" in result.output
    t = Hub(progress=False, host=toy_cli_host, log=lambda m: None).pair("toytext", "toygen", steps=20, size="small",
                                                                         n_blocks=2, train_if_missing=False)
    assert t.module.n_blocks == 2 and t.module.config()["hidden"] == 64  # cached under the same key
    plan = CliRunner().invoke(cli, ["pair", "toytext", "toygen", "--plan", "--size", "paper"])
    assert "flow: 20 blocks, hidden 32, depth 3 (size 'paper' (asked for))" in plan.output
