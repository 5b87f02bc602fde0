"""`experts show ID@FILE` shows the shapes of the weights in that file, not the ones the spec declares."""

from __future__ import annotations

import json

from click.testing import CliRunner

from n2n_hub import Expert, ExpertSpec, Representation, Variant, hookimpl
from n2n_hub.cli.commands import cli


class Sized(Expert):
    """An expert whose width is whatever its weights file says."""

    def __init__(self, spec, variant, device="cpu"):
        super().__init__(spec, variant, device)
        self.width = int(open(variant).read()) if variant != "base" else 4

    def representation_for(self, tap=None):
        return Representation((self.width,))

    def latent_representation(self):
        return Representation((self.width,))


class _Plugin:
    @hookimpl
    def register_experts(self, register):
        register(ExpertSpec(id="sized", version="1", loader=f"{__name__}:Sized", input_domain="text",
                            representation=Representation((4,)), output_domain="text", latent=Representation((4,)),
                            variants=(Variant("base"),), default_variant="base", accepts_paths=True))


def test_a_file_variant_shows_its_own_shapes_and_the_spec_keeps_the_declared_ones(toy_cli_host, tmp_path):
    toy_cli_host.register(_Plugin(), "sizedplugin")
    weights = tmp_path / "wide.txt"
    weights.write_text("12")
    shown = json.loads(CliRunner().invoke(cli, ["experts", "show", f"sized@{weights}", "--json"]).output)
    assert shown["representation"]["shape"] == [12] and shown["latent"]["shape"] == [12]
    assert shown["loaded_from"] == str(weights)
    declared = json.loads(CliRunner().invoke(cli, ["experts", "show", "sized", "--json"]).output)
    assert declared["representation"]["shape"] == [4] and "loaded_from" not in declared
