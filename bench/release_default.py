"""Ship the default pair's translator inside the package: ``n2n_hub/published/`` and its registry entry.

Run ``python bench/release_default.py [--home DIR]`` whenever the default pair's training, its
experts or the translator format change: its cache key then changes, and the shipped file no
longer answers the request. The script trains the pair (or takes ``--home``'s cached translator;
it never fetches the file it replaces), publishes it with :meth:`n2n_hub.Hub.publish` into
``n2n_hub/published/``, and rewrites the pair's ``[pairs.NAME.published]`` table in the
repository's registry.toml (``n2n_hub/registry.toml`` links to it in a checkout).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Callable

import n2n_hub
from n2n_hub import Hub
from n2n_hub.catalog.registry import Registry, shipped_registry_path
from n2n_hub.errors import InputError
from n2n_hub.kit import atomic_write_bytes
from n2n_hub.translators.publish import Publication

DEFAULT_PAIR = ("bert", "vaegan")  # the README's first command; registry entry bert-vaegan-animals
SHIPPED_DIR = Path(n2n_hub.__file__).parent / "published"
COMMAND = "python bench/release_default.py"


def published_table(name: str, url: str, sha256: str) -> str:
    """The ``[pairs.NAME.published]`` table pointing at a shipped file (``url`` relative to the registry)."""
    return (f"[pairs.{name}.published]\n"
            f"# written by `{COMMAND}`: the translator shipped in n2n_hub/published/\n"
            f'url = "{url}"\nsha256 = "{sha256}"\n')


def write_published_table(registry_file: Path, name: str, table: str) -> None:
    """Replace the pair's published table in ``registry_file`` (or append it), leaving the rest as it is."""
    text = registry_file.read_text(encoding="utf-8")
    block = re.compile(rf"\[pairs\.{re.escape(name)}\.published\]\n(?:[^\[\n].*\n|\n(?!\[))*")
    text = block.sub(table + "\n", text, count=1) if block.search(text) else text.rstrip("\n") + "\n\n" + table
    atomic_write_bytes(registry_file, text.encode())


def release(pair: tuple[str, str] = DEFAULT_PAIR, home: str | Path | None = None, shipped_dir: Path = SHIPPED_DIR,
            registry_path: Path | None = None, log: Callable[[str], Any] = print) -> Publication:
    """Train (or take from ``home``'s cache) ``pair`` and ship it: its file in ``shipped_dir`` and its
    published table in ``registry_path`` (default: the package's registry.toml)."""
    registry_path = registry_path if registry_path is not None else shipped_registry_path()
    hub = Hub(home=home, log=log)
    plan = hub.plan(*pair)
    if plan.entry is None:
        raise InputError(f"no registry entry for {pair[0]} -> {pair[1]}: only a registry pair can be shipped")
    # never fetch the file being replaced: train, or take this home's own cached translator
    registry = Registry.load(plugin_pairs=hub.catalog.pairs)
    registry.entries[plan.entry.name] = dataclasses.replace(plan.entry, published=None)
    hub = Hub(home=home, log=log, registry=registry)
    translator = hub.pair(*pair)
    shipped_dir.mkdir(parents=True, exist_ok=True)
    for old in shipped_dir.glob("*.safetensors"):
        old.unlink()
    pub = hub.publish(translator.metadata["key"], shipped_dir, name=plan.entry.name)
    pub.snippet.unlink()  # the table goes into the shipped registry instead
    url = Path(os.path.relpath(pub.file, registry_path.parent)).as_posix()  # resolved against the registry file
    target = registry_path.resolve()  # in a checkout the package's registry.toml links to the repository's
    write_published_table(target, plan.entry.name, published_table(plan.entry.name, url, pub.sha256))
    log(f"shipped {pub.file} (sha256 {pub.sha256}) and its entry in {target}")
    return pub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="cache to train in or take the translator from "
                                                            "(default: $N2N_HUB_HOME)")
    args = ap.parse_args()
    release(home=args.home)


if __name__ == "__main__":
    main()
