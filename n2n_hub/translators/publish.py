"""Publishing a trained translator: the file others fetch, and the registry snippet that points at it.

``publish`` copies a cached translator out of the cache under a stable name and writes a
``[pairs.NAME]`` snippet with ``published`` = url (or hf_repo + hf_file) and the file's
sha256. Anyone who adds the snippet to a registry (a user file, ``$N2N_HUB_REGISTRY``, a
plugin's ``register_pairs``) gets the translator fetched and verified instead of training
it. A snippet without a url points at the file beside it (a relative path, resolved
against the registry file), which is how the package ships its default pair
(``bench/release_default.py`` trains and ships it).
Uploading to the Hugging Face hub goes through ``huggingface_hub`` and only when asked.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import file as translator_file
from ..base.atomic import atomic_path, atomic_write_bytes, sha256_file
from ..errors import InputError
from ..catalog.registry import _PAIR_KEYS, _TRAIN_KEYS, parse_entry
from .store import CacheEntry, TranslatorStore, safe_label


@dataclass(frozen=True)
class Publication:
    """What ``publish`` wrote: the translator file, the registry snippet and where others fetch it."""

    name: str
    file: Path
    snippet: Path
    sha256: str
    published: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": str(self.file), "snippet": str(self.snippet), "sha256": self.sha256,
                "published": self.published}


def find_cached(store: TranslatorStore, key: str) -> CacheEntry:
    """The one cached translator whose key starts with ``key``."""
    found = [e for e in store.entries() if e.key.startswith(key)] if key else []
    if not found:
        raise InputError(f"no cached translator with key {key!r}; `n2n-hub cache list` shows the keys")
    if len(found) > 1:
        raise InputError(f"key {key!r} matches {len(found)} translators ({', '.join(e.key[:12] for e in found)}); "
                         "give more of the key")
    return found[0]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def snippet_text(name: str, entry: dict[str, Any]) -> str:
    """``[pairs.NAME]`` TOML for an entry (scalars first, then its tables)."""
    lines = [f"[pairs.{name}]"] if any(not isinstance(v, dict) for v in entry.values()) else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items() if not isinstance(v, dict) and v is not None]
    for k, table in entry.items():
        if isinstance(table, dict):
            lines += ([""] if lines else []) + [f"[pairs.{name}.{k}]"]
            lines += [f"{tk} = {_toml_value(tv)}" for tk, tv in table.items()]
    return "\n".join(lines) + "\n"


def registry_entry(meta: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(existing entry name, table)``: only ``published`` when the translator came from a registry
    entry, else a whole entry that reproduces its plan (and so its cache key)."""
    recipe = meta.get("recipe", {})
    if recipe.get("data_path"):
        raise InputError("this translator was trained on local data (--data), which others do not have; "
                         "publish a translator of a registry or dataset recipe instead")
    if recipe.get("registry_entry"):
        return recipe["registry_entry"], {}
    entry: dict[str, Any] = {"source": recipe["source"], "target": recipe["target"], "recipe": recipe["recipe"]}
    if recipe.get("dataset"):
        entry["dataset"] = recipe["dataset"]
        entry["source_from"] = recipe.get("start_domain")
    entry["bridges"] = list(recipe.get("bridges") or [])
    for k in ("pairs_per_item", "samples", "seed", "translator"):
        if k in recipe and k in _PAIR_KEYS:
            entry[k] = recipe[k]
    entry["flow"] = dict(recipe.get("flow") or {})
    entry["training"] = {k: v for k, v in (meta.get("training") or {}).items() if k in _TRAIN_KEYS}
    return None, entry


def publish(store: TranslatorStore, key: str, out_dir: str | Path, *, url: str | None = None,
            hf_repo: str | None = None, hf_file: str | None = None, name: str | None = None,
            upload: bool = False, endpoint: str | None = None, token: str | None = None) -> Publication:
    """Write the translator ``key`` and its registry snippet into ``out_dir`` (optionally upload it).

    ``url`` is where the file will be served (a folder URL ending in ``/`` gets the file name
    appended); ``hf_repo`` (+ ``hf_file``, default the file name) names a Hugging Face repo
    instead. With neither, the snippet points at the file beside it.
    """
    if upload and not hf_repo:
        raise InputError("--upload needs --hf-repo (the Hugging Face repository to upload to)")
    cached = find_cached(store, key)
    store.check(cached.path)  # never publish a file that changed after it was cached
    meta = translator_file.read_metadata(cached.path)
    existing, entry = registry_entry(meta)
    out = Path(out_dir).expanduser()
    file = out / f"{safe_label(cached.pair)}-{cached.key[:16]}.safetensors"
    with atomic_path(file) as tmp:
        shutil.copyfile(cached.path, tmp)
    digest = sha256_file(file)
    if hf_repo:
        published = {"hf_repo": hf_repo, "hf_file": hf_file or file.name}
    elif url:
        published = {"url": url + file.name if url.endswith("/") else url}
    else:
        published = {"url": file.name}
    published["sha256"] = digest
    name = name or existing or re.sub(r"[^a-z0-9]+", "-", cached.pair.lower()).strip("-")
    entry = {**entry, "published": published}
    snippet = out / f"{name}.toml"
    text = ("# Published translator " + cached.key + ": add this to a registry file\n"
            "# (~/.config/n2n-hub/registry.toml or one named in $N2N_HUB_REGISTRY).\n" + snippet_text(name, entry))
    if existing is None:
        parse_entry(snippet, name, entry)  # what we write must load
    atomic_write_bytes(snippet, text.encode())
    if upload:
        upload_file(file, hf_repo, published["hf_file"], endpoint=endpoint, token=token)
    return Publication(name, file, snippet, digest, published)


def upload_file(file: Path, repo: str, path_in_repo: str, endpoint: str | None = None,
                token: str | None = None) -> str:
    """Upload through ``huggingface_hub`` (``endpoint`` defaults to ``$HF_ENDPOINT`` or huggingface.co)."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint, token=token).upload_file(
            path_or_fileobj=str(file), path_in_repo=path_in_repo, repo_id=repo,
            commit_message=f"Add translator {file.name}")
    except Exception as e:  # noqa: BLE001 - network and HTTP errors of every kind end up here
        raise InputError(f"upload of {file.name} to {repo} failed: {type(e).__name__}: {str(e)[:300]}") from e
    return str(getattr(info, "commit_url", info))

