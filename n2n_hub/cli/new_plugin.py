"""``n2n-hub new-plugin NAME``: a plugin package that installs, passes its own tests and pairs on first run.

Three shapes cover what plugin authors start from:

- ``source``: an image encoder used as a translation source (it ships ``NAME -> vaegan@animals``);
- ``encoder``: a text encoder used as a source (it ships ``NAME -> vaegan@animals`` through captions);
- ``autoencoder``: an image encoder and decoder with a prior, used as a target (it ships ``bert -> NAME``).

Each expert works without weights (fixed pooling or character features), so the package runs
offline from the start; its docstrings say where real weights go. The files use only
``n2n_hub`` and ``n2n_hub.kit``, as every plugin should.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import click

from ..base.version import VERSION
from ..errors import InputError
from ..hookspecs import PLUGIN_API_VERSION

KINDS = ("source", "encoder", "autoencoder")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

_PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "n2n-{name}"
version = "0.1.0"
description = "{title} expert for n2n-hub"
requires-python = ">=3.10"
dependencies = ["n2n-hub>={hub_version}"]

[project.optional-dependencies]
test = ["pytest>=7"]

# n2n-hub finds the plugin through this entry point, as it finds its own built-in experts.
[project.entry-points.n2n_hub]
{name} = "n2n_{name}"

[tool.setuptools]
packages = ["n2n_{name}"]
'''

_INIT = '''"""{title}: an n2n-hub expert plugin. Registration is metadata only; the expert loads on first use."""

from n2n_hub import ExpertSpec, Representation, Variant, hookimpl

# The plugin-API range this package was written against: n2n-hub refuses, in one line, to load
# it under a hub outside the range.
N2N_HUB_PLUGIN_API = ">={api},<{api_major_next}"

DIM = {dim}


@hookimpl
def register_experts(register):
    register(ExpertSpec(
        id="{name}", version="1", loader="n2n_{name}.expert:{cls}",
        description="{description}", license="MIT",
{spec_fields}
        variants=(Variant("base", "fixed features, no weights to download"),), default_variant="base",
    ))


@hookimpl
def register_pairs(register):
    # The same keys as a [pairs.NAME] table of registry.toml (`n2n-hub pairs` lists them; the README
    # of n2n-hub has the table of every key). Users can override any key in their own registry file.
    register("{pair_name}", {{
        "description": "{pair_description}",
{pair_fields}
        "flow": {{"n_blocks": 4, "hidden": 64}}, "training": {{"steps": 300, "batch_size": 64}},
    }})
'''

_EXPERT = {
    "source": '''"""{title}: images -> a {dim}-d feature vector (average-pooled pixels).

Replace ``encode`` with your network; load its weights in ``__init__`` with
``n2n_hub.kit.ModelWeights`` (safetensors + JSON config) and raise ``kit.MissingWeightsError``
with a message that says where the files go when they are missing.
"""

import torch
import torch.nn.functional as F

from n2n_hub import Expert, Representation
from n2n_hub.kit import check_images

from . import DIM

SIDE = int(DIM ** 0.5)


class {cls}(Expert):
    def representation_for(self, tap=None):
        return Representation((DIM,))

    def encode(self, images, tap=None):
        x = check_images(images, (1, 32, 32), "{name}", self.device)
        return F.adaptive_avg_pool2d(x, SIDE).flatten(1)
''',
    "encoder": '''"""{title}: texts -> a {dim}-d feature vector (normalised letter counts).

Replace ``encode`` with your network; load its weights in ``__init__`` with
``n2n_hub.kit.ModelWeights`` and raise ``kit.MissingWeightsError`` when they are missing.
"""

import torch

from n2n_hub import Expert, Representation
from n2n_hub.kit import as_text_batch

from . import DIM


class {cls}(Expert):
    def representation_for(self, tap=None):
        return Representation((DIM,))

    def encode(self, inputs, tap=None):
        rows = []
        for text in as_text_batch(inputs):
            counts = torch.zeros(DIM)
            for ch in text.lower():
                if "a" <= ch <= "z":
                    counts[(ord(ch) - ord("a")) % DIM] += 1
            rows.append(counts / max(1.0, float(counts.norm())))
        return torch.stack(rows).to(self.device) if rows else torch.zeros(0, DIM, device=self.device)
''',
    "autoencoder": '''"""{title}: images <-> a {dim}-d latent (average pooling down, nearest upsampling back).

