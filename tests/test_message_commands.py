"""Every command an error message recommends exists: `n2n-hub ...` in our CLI, `hf ...` in huggingface_hub's.

The sources are scanned for backquoted commands, so a message added later is checked too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from n2n_hub.cli.commands import cli

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"`((?:n2n-hub|hf|huggingface-cli) [^`]*)`")


def recommended() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in ("n2n_hub", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            for cmd in COMMAND.findall(path.read_text(encoding="utf-8")):
                found.setdefault(cmd, set()).add(str(path.relative_to(ROOT)))
    return found


def _words(cmd: str) -> list[str]:
    """The command's fixed words: up to the first argument, placeholder or option."""
    words = []
    for w in cmd.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        words.append(w)
    return words


@pytest.mark.slow
def test_messages_recommend_only_commands_that_exist():
    from n2n_hub.cli.commands import _register_plugin_commands

    _register_plugin_commands()  # as `main` does: built-in plugins add `train-expert vaegan|segmenter`
    found = recommended()
    assert any(c.startswith("hf download") for c in found) and any(c.startswith("n2n-hub cache rm") for c in found)
    assert not [c for c in found if c.startswith("huggingface-cli")], "huggingface_hub no longer ships it; use `hf`"
    hf_commands = set()
    for cmd, where in found.items():
        if cmd.startswith("n2n-hub "):
            group: click.Command = cli
            for word in _words(cmd):
                if not isinstance(group, click.Group):
                    break  # the rest are arguments
                sub = group.get_command(click.Context(group), word)
                assert sub is not None, f"`{cmd}` (in {sorted(where)}) names no n2n-hub command {word!r}"
                group = sub
        else:
            words = _words(cmd)
            hf_commands.add(" ".join(words[:2] if words and words[0] == "auth" else words[:1]))
    for sub in sorted(hf_commands):
        code = ("import sys; from huggingface_hub.cli.hf import main; "
                f"sys.argv = ['hf', *{sub.split()!r}, '--help']; main()")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "Usage" in p.stdout, f"`hf {sub}` does not exist: {p.stderr[-500:]}"
