"""registry.toml: the known pairs, their recipes and hyperparameters, and published translators.

The package ships one registry; a user registry (``~/.config/n2n-hub/registry.toml``) and
``$N2N_HUB_REGISTRY`` (one or more paths separated by ``os.pathsep``) merge over it, later
files winning key by key. Every entry is validated on load, and an invalid one is an error
naming the file, the key and the problem.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import RegistryError
from ..spec.expert import ExpertAddress
from ..base.paths import REGISTRY_ENV, user_registry_path
from .builtin_recipes import BUILTIN_RECIPES
from .schema import keys_of

# Recipes are registered by plugins (register_recipes); an entry's recipe name is checked when
# its pair is planned. The built-in ones are known here already, so a file is checked on load.
BUILTIN = {spec.id: spec for spec in BUILTIN_RECIPES}
# The keys an entry takes: one schema, which the README's table prints (catalog/schema.py).
_PAIR_KEYS = keys_of("")
_FLOW_KEYS = keys_of("flow")
_TRAIN_KEYS = keys_of("training")
_PUBLISHED_KEYS = keys_of("published")


_RECIPE_ID = re.compile(r"^[a-z][a-z0-9_\-]*$")


def shipped_registry_path() -> Path:
    return Path(__file__).parent.parent / "registry.toml"


PLUGIN_ORIGIN = "plugin "


def plugin_origin(plugin: str) -> str:
    """The ``origin`` of an entry a plugin registered through ``register_pairs``."""
    return f"{PLUGIN_ORIGIN}{plugin}"


def describe_origin(origin: str) -> str:
    """Where an entry came from, for people: ``built-in``, ``plugin NAME`` or ``user file PATH``."""
    if origin == str(shipped_registry_path()):
        return "built-in"
    if origin.startswith(PLUGIN_ORIGIN):
        return origin
    return f"user file {origin}"


@dataclass(frozen=True)
class Published:
    """Where a trained translator can be fetched from, and the sha256 it must have."""

    sha256: str
    url: str | None = None
    hf_repo: str | None = None
    hf_file: str | None = None
    size: int | None = None  # bytes; a download that grows past it is stopped


@dataclass(frozen=True)
class PairEntry:
    """One known pair: which experts, how to make training data, and how to train."""

    name: str
    source: ExpertAddress
    target: ExpertAddress
    recipe: str
    origin: str
    dataset: str | None = None
    source_from: str | None = None
    bridges: tuple[str, ...] | None = None
    target_from: str | None = None  # where a bridged target's inputs start (recipes with bridged_target)
    target_bridges: tuple[str, ...] | None = None
    pairs_per_item: int = 1
    samples: int = 50_000
    seed: int = 0
    batch_size: int = 256
    translator: str = "cinn"
    temperature: float = 1.0  # default sampling temperature of this pair's translations
    description: str = ""
    flow: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    published: Published | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the recipe's own settings

    def describe_origin(self) -> str:
        """Where this entry came from, for people: ``built-in``, ``plugin NAME`` or ``user file PATH``."""
        return describe_origin(self.origin)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": str(self.source), "target": str(self.target), "recipe": self.recipe,
            "dataset": self.dataset, "source_from": self.source_from,
            "bridges": list(self.bridges) if self.bridges is not None else None,
            **({"target_from": self.target_from} if self.target_from else {}),
            **({"target_bridges": list(self.target_bridges)} if self.target_bridges is not None else {}),
            "pairs_per_item": self.pairs_per_item, "samples": self.samples, "seed": self.seed,
            "translator": self.translator, "temperature": self.temperature, "description": self.description,
            "flow": self.flow,
            "training": self.training, "published": vars(self.published) if self.published else None,
            "origin": self.origin, "from": describe_origin(self.origin), "options": self.options,
        }


def _fail(path: Path | str, key: str, problem: str) -> RegistryError:
    return RegistryError(f"{path}: [pairs.{key}] {problem}")


def _check_table(path: Path | str, key: str, name: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(path, key, f"'{name}' must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _fail(path, key, f"unknown {name} key(s) {unknown}; allowed: {sorted(allowed)}")
    from ..base.validation import FLOW_CHOICES, FLOW_RULES, TRAINING_RULES, number_problem

    rules = {"flow": FLOW_RULES, "training": TRAINING_RULES}.get(name, {})
    choices = FLOW_CHOICES if name == "flow" else {}
    for k, v in table.items():
        if k in choices:
            if v not in choices[k]:
                raise _fail(path, key, f"{name}.{k} must be one of {list(choices[k])}, got {v!r}")
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise _fail(path, key, f"{name}.{k} must be a number, got {v!r}")
        problem = number_problem(f"{name}.{k}", v, rules[k]) if k in rules else None
        if problem:
            raise _fail(path, key, problem)
    return dict(table)


def parse_entry(path: Path | str, key: str, raw: Any) -> PairEntry:
    """Validate one ``[pairs.KEY]`` table into a :class:`PairEntry`."""
    if not isinstance(raw, dict):
        raise _fail(path, key, "must be a table")
    unknown = sorted(set(raw) - _PAIR_KEYS)
    if unknown:
        raise _fail(path, key, f"unknown key(s) {unknown}; allowed: {sorted(_PAIR_KEYS)}")
    for req in ("source", "target", "recipe"):
        if not isinstance(raw.get(req), str) or not raw[req].strip():
            raise _fail(path, key, f"'{req}' is required and must be a string")
    recipe = raw["recipe"]
    if not _RECIPE_ID.match(recipe):
        raise _fail(path, key, f"recipe {recipe!r} is not a recipe id (built-in recipes: {tuple(BUILTIN)}; "
                               "plugins register more)")
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise _fail(path, key, "'options' must be a table of the recipe's settings")
    if recipe in BUILTIN and BUILTIN[recipe].needs_dataset and not isinstance(raw.get("dataset"), str):
        raise _fail(path, key, f"recipe {recipe!r} needs 'dataset = \"<dataset id>\"'")
    bridges = raw.get("bridges")
    if bridges is not None and (not isinstance(bridges, list) or not all(isinstance(b, str) for b in bridges)):
        raise _fail(path, key, "'bridges' must be a list of bridge ids")
    target_bridges = raw.get("target_bridges")
    if target_bridges is not None and (not isinstance(target_bridges, list)
                                       or not all(isinstance(b, str) for b in target_bridges)):
        raise _fail(path, key, "'target_bridges' must be a list of bridge ids")
    if raw.get("target_from") is not None and not isinstance(raw["target_from"], str):
        raise _fail(path, key, "'target_from' must be a domain name such as \"label\"")
    ints = {}
    for k, default, lo in (("pairs_per_item", 1, 1), ("samples", 50_000, 1), ("seed", 0, 0), ("batch_size", 256, 1)):
        v = raw.get(k, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise _fail(path, key, f"'{k}' must be an integer >= {lo}, got {v!r}")
        ints[k] = v
    temperature = raw.get("temperature", 1.0)
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 < temperature <= 10:
        raise _fail(path, key, f"'temperature' must be a number in (0, 10], got {temperature!r}")
    translator = raw.get("translator", "cinn")
    from ..spec.kinds import kind_names

    if translator not in kind_names():
        raise _fail(path, key, f"translator {translator!r} is not one of {kind_names()}")
    published = None
    if "published" in raw:
        pub = raw["published"]
        if not isinstance(pub, dict) or set(pub) - _PUBLISHED_KEYS:
            raise _fail(path, key, f"'published' must be a table with keys among {sorted(_PUBLISHED_KEYS)}")
        sha = pub.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
            raise _fail(path, key, "published.sha256 must be 64 hex digits")
        if not pub.get("url") and not (pub.get("hf_repo") and pub.get("hf_file")):
            raise _fail(path, key, "published needs 'url', or 'hf_repo' and 'hf_file'")
        size = pub.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise _fail(path, key, f"published.size must be a whole number of bytes, got {size!r}")
        url = _resolve_url(path, pub.get("url"))
        if url is not None:
            _check_url(path, key, url)
        published = Published(sha.lower(), url, pub.get("hf_repo"), pub.get("hf_file"), size)
    try:
        source, target = ExpertAddress.parse(raw["source"]), ExpertAddress.parse(raw["target"])
    except Exception as e:
        raise _fail(path, key, str(e)) from None
    return PairEntry(
        name=key, source=source, target=target, recipe=recipe, origin=str(path),
        dataset=raw.get("dataset"), source_from=raw.get("source_from"),
        bridges=tuple(bridges) if bridges is not None else None, target_from=raw.get("target_from"),
        target_bridges=tuple(target_bridges) if target_bridges is not None else None, translator=translator,
        temperature=float(temperature), description=str(raw.get("description", "")),
        flow=_check_table(path, key, "flow", raw.get("flow", {}), _FLOW_KEYS),
        training=_check_table(path, key, "training", raw.get("training", {}), _TRAIN_KEYS),
        published=published, options=dict(options), **ints,
    )


def _check_url(path: Path | str, key: str, url: Any) -> None:
    """A fetchable URL: http(s) or file, and well formed."""
    import urllib.parse

    if not isinstance(url, str) or any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise _fail(path, key, f"published.url {url!r} is not a URL (no spaces or control characters)")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on a malformed one
    except ValueError as e:
        raise _fail(path, key, f"published.url {url!r} is malformed ({e})") from None
    if parts.scheme not in ("http", "https", "file"):
        raise _fail(path, key, f"published.url {url!r} must be an http(s) or file URL, or a path beside the file")
    if parts.scheme != "file" and not parts.hostname:
        raise _fail(path, key, f"published.url {url!r} names no host")


def _resolve_url(path: Path | str, url: str | None) -> str | None:
    """A url without a scheme is a file path relative to the registry file that names it."""
    if not url or "://" in url or url.startswith("file:") or not Path(str(path)).is_file():
        return url
    return (Path(str(path)).absolute().parent / url).resolve().as_uri()  # beside the file as named, links kept


def default_registry_paths() -> list[Path]:
    """Shipped, then user, then ``$N2N_HUB_REGISTRY`` (later ones win)."""
    paths = [shipped_registry_path(), user_registry_path()]
    extra = os.environ.get(REGISTRY_ENV, "")
    paths += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return paths


class Registry:
    """All known pairs, merged from several registry files."""

    def __init__(self, entries: dict[str, PairEntry] | None = None, files: list[Path] | None = None,
                 conflicts: list[tuple[str, str, str]] | None = None) -> None:
        self.entries = entries or {}
        self.files = files or []
        # (entry name, plugin, why): plugin entries refused because they would replace an entry of ours
        self.conflicts = conflicts or []
        self.problems: list[str] = []  # files that were named but skipped, one line each

    @classmethod
    def load(cls, paths: list[Path] | None = None,
             plugin_pairs: dict[str, tuple[str, dict[str, Any]]] | None = None) -> "Registry":
        """Merge registry files in order, later ones winning key by key.

        ``plugin_pairs`` (name -> (plugin, table), from the ``register_pairs`` hook) merge right
        after the first file (the shipped registry), so user files still override them.
        """
        paths = default_registry_paths() if paths is None else paths
        merged: dict[str, tuple[Path | str, dict[str, Any]]] = {}
        used: list[Path] = []
        conflicts: list[tuple[str, str, str]] = []
        problems: list[str] = []

        def merge_plugin_pairs() -> None:
            for key, (plugin, raw) in sorted(plugin_pairs.items()):
                if key in merged:  # only the shipped registry is merged before plugins
                    conflicts.append((key, plugin, f"a plugin cannot replace the built-in entry {key!r}; "
                                                   "register it under another name"))
                    continue
                merge(plugin_origin(plugin), key, raw)

        def merge(origin: Path | str, key: str, raw: Any) -> None:
            pub = raw.get("published") if isinstance(raw, dict) else None
            if isinstance(pub, dict) and isinstance(pub.get("url"), str):
                # A relative url means "beside the file that says so", whichever file adds keys later.
                raw = {**raw, "published": {**pub, "url": _resolve_url(origin, pub["url"])}}
            if key in merged and isinstance(raw, dict):
                base = dict(merged[key][1])
                for k, v in raw.items():
                    base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                raw = base
            merged[key] = (origin, raw)

        for i, path in enumerate(paths):
            if i == 1 and plugin_pairs:
                merge_plugin_pairs()
            path = Path(path)
            if not path.is_file():
                if i > 1:  # named in N2N_HUB_REGISTRY: say so, and let every other command work
                    problems.append(f"registry file {path} (from ${REGISTRY_ENV}) does not exist: skipped; "
                                    f"restore it or remove it from ${REGISTRY_ENV}")
                continue
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise RegistryError(f"{path}: not valid TOML ({e})") from None
            unknown = sorted(set(data) - {"pairs"})
            if unknown:
                raise RegistryError(f"{path}: unknown top-level table(s) {unknown}; only [pairs.NAME] is allowed")
            pairs = data.get("pairs", {})
            if not isinstance(pairs, dict):
                raise RegistryError(f"{path}: 'pairs' must be a table of [pairs.NAME] tables")
            for key, raw in pairs.items():
                merge(path, key, raw)
            used.append(path)
        if len(paths) < 2 and plugin_pairs:
            merge_plugin_pairs()
        entries = {key: parse_entry(path, key, raw) for key, (path, raw) in merged.items()}
        registry = cls(entries, used, conflicts)
        registry.problems = problems
        return registry

    def find(self, source: ExpertAddress, target: ExpertAddress) -> PairEntry | None:
        """The entry for this pair; ``source``/``target`` have their variants resolved already.

        An entry without a variant matches any variant; one with a variant matches only it.
        Likewise an entry whose source names no tap matches every tap of that source (a
        model zoo's layers differ from model to model), one with a tap only that tap. Among
        matches, the most specific wins: a tap given first, then the most variants given.
        """
        def matches(want: ExpertAddress, have: ExpertAddress) -> bool:
            return (want.id == have.id and (want.tap is None or want.tap == have.tap)
                    and (want.variant is None or want.variant == have.variant))

        found = [e for e in self.entries.values() if matches(e.source, source) and matches(e.target, target)]
        found.sort(key=lambda e: (e.source.tap is not None, (e.source.variant is not None) + (e.target.variant is not None)),
                   reverse=True)
        return found[0] if found else None
