"""Publishing a trained translator: the file others fetch, its model card, and the registry snippet.

``publish`` copies a cached translator out of the cache under a stable name, writes its
model card (``README.md``, see :mod:`n2n_hub.translators.card`) and a ``[pairs.NAME]``
snippet with ``published`` = url (or hf_repo + hf_file), the file's sha256 and size.
Anyone who adds the snippet to a registry (a user file, ``$N2N_HUB_REGISTRY``, a plugin's
``register_pairs``) gets the translator fetched and verified instead of training it. A
snippet without a url points at the file beside it (a relative path, resolved against the
registry file), which is how the package ships its default pair (``bench/release_default.py``
trains and ships it).

Every value is checked where it comes in, before any work: the entry name is a registry
key, the url a well-formed http(s) or file URL, the output folder one we can write to. The
snippet is written by a TOML writer whose strings are escaped per the TOML spec, parsed
back with the registry's own parser before it replaces anything, and so always loads.
Uploading to the Hugging Face hub goes through ``huggingface_hub`` and only when asked.
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import file as translator_file
from ..base.atomic import atomic_path, atomic_write_bytes, sha256_file
from ..errors import InputError, RegistryError
from ..catalog.registry import _PAIR_KEYS, _TRAIN_KEYS, parse_entry
from .card import CARD_FILE, check_card, is_card, model_card
from .store import CacheEntry, TranslatorStore, safe_label

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from ..spec.components import DatasetSpec
    from ..spec.expert import ExpertSpec

    # what a card is written from: the experts' and the dataset's specs of a translator's metadata
    CardSpecs = Callable[[Mapping[str, Any]], "tuple[ExpertSpec | None, ExpertSpec | None, DatasetSpec | None]"]

NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # a registry key that needs no quoting: [pairs.NAME]


@dataclass(frozen=True)
class Publication:
    """What ``publish`` wrote: the translator file, its card, the registry snippet and where others fetch it."""

    name: str
    file: Path
    snippet: Path
    sha256: str
    published: dict[str, Any]
    card: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": str(self.file), "snippet": str(self.snippet), "sha256": self.sha256,
                "published": self.published, "card": str(self.card) if self.card else None}


def find_cached(store: TranslatorStore, key: str) -> CacheEntry:
    """The one cached translator whose key starts with ``key``."""
    found = [e for e in store.entries() if e.key.startswith(key)] if key else []
    if not found:
        raise InputError(f"no cached translator with key {key!r}; `n2n-hub cache list` shows the keys")
    if len(found) > 1:
        raise InputError(f"key {key!r} matches {len(found)} translators ({', '.join(e.key[:12] for e in found)}); "
                         "give more of the key")
    return found[0]


# -- checking what comes in -------------------------------------------------------------
def check_name(name: str, what: str = "--name", fix: str = "use letters, digits, '-' and '_' only") -> str:
    """A registry entry name: letters, digits, '-' and '_' (so ``[pairs.NAME]`` is one plain table)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"{what} {name!r} is not a registry entry name: {fix}")
    return name


def check_url(url: str, what: str = "--url") -> str:
    """A fetchable URL: http(s) with a host, or file; no whitespace or control characters."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url) or not url.isprintable():
        raise InputError(f"{what} {url!r} is not a URL: it must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on a malformed one
    except ValueError as e:
        raise InputError(f"{what} {url!r} is malformed ({e}); give an http(s):// or file: URL") from None
    if parts.scheme not in ("http", "https", "file"):
        raise InputError(f"{what} {url!r} must be an http(s):// or file: URL")
    if parts.scheme != "file" and not parts.hostname:
        raise InputError(f"{what} {url!r} names no host; give it as https://host/folder/")
    return url


def check_hf(hf_repo: str, hf_file: str | None) -> None:
    """A Hugging Face repository id and a plain path inside it."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(hf_repo)
    except (HFValidationError, TypeError) as e:
        raise InputError(f"--hf-repo {hf_repo!r} is not a Hugging Face repository id like ORG/NAME ({e})") from None
    if hf_file is not None and (not hf_file or not hf_file.isprintable() or hf_file.startswith("/")
                                or any(part in ("", ".", "..") for part in hf_file.split("/"))
                                or hf_file == CARD_FILE):
        raise InputError(f"--hf-file {hf_file!r} is not a file path inside the repository (no '..', no leading "
                         f"'/', not {CARD_FILE})")


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, created if need be and proven writable by a probe file; never a file, and
    never one whose README.md is something other than an n2n-hub card (publish would replace it)."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out} is a file, not a folder; name a folder to publish into")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".n2n-hub-probe") as probe:
            probe.write_bytes(b"")
        (out / ".n2n-hub-probe").unlink()
    except OSError as e:
        raise InputError(f"-o {out} is not a folder we can write to ({e.strerror or e}); name another") from None
    readme = out / CARD_FILE
    if readme.exists() and not is_card(readme):
        raise InputError(f"{readme} exists and is not an n2n-hub model card; publish into another folder (-o) "
                         "so it is not replaced")
    return out


