"""`n2n-hub new-plugin` writes a package that installs, passes its own tests, pairs through its shipped entry and translates."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image
from toy_util import pip_target

from n2n_hub.cli.commands import cli
from n2n_hub.cli.new_plugin import KINDS, write_plugin
from n2n_hub.errors import InputError


@pytest.mark.slow  # pip-installs the package and runs its tests and the CLI in processes of their own
def test_a_generated_plugin_installs_passes_its_tests_pairs_and_translates(tmp_path):
    made = CliRunner().invoke(cli, ["new-plugin", "shades2", "--kind", "autoencoder", "-o", str(tmp_path)])
    assert made.exit_code == 0, made.output
    package = tmp_path / "n2n-shades2"
    site = tmp_path / "site"
    pip_target(site, package)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "N2N_HUB_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=package, env=env,
                         capture_output=True, text=True)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "3 passed" in own.stdout
    pairs = subprocess.run([sys.executable, "-m", "n2n_hub", "pairs"], env=env, capture_output=True, text=True)
    assert "bert-shades2-animals" in pairs.stdout and "from: plugin shades2" in pairs.stdout
    grid = tmp_path / "grid.png"
    translated = subprocess.run([sys.executable, "-m", "n2n_hub", "translate", "bert", "shades2", "a zebra", "a horse",
                                 "-n", "3", "--steps", "30", "-o", str(grid)], env=env, capture_output=True, text=True)
    assert translated.returncode == 0, translated.stderr
    with Image.open(grid) as im:
        assert im.width > im.height  # two rows of three samples


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_a_package_that_imports_only_the_public_surface(tmp_path, kind):
    from n2n_hub.catalog.host import internal_imports

    root = write_plugin("mine", kind, tmp_path)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == ["README.md", "n2n_mine/__init__.py", "n2n_mine/expert.py", "pyproject.toml",
                     "tests/test_mine.py"]
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    sys.path.insert(0, str(root))
    try:
        import n2n_mine

        assert internal_imports(n2n_mine) == []
        assert n2n_mine.N2N_HUB_PLUGIN_API.startswith(">=")
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m.startswith("n2n_mine")]:
            del sys.modules[mod]


@pytest.mark.parametrize("name, why", [("Bad-Name", "lowercase"), ("x", "lowercase"), ("class", "lowercase")])
def test_a_bad_name_or_an_existing_folder_is_one_line(tmp_path, name, why):
    result = CliRunner().invoke(cli, ["new-plugin", name, "-o", str(tmp_path)])
    assert result.exit_code == 1 and why in result.output and len(result.output.strip().splitlines()) == 1
    write_plugin("taken", "source", tmp_path)
    with pytest.raises(InputError, match="already exists"):
        write_plugin("taken", "source", tmp_path)
