"""The expert graph: translating into an expert that only encodes, showing its latents as captions,
and routes through other experts."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from n2n_hub.catalog.routes import Link, find_route
from n2n_hub.cli.commands import cli
from n2n_hub.errors import IncompatiblePairError, InputError
from n2n_hub.hub import Hub
from n2n_hub.translators.captions import nearest, read_captions
from n2n_hub.translators.routes import ExpertHop, run_route

# Images -> a text encoder: the toy shapes' labels become captions on the target side.
TO_TEXT = """
[pairs.toy-to-text]
source = "toygen"
target = "toytext"
recipe = "dataset"
dataset = "toyshapes"
target_from = "label"
target_bridges = ["label-caption"]
pairs_per_item = 2

[pairs.toy-to-text.flow]
n_blocks = 2
hidden = 32

[pairs.toy-to-text.training]
steps = 60
batch_size = 64
val_every = 30
"""


@pytest.fixture
def graph_hub(trained_home, toy_host, toy_registry_file):
    """The trained toy home (toytext -> toygen cached) with the image -> text entry beside it."""
    toy_registry_file.write_text(toy_registry_file.read_text() + TO_TEXT)
    return Hub(home=trained_home, host=toy_host, progress=False, log=lambda m: None)


def _shapes(split="test", count=3):
    from n2n_toy.experts import load_shapes

    return load_shapes(split)["image"][:count]


def test_a_target_without_a_decoder_trains_caches_and_translates_to_latents(graph_hub):
    plan = graph_hub.plan("toygen", "toytext")
    assert plan.target_start == "label" and [b.id for b in plan.target_bridges] == ["label-caption"]
    assert "the target encodes label -> [label-caption] text" in plan.explain()
    assert plan.to_dict()["target_bridges"] == ["label-caption"]
    result = graph_hub.translate(plan, inputs=_shapes(), n=4, seed=3)
    assert result.latents.shape == (3, 4, 8) and result.outputs is None  # a text encoder's space: no decoding
    near = result.info[0]["nearest"]
    assert len(near) == 3 and near[0]["similarity"] >= near[1]["similarity"] >= near[2]["similarity"]
    assert {h["text"] for h in near} <= {h["text"] for f in result.info for h in f["nearest"]}
    cached = graph_hub.pair(plan, train_if_missing=False)  # cached: nothing trains again
    again = cached.translate(_shapes(), n=4, seed=3)
    assert torch.equal(again.latents, result.latents)
    with pytest.raises(InputError, match="has no decoder"):
        cached.decode(result.latents[0])


def test_the_cli_writes_latents_and_refuses_a_grid_for_a_target_without_decoder(graph_hub, toy_cli_host, tmp_path,
                                                                            monkeypatch):
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("N2N_HUB_HOME", str(graph_hub.home))
    image = tmp_path / "circle.png"  # at the expert's own 4×4 size, so nothing is converted
    Image.fromarray(((_shapes(count=1)[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8), mode="L").save(image)
    run = CliRunner()
    png = run.invoke(cli, ["translate", "toygen", "toytext", str(image), "-o", str(tmp_path / "x.png")])
    assert png.exit_code == 1 and "has no decoder" in png.output and "-o FILE.safetensors" in png.output
    shown = run.invoke(cli, ["translate", "toygen", "toytext", str(image), "-n", "2", "--seed", "1"])
    assert shown.exit_code == 0, shown.output
    assert "sample 0:" in shown.output and "sample 1:" in shown.output
    out = tmp_path / "z.safetensors"
    assert run.invoke(cli, ["translate", "toygen", "toytext", str(image), "-n", "2", "-o", str(out)]).exit_code == 0
    from safetensors.torch import load_file

    assert load_file(str(out))["latents"].shape == (1, 2, 8)
    mine = tmp_path / "mine.txt"
    mine.write_text("a circle\na square\n", encoding="utf-8")
    data = json.loads(run.invoke(cli, ["translate", "toygen", "toytext", str(image), "-n", "2", "--json",
                                       "--captions", str(mine)]).output)
    assert {h["text"] for h in data["results"][0]["samples"][0]["nearest"]} == {"a circle", "a square"}
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    bad = run.invoke(cli, ["translate", "toygen", "toytext", str(image), "--captions", str(empty)])
    assert bad.exit_code == 1 and "holds no captions" in bad.output and bad.output.count("\n") == 1


def test_nearest_captions_are_the_hand_computed_cosines():
    bank = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    texts = ["east", "north", "north-east"]
    z = torch.tensor([[3.0, 0.1], [0.0, -1.0]])
    got = nearest(z, bank, texts, k=2)
    cos = torch.nn.functional.cosine_similarity(z[:, None], bank[None], dim=2)
    assert [h["text"] for h in got[0]] == ["east", "north-east"]
    assert got[0][0]["similarity"] == pytest.approx(float(cos[0, 0]), abs=1e-4)
    assert got[0][1]["similarity"] == pytest.approx(float(cos[0, 2]), abs=1e-4)
    assert [h["text"] for h in got[1]] == ["east", "north-east"]  # cos 0 beats -0.707 and -1
    assert got[1][0]["similarity"] == pytest.approx(0.0, abs=1e-6)


def test_a_caption_file_that_does_not_fit_is_refused(tmp_path, graph_hub):
    empty, latin = tmp_path / "empty.txt", tmp_path / "latin.txt"
    empty.write_text("")
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="holds no captions"):
        read_captions(empty)
    with pytest.raises(InputError, match="is not UTF-8"):
        read_captions(latin)
    ok = tmp_path / "ok.txt"
    ok.write_text("a circle\n")
    with pytest.raises(InputError, match="encodes 'image'; drop --captions"):  # toygen is no text target
        graph_hub.translate("toytext", "toygen", inputs=["a circle"], captions=ok)


def _links(*edges):
    return [Link(a, b, kind, cost) for a, b, kind, cost in edges]


def test_the_cheapest_route_is_found():
    links = _links(("a", "b", "translator", 1000), ("b", "c", "translator", 0), ("a", "d", "translator", 0),
                   ("d", "c", "expert", 1), ("a", "c", "translator", 5000))
    route = find_route(links, "a", "c")
    assert route.nodes == ["a", "d", "c"] and route.cost == 1
    assert find_route(links, "a", "c", via=["b"]).nodes == ["a", "b", "c"]


def test_a_missing_link_is_named():
    links = _links(("a", "b", "translator", 0), ("c", "d", "translator", 0))
    with pytest.raises(IncompatiblePairError, match="no route from a to d: a reaches b, but only c lead into d"):
        find_route(links, "a", "d")
    with pytest.raises(IncompatiblePairError, match="nothing leads out of d"):
        find_route(links, "d", "a")


def test_a_cycle_is_refused():
    links = _links(("a", "b", "translator", 0), ("b", "a", "translator", 0), ("b", "c", "translator", 0))
    with pytest.raises(IncompatiblePairError, match="visits a twice"):
        find_route(links, "a", "c", via=["b", "a"])
    with pytest.raises(IncompatiblePairError, match="visits a twice"):
        find_route(links, "a", "a")


def test_a_route_through_a_decoder_is_planned_from_the_registry_and_the_cache(graph_hub):
    route = graph_hub.route("toytext", "toypix")
    assert route.nodes == ["toytext@base", "toygen@base", "toypix@base"]
    first, second = route.hops
    assert first.kind == "translator" and first.key is not None and not first.trains  # cached: costs nothing
    assert second.kind == "expert" and second.domain == "image"
    assert route.to_dict()["hops"][0]["translator_key"] == first.key
    assert "toygen@base decodes 'image', toypix@base encodes it" in route.explain()
    with pytest.raises(IncompatiblePairError, match="no route from toypix@base to toytext@base"):
        graph_hub.route("toypix", "toytext")


def test_a_two_hop_routes_latents_are_the_hops_run_by_hand(graph_hub):
    texts = ["a circle", "a triangle"]
    route = graph_hub.route("toytext", "toypix")
    got = graph_hub.translate(route, inputs=texts, n=3, seed=11)
    t = graph_hub.pair("toytext", "toygen")
    z = t.sample_latents(texts, n=3, seed=11).reshape(-1, 4)
    gen, pix = graph_hub.load_expert("toygen"), graph_hub.load_expert("toypix")
    assert torch.allclose(got.latents.reshape(-1, 16), pix.encode(gen.decode(z)))
    # two translator hops: the second samples one residual per row with the next seed
    back = graph_hub.pair("toygen", "toytext")
    src = graph_hub.load_expert("toytext")
    two = run_route([t, back], src, t.source_address, texts, n=3, seed=11)
    by_hand = back.sample_many([z], [1], [None], [12])[0].reshape(2, 3, 8)
    assert torch.equal(two.latents, by_hand)
    assert "nearest" in two.info[0]  # the last hop's caption bank shows the text latents
    assert isinstance(ExpertHop(gen, pix), ExpertHop)


def test_pair_plan_shows_a_route_when_no_recipe_joins_the_pair(graph_hub, toy_cli_host, monkeypatch):
    monkeypatch.setenv("N2N_HUB_HOME", str(graph_hub.home))
    run = CliRunner()
    out = run.invoke(cli, ["pair", "toytext", "toypix", "--plan"])
    assert out.exit_code == 0, out.output
    assert "route toytext@base -> toygen@base -> toypix@base" in out.output and "cached" in out.output
    data = json.loads(run.invoke(cli, ["pair", "toytext", "toypix", "--plan", "--json"]).output)
    assert [h["kind"] for h in data["hops"]] == ["translator", "expert"] and data["hops"][0]["translator_key"]
    none = run.invoke(cli, ["pair", "toypix", "toytext", "--plan"])
    assert none.exit_code == 1 and "no route from toypix@base to toytext@base" in none.output
    paired = run.invoke(cli, ["pair", "toytext", "toypix"])  # the route's translators: cached, nothing trains
    assert paired.exit_code == 0 and "toytext@base -> toygen@base: cinn translator at" in paired.output
    ran = run.invoke(cli, ["translate", "toytext", "toypix", "a circle", "-n", "2", "--seed", "4", "--json"])
    assert ran.exit_code == 0, ran.output
    answer = json.loads(ran.output)
    assert answer["route"]["nodes"] == ["toytext@base", "toygen@base", "toypix@base"]
    assert len(answer["results"][0]["samples"]) == 2
    via = run.invoke(cli, ["translate", "toytext", "toypix", "a circle", "--via", "toytext", "--json"])
    assert via.exit_code == 1 and "visits toytext@base twice" in via.output


def test_the_servers_batches_carry_the_nearest_captions_and_decode_nothing(graph_hub):
    from n2n_hub.serve.engine import Job, run_jobs

    t = graph_hub.pair("toygen", "toytext")
    calls = []
    [result] = run_jobs(t, [Job("image", _shapes(count=2), 2, None, 5)], on_call=calls.append)
    assert "decode" not in calls and result.outputs is None
    assert len(result.info) == 4 and all(len(f["nearest"]) == 3 for f in result.info)
    alone = t.translate(_shapes(count=2), n=2, seed=5)
    assert [f["nearest"][0]["text"] for f in result.info] == [f["nearest"][0]["text"] for f in alone.info]


def test_the_plan_of_a_target_without_decoder_states_its_cost(graph_hub):
    plan = graph_hub.plan("toygen", "toytext")
    cost = graph_hub.estimate(plan)
    trained = graph_hub.pair(plan)
    assert cost.parameters == sum(p.numel() for p in trained.module.parameters())
