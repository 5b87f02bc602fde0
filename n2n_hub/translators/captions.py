"""A caption bank: showing a text encoder's latents as the texts nearest to them.

A sentence encoder has no decoder, so a translation into its space is a vector. What a
person can read of it is which known texts lie nearest: the pair's own training captions
(its bridges applied to the dataset's classes), the classes' names, or the user's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import InputError

NEAREST = 3  # captions reported per sample
CAPTIONS_PER_CLASS = 8  # bridge captions drawn per class for the default bank


@dataclass
class CaptionBank:
    """Texts with their encodings by the target; ``labels[i]`` is text ``i``'s class, where known."""

    texts: list[str]
    embeddings: torch.Tensor
    labels: list[str | None] | None = None

    def nearest(self, latents: torch.Tensor, k: int = NEAREST) -> list[list[dict[str, Any]]]:
        rows = nearest(latents, self.embeddings, self.texts, k)
        if self.labels is not None:
            index = {t: i for i, t in enumerate(self.texts)}
            for row in rows:
                for hit in row:
                    label = self.labels[index[hit["text"]]]
                    if label is not None:
                        hit["class"] = label
        return rows


def nearest(latents: torch.Tensor, bank_embeddings: torch.Tensor, bank_texts: Sequence[str],
            k: int = NEAREST) -> list[list[dict[str, Any]]]:
    """For each latent ``(N, ...)``, the ``k`` bank texts of highest cosine similarity, best first:
    ``[{"text": ..., "similarity": ...}, ...]`` per latent (ties keep the bank's order)."""
    if len(bank_texts) != bank_embeddings.shape[0]:
        raise InputError(f"the caption bank has {len(bank_texts)} texts but {bank_embeddings.shape[0]} embeddings")
    z = latents.reshape(latents.shape[0], -1).float().cpu()
    bank = bank_embeddings.reshape(bank_embeddings.shape[0], -1).float().cpu()
    if z.shape[1] != bank.shape[1]:
        raise InputError(f"caption embeddings have {bank.shape[1]} dimensions, the latents {z.shape[1]}")
    sim = torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(bank, dim=1).T
    k = min(k, len(bank_texts))
    # a stable sort, so equal similarities keep the bank's order
    order = torch.sort(-sim, dim=1, stable=True).indices[:, :k]
    return [[{"text": bank_texts[int(j)], "similarity": round(float(sim[i, j]), 4)} for j in order[i]]
            for i in range(z.shape[0])]


def read_captions(path: str | Path) -> list[str]:
    """The captions of a UTF-8 file, one per line (blank lines skipped); a file that holds none is refused."""
    path = Path(path).expanduser()
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise InputError(f"--captions {path}: cannot read it ({e.strerror or e}); give a UTF-8 text file, "
                         "one caption per line") from None
    except UnicodeDecodeError:
        raise InputError(f"--captions {path} is not UTF-8 text; save it as UTF-8, one caption per line") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"--captions {path} holds no captions; write one caption per line")
    return list(dict.fromkeys(lines))


def class_captions(class_names: Sequence[str],
                   bridged: Sequence[tuple[str, int]] = ()) -> tuple[list[str], list[str | None]]:
    """The default bank's texts: each class's name and a sentence naming it, then the bridge
    captions ``(text, class id)`` the pair trained on; duplicates dropped, first kept."""
    texts: dict[str, str | None] = {}
    for name in class_names:
        texts.setdefault(name, name)
        texts.setdefault(f"a picture of a {name}", name)
    for text, label in bridged:
        texts.setdefault(text, class_names[label] if 0 <= label < len(class_names) else None)
    return list(texts), list(texts.values())


def encode_bank(target: Any, texts: list[str], labels: list[str | None] | None = None,
                batch_size: int = 256) -> CaptionBank:
    """Encode the bank's texts with the target expert (the space the translations live in)."""
    if target.spec.input_domain != "text":
        raise InputError(f"a caption bank shows text latents, but {target.spec.id} encodes "
                         f"'{target.spec.input_domain}'; drop --captions")
    with torch.no_grad():
        chunks = [target.encode(texts[i:i + batch_size]).detach().float().cpu()
                  for i in range(0, len(texts), batch_size)]
    return CaptionBank(texts, torch.cat(chunks).reshape(len(texts), -1), labels)
