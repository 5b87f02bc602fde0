"""Ship the default pair's translator inside the package: ``n2n_hub/published/`` and its registry entry.

Run ``python bench/release_default.py [--home DIR]`` whenever the default pair's training, its
experts or the translator format change: its cache key then changes, and the shipped file no
longer answers the request. The script trains the pair (or takes ``--home``'s cached translator;
it never fetches the file it replaces), publishes it with :meth:`n2n_hub.Hub.publish` into
``n2n_hub/published/``, rewrites the pair's ``[pairs.NAME.published]`` table in the
repository's registry.toml (``n2n_hub/registry.toml`` links to it in a checkout) and pastes the
shipped translator's model card into the README's publishing section.
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
README = Path(__file__).resolve().parent.parent / "README.md"
CARD_START = f"<!-- the shipped translator's model card, written by `{COMMAND}` -->"
CARD_END = "<!-- end of the shipped translator's model card -->"


def published_table(name: str, url: str, sha256: str, size: int | None = None) -> str:
    """The ``[pairs.NAME.published]`` table pointing at a shipped file (``url`` relative to the registry)."""
    return (f"[pairs.{name}.published]\n"
            f"# written by `{COMMAND}`: the translator shipped in n2n_hub/published/\n"
            f'url = "{url}"\nsha256 = "{sha256}"\n' + (f"size = {size}\n" if size is not None else ""))


def write_published_table(registry_file: Path, name: str, table: str) -> None:
    """Replace the pair's published table in ``registry_file`` (or append it), leaving the rest as it is."""
    text = registry_file.read_text(encoding="utf-8")
    block = re.compile(rf"\[pairs\.{re.escape(name)}\.published\]\n(?:[^\[\n].*\n|\n(?!\[))*")
    text = block.sub(table + "\n", text, count=1) if block.search(text) else text.rstrip("\n") + "\n\n" + table
    atomic_write_bytes(registry_file, text.encode())


def shipped_card(hub: Hub | None = None, shipped_dir: Path = SHIPPED_DIR) -> str:
    """The model card of the translator shipped in ``shipped_dir`` (what the README shows)."""
    files = sorted(shipped_dir.glob("*.safetensors"))
    if len(files) != 1:
        raise InputError(f"{shipped_dir} should hold exactly one translator file, not {len(files)}")
    return (hub or Hub(progress=False, log=lambda m: None)).card(files[0])


def readme_block(card: str) -> str:
    """The README's block that shows ``card`` (a four-backtick fence: cards hold code blocks)."""
    return f"{CARD_START}\n````markdown\n{card}````\n{CARD_END}"


def write_readme_card(readme: Path, card: str) -> None:
    """Replace the shipped card's block in ``readme`` (between its two marker comments)."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(CARD_START), text.find(CARD_END)
    if start < 0 or end < start:
        raise InputError(f"{readme} has no block between {CARD_START!r} and {CARD_END!r} to hold the card")
    atomic_write_bytes(readme, (text[:start] + readme_block(card) + text[end + len(CARD_END):]).encode())


def release(pair: tuple[str, str] = DEFAULT_PAIR, home: str | Path | None = None, shipped_dir: Path = SHIPPED_DIR,
            registry_path: Path | None = None, log: Callable[[str], Any] = print,
            readme_path: Path | None = None) -> Publication:
    """Train (or take from ``home``'s cache) ``pair`` and ship it: its file in ``shipped_dir``, its
    published table in ``registry_path`` (default: the package's registry.toml) and, given
    ``readme_path``, its model card in that README."""
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
    if pub.card is not None:
        pub.card.unlink()  # and the card into the README
    url = Path(os.path.relpath(pub.file, registry_path.parent)).as_posix()  # resolved against the registry file
    target = registry_path.resolve()  # in a checkout the package's registry.toml links to the repository's
    write_published_table(target, plan.entry.name, published_table(plan.entry.name, url, pub.sha256,
                                                                   pub.published.get("size")))
    log(f"shipped {pub.file} (sha256 {pub.sha256}) and its entry in {target}")
    if readme_path is not None:
        write_readme_card(readme_path, hub.card(pub.file))
        log(f"pasted its model card into {readme_path}")
    return pub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="cache to train in or take the translator from "
                                                            "(default: $N2N_HUB_HOME)")
    args = ap.parse_args()
    release(home=args.home, readme_path=README)


if __name__ == "__main__":
    main()
