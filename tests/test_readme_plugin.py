"""The README's plugin example, built into a package in a temp dir, installed with pip, and used.

Every fenced block of the README's plugin section whose first line is ``# <file path>``
becomes that file, so the README cannot drift from what works.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from toy_util import pip_target

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_plugin_files() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Writing an expert plugin"):]
    section = section[:section.index("\n## ", 5)]
    files = {}
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", section, flags=re.S):
        first, _, rest = block.partition("\n")
        m = re.fullmatch(r"# ([\w/]+\.(?:py|toml))", first.strip())
        if m:
            files[m.group(1)] = rest
    return files


def test_the_readme_shows_every_file_of_a_plugin():
    assert set(readme_plugin_files()) == {"pyproject.toml", "my_n2n_plugin/__init__.py", "my_n2n_plugin/model.py",
                                          "my_n2n_plugin/expert.py", "my_n2n_plugin/commands.py"}


@pytest.mark.slow
def test_a_plugin_written_from_the_readme_installs_and_pairs_with_a_builtin_expert(tmp_path, monkeypatch):
    src = tmp_path / "n2n-shades"
    for name, body in readme_plugin_files().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(body)
    site = tmp_path / "site"
    pip_target(site, src)
    assert (site / "my_n2n_plugin" / "expert.py").is_file()

    # The installed distribution's entry point is found the way `pip install` makes it visible:
    # its folder on the path (a fresh process with PYTHONPATH would see the same).
    monkeypatch.syspath_prepend(str(site))
    from n2n_hub.cli import commands as cli_module

    cli_module._register_plugin_commands()
    train_expert = cli_module.cli.commands["train-expert"]
    try:
        def n2n(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(cli_module.cli, list(args))
            assert result.exit_code == code, result.output
            return result.output

        missing = n2n("translate", "bert", "shades", "x", "--json", code=1)
        assert "n2n-hub train-expert shades" in missing and "Traceback" not in missing

        weights = tmp_path / "home" / "experts" / "shades" / "base.safetensors"
        assert f"wrote {weights}" in n2n("train-expert", "shades")
        pairs = [ln for ln in n2n("pairs").splitlines() if ln.startswith("bert-shades")]
        assert len(pairs) == 1 and pairs[0].endswith("from: plugin shades")

        out = n2n("translate", "bert", "shades", "a bright one", "a dark one", "-n", "8", "--seed", "0", "--json")
        shades = re.findall(r'"shade": "(\w+)"', out)
        assert len(shades) == 16
        # the translator learnt the captions: most samples of each prompt have its shade
        assert shades[:8].count("bright") >= 6 and shades[8:].count("dark") >= 6, shades
    finally:
        train_expert.commands.pop("shades", None)
        for name in [m for m in sys.modules if m.split(".")[0] == "my_n2n_plugin"]:
            del sys.modules[name]
