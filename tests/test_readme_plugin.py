"""The README's plugin example, built into a package in a temp dir, installed with pip, and used.

Every fenced block of the README's plugin section whose first line is ``# <file path>``
becomes that file, so the README cannot drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import pip_target

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


def test_a_plugin_written_from_the_readme_installs_and_pairs_with_a_builtin_expert(tmp_path):
    src = tmp_path / "n2n-shades"
    for name, body in readme_plugin_files().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(body)
    site = tmp_path / "site"
    pip_target(site, src)
    assert (site / "my_n2n_plugin" / "expert.py").is_file()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "N2N_HUB_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}

    def n2n(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "n2n_hub", *args], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    missing = subprocess.run([sys.executable, "-m", "n2n_hub", "translate", "bert", "shades", "x", "--json"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert missing.returncode == 1 and "n2n-hub train-expert shades" in missing.stderr

    assert "wrote " + str(tmp_path / "home" / "experts" / "shades" / "base.safetensors") in n2n(
        "train-expert", "shades")
    pairs = [ln for ln in n2n("pairs").splitlines() if ln.startswith("bert-shades")]
    assert len(pairs) == 1 and pairs[0].endswith("from: plugin shades")

    out = json.loads(n2n("translate", "bert", "shades", "a bright one", "a dark one", "-n", "8", "--seed", "0",
                         "--json"))
    text = json.dumps(out)
    shades = re.findall(r'"shade": "(\w+)"', text)
    assert len(shades) == 16
    # the translator learnt the captions: most samples of each prompt have its shade
    assert shades[:8].count("bright") >= 6 and shades[8:].count("dark") >= 6