# -- TOML -------------------------------------------------------------------------------
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def toml_string(s: str) -> str:
    """``s`` as a TOML basic string: quote and backslash escaped, every control character as ``\\uXXXX``."""
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        elif 0xD800 <= ord(c) <= 0xDFFF:
            raise ValueError(f"{s!r} holds a lone surrogate, which TOML cannot store")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_key(k: str) -> str:
    return k if NAME.match(k) else toml_string(k)


def toml_value(v: Any) -> str:
    """One TOML value (inline tables for nested tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def snippet_text(name: str, entry: dict[str, Any]) -> str:
    """``[pairs.NAME]`` TOML for an entry (scalars first, then its tables)."""
    check_name(name)
    lines = [f"[pairs.{name}]"] if any(not isinstance(v, dict) for v in entry.values()) else []
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items() if not isinstance(v, dict) and v is not None]
    for k, table in entry.items():
        if isinstance(table, dict):
            lines += ([""] if lines else []) + [f"[pairs.{name}.{toml_key(k)}]"]
            lines += [f"{toml_key(str(tk))} = {toml_value(tv)}" for tk, tv in table.items() if tv is not None]
    return "\n".join(lines) + "\n"


def whole_entry(meta: dict[str, Any]) -> dict[str, Any]:
    """A registry entry that reproduces the plan a translator was trained with."""
    recipe = meta.get("recipe", {})
    entry: dict[str, Any] = {"source": recipe["source"], "target": recipe["target"], "recipe": recipe["recipe"]}
    if recipe.get("dataset"):
        entry["dataset"] = recipe["dataset"]
        entry["source_from"] = recipe.get("start_domain")
    entry["bridges"] = list(recipe.get("bridges") or [])
    for k in ("pairs_per_item", "samples", "seed", "translator"):
        if k in recipe and k in _PAIR_KEYS:
            entry[k] = recipe[k]
    if recipe.get("options"):
        entry["options"] = dict(recipe["options"])
    entry["flow"] = dict(recipe.get("flow") or {})
    entry["training"] = {k: v for k, v in (meta.get("training") or {}).items() if k in _TRAIN_KEYS}
    return entry


def registry_entry(meta: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(existing entry name, table)``: only ``published`` when the translator came from a registry
    entry, else a whole entry that reproduces its plan (and so its cache key)."""
    recipe = meta.get("recipe", {})
    if recipe.get("data_path"):
        raise InputError("this translator was trained on local data (--data), which others do not have; "
                         "publish a translator of a registry or dataset recipe instead")
    if recipe.get("from_route"):
        raise InputError("this translator was distilled from a route, and no registry entry can name one (its pairs "
                         "come from the route's translators, not a recipe); share its file, or publish the route's "
                         "hop translators")
    if recipe.get("registry_entry"):
        return recipe["registry_entry"], {}
    return None, whole_entry(meta)


def _without_none(v: Any) -> Any:
    """A value as TOML holds it: no None (the writer leaves those keys out), lists for tuples."""
    if isinstance(v, dict):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_without_none(x) for x in v]
    return v


