"""A translator whose registry size is allowed but does not fit this machine is refused in one line, before work."""

from __future__ import annotations

import pytest

from n2n_hub.errors import InputError


@pytest.mark.slow  # over half a second: the quick subset leaves it out
@pytest.mark.parametrize("flow", ["n_blocks = 20\nhidden = 65536", "n_blocks = 512\nhidden = 8192"])
def test_a_translator_too_large_for_the_machine_is_refused_before_any_memory_is_taken(toy_host, tmp_path,
                                                                                        monkeypatch, flow):
    from n2n_hub.hub import Hub

    reg = tmp_path / "big.toml"
    reg.write_text('[pairs.big]\nsource = "toytext"\ntarget = "toygen"\nrecipe = "dataset"\ndataset = "toyshapes"\n'
                   'source_from = "label"\nbridges = ["label-caption"]\n[pairs.big.flow]\n' + flow + "\n")
    monkeypatch.setenv("N2N_HUB_REGISTRY", str(reg))
    hub = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None)
    with pytest.raises(InputError, match="GiB to train") as err:
        hub.pair("toytext", "toygen", train_if_missing=False)
    assert len(str(err.value).splitlines()) == 1
