"""The loaded ``bert`` expert: text → mean-pooled (optionally L2-normalised) token embeddings.

Weights are read by :mod:`n2n_bert.weights` into a model built from the checkpoint's
``config.json``; no code from the checkpoint runs. The result equals
``SentenceTransformer(folder).encode`` for Transformer → Pooling (→ Normalize) models.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from n2n_hub import Expert, ExpertSpec, Representation
from n2n_hub.kit import CacheError, MissingWeightsError, as_text_batch

from . import DEFAULT_VARIANT
from .checkpoints import Checkpoint, resolve
from .st_config import SentenceConfig, read_sentence_config
from .weights import file_sha256, fingerprint, load_weights, weight_files

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
BLOCK = 8    # sentences per model call, always (see BertExpert.encode)
PAD_TO = 16  # tokens per sentence in a block: a multiple of this
CACHE_SIZE = 4096  # embeddings kept for repeated sentences (384-d: 6 MB)


class BertExpert(Expert):
    """A frozen BERT-family encoder; see the module docstring for what it computes."""

    def __init__(
        self,
        spec: ExpertSpec,
        variant: str | None = None,
        device: str | torch.device = "cpu",
        *,
        max_length: int | None = None,
    ) -> None:
        super().__init__(spec, variant or DEFAULT_VARIANT, device)
        self.checkpoint: Checkpoint = resolve(self.variant)
        folder = self.checkpoint.folder
        _require_files(folder)
        self.sentence: SentenceConfig = read_sentence_config(folder)
        files = weight_files(folder)
        known = self.checkpoint.verified_sha256 or {}
        self.weight_sha256 = {
            f.name: known.get(str(f.relative_to(folder)), None) or file_sha256(f) for f in files
        }
        self.model = _build_model(folder, files).to(self.device).eval()
        self.tokenizer = _load_tokenizer(folder)
        limit = min(int(getattr(self.model.config, "max_position_embeddings", 512)),
                    int(min(self.tokenizer.model_max_length, 1 << 20)))
        self.max_length = int(max_length or self.sentence.max_seq_length or limit)
        self.hidden_size = int(self.model.config.hidden_size)
        # Repeated sentences (a served prompt asked again) skip the model. An embedding does not
        # depend on its batch-mates (fixed blocks, below), so a cached one is the same bytes.
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- shapes and identity -------------------------------------------------------------
    def representation_for(self, tap: str | None = None) -> Representation:
        if tap is not None:
            return self.spec.tap_representation(tap)  # bert has no taps: this raises, naming them
        return Representation((self.hidden_size,))

    def fingerprint(self) -> str:
        """Hash over the weight files' sha256 and the settings that change the embedding."""
        s = self.sentence
        extra = f"pool={s.pooling};norm={s.normalize};lower={s.lowercase};max_length={self.max_length}"
        h = hashlib.sha256(f"{fingerprint(self.weight_sha256)};{extra}".encode())
        return f"bert-{h.hexdigest()[:16]}"

    # -- encoding ------------------------------------------------------------------------
    def encode(self, inputs: str | Sequence[str], tap: str | None = None) -> torch.Tensor:
        """Sentences → ``(B, hidden_size)`` float32 embeddings on the expert's device.

        A sentence's embedding is bit-identical whatever it is encoded with: sentences go
        through the model in blocks of exactly :data:`BLOCK` (a short block is filled with
        empty strings, whose rows are dropped), each padded to a multiple of :data:`PAD_TO`
        tokens. Matrix kernels round by shape, so padding a batch to its longest input would
        let a long batch-mate change the last bits of a short sentence's embedding, and a
        served seeded answer would depend on the requests it was batched with.
        """
        self.representation_for(tap)
        texts = [t.strip() for t in as_text_batch(inputs)]
        if self.sentence.lowercase:
            texts = [t.lower() for t in texts]
        out = torch.empty(len(texts), self.hidden_size, device=self.device)
        with self._cache_lock:
            cached = {i: self._cache[t] for i, t in enumerate(texts) if t in self._cache}
            for i in cached:
                self._cache.move_to_end(texts[i])
        for i, row in cached.items():
            out[i] = row
        todo = sorted({t for i, t in enumerate(texts) if i not in cached}, key=lambda t: (-len(t), t))
        fresh: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for start in range(0, len(todo), BLOCK):  # similar lengths share a block
                block = todo[start:start + BLOCK]
                rows = self._encode_block(block + [""] * (BLOCK - len(block)))[:len(block)]
                fresh.update(zip(block, rows))
        for i, t in enumerate(texts):
            if i not in cached:
                out[i] = fresh[t]
        with self._cache_lock:
            for t, row in fresh.items():
                self._cache[t] = row.clone()
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    def _encode_block(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               pad_to_multiple_of=self._pad_to, return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state
        pooled = pool(hidden, batch["attention_mask"], self.sentence.pooling)
        return F.normalize(pooled, p=2, dim=1) if self.sentence.normalize else pooled

    @property
    def _pad_to(self) -> int | None:
        """:data:`PAD_TO`, unless rounding up could pass the model's position embeddings."""
        positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        return PAD_TO if -(-self.max_length // PAD_TO) * PAD_TO <= positions else None


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """sentence-transformers' pooling over the tokens the attention mask keeps."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    summed = (hidden * m).sum(dim=1)
    count = m.sum(dim=1).clamp(min=1e-9)
    return summed / (count.sqrt() if mode == "mean_sqrt_len" else count)


def _require_files(folder: Path) -> None:
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append("tokenizer.json or vocab.txt")
    if missing:
        raise MissingWeightsError(
            f"bert checkpoint folder {folder} lacks {' and '.join(missing)}; it needs config.json, the "
            "tokenizer files and model.safetensors (or pytorch_model.bin), as `save_pretrained` writes them"
        )


def _build_model(folder: Path, files: list[Path]) -> torch.nn.Module:
    """Model from config.json, weights from our own loader (no ``from_pretrained`` code paths)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder))
    model = AutoModel.from_config(config)
    state = _match_keys(load_weights(files), model)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]  # the pooler is unused
    if missing:
        raise CacheError(
            f"the weights in {folder} do not fit its config.json (missing {len(missing)} tensors, e.g. "
            f"{missing[:3]}); the folder mixes files of different checkpoints: download it again"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _match_keys(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Strip a task head's prefix (``bert.``) and rename old LayerNorm ``gamma``/``beta``."""
    wanted = set(model.state_dict())
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in wanted and key.startswith(prefix):
            key = key[len(prefix):]
        if key.endswith(".gamma"):
            key = key[: -len(".gamma")] + ".weight"
        elif key.endswith(".beta"):
            key = key[: -len(".beta")] + ".bias"
        if key in wanted:
            out[key] = value
    return out


def _load_tokenizer(folder: Path):  # -> transformers.PreTrainedTokenizerBase
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))
