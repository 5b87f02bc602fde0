"""Expert outputs are checked against their spec at the boundary; plugin crashes become one line."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from n2n_hub.errors import PluginError, ShapeError
from n2n_hub.hub import Hub


@pytest.fixture
def hub(toy_host, tmp_path):
    return Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)


def test_a_bare_tensor_from_sample_prior_is_named_before_any_training(hub, toy_modules, monkeypatch):
    monkeypatch.setattr(toy_modules[0].experts.ToyGenerator, "sample_prior", lambda self, n, generator=None:
                        torch.zeros(n, 4))
    with pytest.raises(ShapeError, match=r"expert 'toygen' \(plugin 'toy'\) sample_prior returned a \(\d+, 4\) "
                                         r"float32 tensor, expected an n2n_hub.PriorSample"):
        hub.pair("toytext", "toygen", steps=5)
    assert hub.cache.entries() == []


def test_an_encode_of_the_wrong_width_stops_at_the_first_batch(hub, toy_modules, monkeypatch):
    experts = toy_modules[0].experts
    calls = []

    def encode(self, inputs, tap=None):
        calls.append(len(inputs))
        return torch.zeros(len(inputs), 7)

    monkeypatch.setattr(experts.ToyText, "encode", encode)
    with pytest.raises(ShapeError, match=r"expert 'toytext' \(plugin 'toy'\) encode returned a \(\d+, 7\) float32 "
                                         r"tensor, expected \(\d+, 8\) \(its spec: 8 float32\)"):
        hub.pair("toytext", "toygen", steps=5)
    assert len(calls) == 1


def test_non_finite_and_integer_encodings_are_refused(hub, toy_modules, monkeypatch):
    expert = hub.load_expert("toytext")
    monkeypatch.setattr(toy_modules[0].experts.ToyText, "encode", lambda self, x, tap=None:
                        torch.full((len(x), 8), float("nan")))
    expert = Hub(home=hub.home, host=hub.host, progress=False).load_expert("toytext")
    with pytest.raises(ShapeError, match=r"encode returned 16 non-finite values"):
        expert.encode(["a", "b"])
    monkeypatch.setattr(toy_modules[0].experts.ToyText, "encode", lambda self, x, tap=None:
                        torch.zeros(len(x), 8, dtype=torch.int64))
    expert = Hub(home=hub.home, host=hub.host, progress=False).load_expert("toytext")
    with pytest.raises(ShapeError, match="expected float32 values"):
        expert.encode(["a", "b"])


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_a_decode_of_the_wrong_shape_is_blamed_on_the_decoder(hub, toy_modules, monkeypatch):
    t = hub.pair("toytext", "toygen", steps=20, n_blocks=1, hidden=8)
    assert t.translate(["circle"], n=2, seed=0).outputs.shape == (2, 1, 4, 4)
    monkeypatch.setattr(toy_modules[0].experts.ToyGenerator, "decode", lambda self, z: torch.zeros(3, 16))
    t = Hub(home=hub.home, host=hub.host, progress=False).pair("toytext", "toygen", steps=20, n_blocks=1, hidden=8,
                                                               train_if_missing=False)
    with pytest.raises(ShapeError, match=r"expert 'toygen' \(plugin 'toy'\) decode returned a \(3, 16\) float32 "
                                         r"tensor, expected float images \(2, C, H, W\)"):
        t.translate(["circle"], n=2, seed=0)


def test_a_plugin_crash_is_one_line_naming_the_plugin_unless_debugging(hub, toy_modules, monkeypatch):
    def encode(self, inputs, tap=None):
        return 1 / 0

    monkeypatch.setattr(toy_modules[0].experts.ToyText, "encode", encode)
    with pytest.raises(PluginError) as info:
        hub.load_expert("toytext").encode(["a"])
    assert str(info.value) == ("expert 'toytext' (plugin 'toy') failed in encode: ZeroDivisionError: division by zero "
                               "(set N2N_HUB_DEBUG=1 to see the traceback)")
    monkeypatch.setenv("N2N_HUB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        hub.load_expert("toytext").encode(["a"])


def test_a_crash_while_loading_an_expert_is_one_cli_line(toy_cli_host, toy_modules, monkeypatch):
    from n2n_hub.cli.commands import cli

    def broken_init(self, spec, variant, device="cpu"):
        raise RuntimeError("weights are\nin a strange state")

    monkeypatch.setattr(toy_modules[0].experts.ToyText, "__init__", broken_init)
    result = CliRunner().invoke(cli, ["translate", "toytext", "toygen", "hi", "--steps", "5", "--json"])
    assert result.exit_code == 1
    assert result.output == ("Error: expert 'toytext' (plugin 'toy') failed in loading: RuntimeError: weights are "
                             "(set N2N_HUB_DEBUG=1 to see the traceback)\n")
