"""What a sentence-transformers checkpoint says about pooling, normalisation and length.

A plain BERT checkpoint (no ``modules.json``) gets SBERT's default: mean pooling, no
normalisation. Modules we cannot reproduce (e.g. a Dense projection) are refused rather
than silently skipped, since the embedding would differ from the published one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from n2n_hub.kit import InputError

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


@dataclass(frozen=True)
class SentenceConfig:
    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    lowercase: bool = False


def read_sentence_config(folder: Path) -> SentenceConfig:
    modules_file = folder / "modules.json"
    pooling, normalize = "mean", False
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text()):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind == "Transformer":
                continue
            if kind == "Pooling":
                pooling = _pooling_mode(folder / module.get("path", "1_Pooling") / "config.json")
            elif kind == "Normalize":
                normalize = True
            else:
                raise InputError(
                    f"{folder} is a sentence-transformers model with a {kind!r} module, which the bert expert "
                    "does not reproduce; use a checkpoint made of Transformer, Pooling and Normalize only"
                )
    settings = folder / "sentence_bert_config.json"
    max_len, lower = None, False
    if settings.is_file():
        data = json.loads(settings.read_text())
        max_len = data.get("max_seq_length")
        lower = bool(data.get("do_lower_case", False))
    return SentenceConfig(pooling, normalize, int(max_len) if max_len else None, lower)


def _pooling_mode(config_file: Path) -> str:
    if not config_file.is_file():
        return "mean"
    data = json.loads(config_file.read_text())
    chosen = [_strip(k[len("pooling_mode_"):]) for k, v in data.items() if k.startswith("pooling_mode_") and v is True]
    if isinstance(data.get("pooling_mode"), str):
        chosen = [_strip(data["pooling_mode"])]
    if len(chosen) != 1 or chosen[0] not in POOLING_MODES:
        raise InputError(f"{config_file}: unsupported pooling {chosen or 'none'}; the bert expert supports "
                         f"exactly one of {', '.join(POOLING_MODES)}")
    return chosen[0]


def _strip(name: str) -> str:
    for suffix in ("_tokens", "_token"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