Replace ``encode``/``decode`` with your networks and ``sample_prior`` with their prior; load
weights in ``__init__`` with ``n2n_hub.kit.ModelWeights``.
"""

import torch
import torch.nn.functional as F

from n2n_hub import Expert, PriorSample, Representation
from n2n_hub.kit import check_batch, check_images

from . import DIM

SIDE = int(DIM ** 0.5)


class {cls}(Expert):
    def representation_for(self, tap=None):
        return Representation((DIM,))

    def latent_representation(self):
        return Representation((DIM,))

    def encode(self, images, tap=None):
        x = check_images(images, (1, 32, 32), "{name}", self.device)
        return F.adaptive_avg_pool2d(x, SIDE).flatten(1)

    def decode(self, z):
        check_batch(z, self.latent_representation(), "{name} latents")
        grid = z.to(self.device).reshape(-1, 1, SIDE, SIDE)
        return F.interpolate(grid, size=(32, 32), mode="nearest").clamp(-1, 1)

    def sample_prior(self, n, generator=None):
        return PriorSample(torch.randn(n, DIM, generator=generator).clamp(-1, 1).to(self.device))
''',
}

_SPEC_FIELDS = {
    "source": '''        input_domain="image", input_shape=(1, 32, 32), representation=Representation((DIM,)),''',
    "encoder": '''        input_domain="text", representation=Representation((DIM,)),''',
    "autoencoder": '''        input_domain="image", input_shape=(1, 32, 32), representation=Representation((DIM,)),
        output_domain="image", output_shape=(1, 32, 32), latent=Representation((DIM,)), prior="N(0, I) clipped to [-1, 1]",''',
}

_PAIRS = {
    "source": ("{name}-vaegan-animals", "animal images -> the animals VAE-GAN, read through {name}",
               '''        "source": "{name}", "target": "vaegan@animals", "recipe": "dataset", "dataset": "animals",'''),
    "encoder": ("{name}-vaegan-animals", "animal captions read by {name} -> the animals VAE-GAN",
                '''        "source": "{name}", "target": "vaegan@animals", "recipe": "dataset", "dataset": "animals",
        "source_from": "label", "bridges": ["label-caption"],'''),
    "autoencoder": ("bert-{name}-animals", "animal captions read by bert -> {name}'s latents",
                    '''        "source": "bert", "target": "{name}", "recipe": "dataset", "dataset": "animals",
        "source_from": "label", "bridges": ["label-caption"],'''),
}

_TESTS = '''"""{title}: the plugin loads through its entry point, its expert keeps its spec, and its pair trains."""

import torch

from n2n_hub import Hub
from n2n_hub.kit import load_dataset


def _hub(tmp_path):
    return Hub(home=tmp_path / "home", progress=False, log=lambda message: None)


def test_the_plugin_registers_through_its_entry_point(tmp_path):
    hub = _hub(tmp_path)
    assert "{name}" in [spec.id for spec in hub.experts()]
    assert [p["plugin"] for p in hub.plugin_report()["failed"] if p["plugin"] == "{name}"] == []


def test_the_expert_encodes_to_its_declared_shape(tmp_path):
    hub = _hub(tmp_path)
    expert = hub.load_expert("{name}")
    inputs = {sample_inputs}
    z = expert.encode(inputs)
    assert z.shape == (len(inputs), *hub.expert_spec("{name}").representation.shape)
    assert torch.isfinite(z).all()


def test_the_shipped_pair_trains_and_translates(tmp_path):
    hub = _hub(tmp_path)
    translator = hub.pair("{pair_source}", "{pair_target}", steps=30)
    result = translator.translate({translate_inputs}, n=2, seed=0)
    assert result.latents.shape[:2] == (2, 2)
    assert torch.isfinite(result.latents).all()
'''

_README = '''# n2n-{name}

{title}: a `{kind}` expert plugin for [n2n-hub](https://pypi.org/project/n2n-hub/), made by
`n2n-hub new-plugin {name} --kind {kind}`.

```bash
pip install -e ".[test]"        # registers the `{name}` expert through the n2n_hub entry point
python -m pytest -q             # the plugin loads, its expert keeps its spec, its pair trains
n2n-hub experts show {name}
n2n-hub pair {pair_source} {pair_target}          # the pair this plugin ships ({pair_name})
```

- `n2n_{name}/__init__.py` registers the expert and its pair (metadata only: keep it cheap).
- `n2n_{name}/expert.py` is the expert; replace its fixed features with your network and load
  its weights with `n2n_hub.kit.ModelWeights`.
- Import only `n2n_hub` and `n2n_hub.kit`: `n2n-hub plugins --check` warns about anything else.
'''

_SAMPLES = {
    "source": ('load_dataset("animals", "test")["image"][:3]', 'load_dataset("animals", "test")["image"][:2]'),
    "encoder": ('["a zebra", "an elephant", "a bird"]', '["a zebra", "a horse"]'),
    "autoencoder": ('load_dataset("animals", "test")["image"][:3]', '["a zebra", "a horse"]'),
}


def write_plugin(name: str, kind: str, out: Path) -> Path:
    """Write the package ``n2n-NAME`` under ``out`` and return its folder."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise InputError(f"plugin name {name!r}: use 2-31 lowercase letters, digits or '_', starting with a letter")
    if kind not in KINDS:
        raise InputError(f"unknown plugin kind {kind!r}; use one of {', '.join(KINDS)}")
    root = out / f"n2n-{name}"
    if root.exists():
        raise InputError(f"{root} already exists; choose another name or folder (-o)")
    title = name.replace("_", " ").capitalize()
    cls = "".join(part.capitalize() for part in name.split("_")) + "Expert"
    major = int(PLUGIN_API_VERSION.split(".")[0])
    pair_name, pair_description, pair_fields = (s.format(name=name) for s in _PAIRS[kind])
    pair_source, pair_target = ("bert", name) if kind == "autoencoder" else (name, "vaegan@animals")
    values = dict(name=name, title=title, cls=cls, kind=kind, dim=16, hub_version=VERSION.rsplit(".", 1)[0],
                  api=PLUGIN_API_VERSION, api_major_next=major + 1, pair_name=pair_name,
                  pair_description=pair_description, pair_fields=pair_fields, spec_fields=_SPEC_FIELDS[kind],
                  description=f"{title} ({kind}): replace its fixed features with your network",
                  pair_source=pair_source, pair_target=pair_target,
                  sample_inputs=_SAMPLES[kind][0], translate_inputs=_SAMPLES[kind][1])
    files = {
        "pyproject.toml": _PYPROJECT, "README.md": _README, f"n2n_{name}/__init__.py": _INIT,
        f"n2n_{name}/expert.py": _EXPERT[kind], f"tests/test_{name}.py": _TESTS,
    }
    try:
        for rel, template in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values), encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write the plugin under {out}: {e.strerror or e}") from None
    return root


@click.command(name="new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), default="source", show_default=True,
              help="source: an image encoder used as a source; encoder: a text encoder used as a source; "
                   "autoencoder: an image encoder and decoder used as a target.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder to create the package n2n-NAME in.")
def new_plugin_cmd(name: str, kind: str, out: Path) -> None:
    """Write a plugin package n2n-NAME that installs, passes its own tests and ships a pair.

    \b
    Example:
      n2n-hub new-plugin edges --kind source
      cd n2n-edges && pip install -e ".[test]" && python -m pytest -q
      n2n-hub translate edges vaegan@animals horse.png -n 8 -o edges.png
    """
    root = write_plugin(name, kind, out)
    click.echo(f"wrote {root}: cd {root} && pip install -e \".[test]\" && python -m pytest -q")


COMMANDS = [new_plugin_cmd]