def check_snippet(path: Path, name: str, meta: dict[str, Any], entry: dict[str, Any], shown: Path) -> None:
    """Read the snippet at ``path`` (to become ``shown``) back as the registry does; raise if it would
    not load as written."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        pairs = data.get("pairs")
        if set(data) != {"pairs"} or not isinstance(pairs, dict) or list(pairs) != [name] \
                or pairs[name] != _without_none(entry):
            raise RegistryError(f"it does not read back as the one [pairs.{name}] table written")
        # a published table alone merges over the registry entry it came from: check it on that entry
        parse_entry(path, name, {**whole_entry(meta), **pairs[name]} if set(entry) == {"published"} else pairs[name])
    except (tomllib.TOMLDecodeError, RegistryError, ValueError) as e:
        why = str(e).replace(str(path), str(shown))
        raise InputError(f"the registry snippet for {name!r} would not load ({why}); nothing was published") from None


# -- publishing -------------------------------------------------------------------------
def publish(store: TranslatorStore, key: str, out_dir: str | Path, *, url: str | None = None,
            hf_repo: str | None = None, hf_file: str | None = None, name: str | None = None,
            upload: bool = False, endpoint: str | None = None, token: str | None = None,
            specs: CardSpecs | None = None) -> Publication:
    """Write the translator ``key``, its model card and its registry snippet into ``out_dir``
    (optionally upload the file and the card).

    ``url`` is where the file will be served (a folder URL ending in ``/`` gets the file name
    appended); ``hf_repo`` (+ ``hf_file``, default the file name) names a Hugging Face repo
    instead. With neither, the snippet points at the file beside it. ``specs`` gives the
    experts' and dataset's specs for the card (licences, descriptions); without it the card
    says they are unknown. Every input is checked before anything is written.
    """
    if upload and not hf_repo:
        raise InputError("--upload needs --hf-repo (the Hugging Face repository to upload to)")
    if name is not None:
        check_name(name)
    if url is not None:
        check_url(url)
        if hf_repo:
            raise InputError("give --url or --hf-repo, not both")
    if hf_repo is not None:
        check_hf(hf_repo, hf_file)
    cached = find_cached(store, key)
    meta = translator_file.read_metadata(cached.path)
    existing, entry = registry_entry(meta)  # refuses a translator of local data
    out = check_out_dir(out_dir)
    store.check(cached.path)  # never publish a file that changed after it was cached
    file = out / f"{safe_label(cached.pair)}-{cached.key[:16]}.safetensors"
    digest, size = sha256_file(cached.path), cached.path.stat().st_size
    published: dict[str, Any]
    if hf_repo:
        published = {"hf_repo": hf_repo, "hf_file": hf_file or file.name}
    elif url:
        published = {"url": check_url(url + file.name) if url.endswith("/") else url}
    else:
        published = {"url": file.name}
    published.update(sha256=digest, size=size)
    if name is None:
        name = check_name(existing or re.sub(r"[^a-z0-9]+", "-", cached.pair.lower()).strip("-") or "pair",
                          "the entry name", "give one of letters, digits, '-' and '_' with --name")
    entry = {**entry, "published": published}
    snippet = out / f"{name}.toml"
    text = ("# Published translator " + cached.key + ": add this to a registry file\n"
            "# (~/.config/n2n-hub/registry.toml or one named in $N2N_HUB_REGISTRY).\n" + snippet_text(name, entry))
    source, target, dataset = specs(meta) if specs is not None else (None, None, None)
    card = model_card(meta, source, target, dataset, name=name, published=published)
    check_card(card)
    with atomic_path(snippet) as tmp_snippet:  # in place only once the file and its card are
        tmp_snippet.write_text(text, encoding="utf-8")
        check_snippet(tmp_snippet, name, meta, entry, snippet)
        with atomic_path(file) as tmp:
            shutil.copyfile(cached.path, tmp)
            if sha256_file(tmp) != digest:
                raise InputError(f"copying {cached.path} to {file} changed it (sha256); check the disk and retry")
        atomic_write_bytes(out / CARD_FILE, card.encode("utf-8"))
    if upload:
        upload_files({published["hf_file"]: file, CARD_FILE: out / CARD_FILE}, hf_repo,  # type: ignore[arg-type]
                     endpoint=endpoint, token=token)
    return Publication(name, file, snippet, digest, published, out / CARD_FILE)


def upload_files(files: dict[str, Path], repo: str, endpoint: str | None = None, token: str | None = None) -> str:
    """Upload ``{path in repo: local file}`` in one commit through ``huggingface_hub`` (``endpoint``
    defaults to ``$HF_ENDPOINT`` or huggingface.co)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    names = ", ".join(files)
    try:
        info = HfApi(endpoint=endpoint, token=token).create_commit(
            repo_id=repo, operations=[CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f))
                                      for p, f in files.items()],
            commit_message=f"Add translator {names}")
    except Exception as e:  # noqa: BLE001 - network and HTTP errors of every kind end up here
        why = " ".join(str(e).split())[:300]  # one line: the hub's reasons come as a list
        raise InputError(f"upload of {names} to {repo} failed: {type(e).__name__}: {why}") from None
    return str(getattr(info, "commit_url", info))


def upload_file(file: Path, repo: str, path_in_repo: str, endpoint: str | None = None,
                token: str | None = None) -> str:
    """Upload one file (see :func:`upload_files`)."""
    return upload_files({path_in_repo: file}, repo, endpoint=endpoint, token=token)
