"""The keys a ``[pairs.NAME]`` registry entry takes: the one list the loader checks and the README prints.

Ranges come from the same rules that check values (``base.validation``); defaults are
those of the registry loader, the flow and the trainer (a test holds them equal). The
README's table is :func:`markdown_table`, and a test keeps the README in step with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base.validation import FLOW_CHOICES, FLOW_RULES, TRAINING_RULES


@dataclass(frozen=True)
class EntryKey:
    """One key of a pair entry: where it lives (``""``, ``flow``, ``training``, ``published``), its type and meaning."""

    table: str
    name: str
    type: str
    default: str
    meaning: str
    range: str = ""

    @property
    def path(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


def _span(rule: tuple[bool, float, float, bool]) -> str:
    integer, low, high, low_closed = rule
    fmt = (lambda x: f"{int(x):,}".replace(",", "_") if x < 2**62 else "2^63 - 1") if integer else \
        (lambda x: f"{x:g}")
    return f"{'[' if low_closed else '('}{fmt(low)}, {fmt(high)}]"


def _ranged(table: str, rules: dict[str, tuple[bool, float, float, bool]], name: str, kind: str, default: str,
            meaning: str) -> EntryKey:
    choices = FLOW_CHOICES.get(name) if table == "flow" else None
    spans = " or ".join(repr(c) for c in choices) if choices else _span(rules[name]) if name in rules else ""
    return EntryKey(table, name, kind, default, meaning, spans)


KEYS: tuple[EntryKey, ...] = (
    EntryKey("", "source", "string", "required", "the source expert's address (`id[:tap][@variant]`)"),
    EntryKey("", "target", "string", "required", "the target expert's address (`id[@variant]`)"),
    EntryKey("", "recipe", "string", "required", "how training pairs are made: a registered recipe id "
             "(`dataset`, `target-prior`, `domains`, `deformation`, or a plugin's)"),
    EntryKey("", "description", "string", '""', "one line shown by `n2n-hub pairs`"),
    EntryKey("", "dataset", "string", "none", "a registered dataset, for recipes that read one"),
    EntryKey("", "source_from", "string", "the source's input domain", "the dataset domain the source's inputs "
             "start from (e.g. `label`, carried to text by the bridges)"),
    EntryKey("", "bridges", "list of strings", "found from the domains", "bridge ids, in order, that carry "
             "inputs into the source's domain"),
    EntryKey("", "target_from", "string", "the target's input domain", "the dataset domain the target's inputs "
             "start from, for a target that reads no domain of the dataset (e.g. `label` for a text encoder)"),
    EntryKey("", "target_bridges", "list of strings", "found from the domains", "bridge ids, in order, that "
             "carry `target_from` into the target's domain (recipes with `bridged_target`)"),
    EntryKey("", "pairs_per_item", "integer", "1", "training pairs made from each item (e.g. several captions)",
             "[1, ...)"),
    EntryKey("", "samples", "integer", "50_000", "prior samples a `target-prior` recipe draws", "[1, ...)"),
    EntryKey("", "seed", "integer", "0", "seed of the recipe's sampling and splits", "[0, ...)"),
    EntryKey("", "batch_size", "integer", "256", "items encoded per expert call while making pairs", "[1, ...)"),
    EntryKey("", "translator", "string", '"cinn"', "the translator kind (`cinn`, `mlp`, `linear`, or a registered one)"),
    EntryKey("", "temperature", "number", "1", "default sampling temperature of the pair's translations",
             "(0, 10]"),
    EntryKey("", "options", "table", "{}", "the recipe's own settings, declared by its `RecipeSpec.options` "
             "(e.g. `augment = [\"hflip\"]`)"),
    EntryKey("", "flow", "table", "{}", "the translator module's settings (below)"),
    EntryKey("", "training", "table", "{}", "the trainer's settings (below)"),
    EntryKey("", "published", "table", "none", "where a trained translator can be fetched (below)"),
    _ranged("flow", FLOW_RULES, "n_blocks", "integer", "20", "INN blocks (Table S3: 20)"),
    _ranged("flow", FLOW_RULES, "hidden", "integer", "8 x target dimension", "width of the coupling subnets"),
    _ranged("flow", FLOW_RULES, "depth", "integer", "3", "hidden layers per coupling subnet"),
    _ranged("flow", FLOW_RULES, "cond_dim", "integer", "chosen from the condition", "width of the condition "
            "embedding h = H(z_source)"),
    _ranged("flow", FLOW_RULES, "embed_hidden", "integer", "chosen from the condition", "hidden width of the "
            "condition embedder"),
    _ranged("flow", FLOW_RULES, "clamp", "number", "2", "soft clamp of the coupling log-scales"),
    _ranged("flow", FLOW_RULES, "seed", "integer", "0", "seed of the fixed permutations"),
    EntryKey("flow", "whiten", "boolean", "chosen from the target", "whiten targets with a fitted affine map "
             "first"),
    _ranged("flow", FLOW_RULES, "condition_projection", "integer", "none", "read the condition through a fitted "
            "projection of this many dimensions (a class probe)"),
    _ranged("flow", FLOW_RULES, "condition_projection_kind", "string", '"probe"', "how that projection is fitted"),
    _ranged("flow", FLOW_RULES, "ridge", "number", "0.001", "the linear kind's regularisation, relative to the "
            "features' scale (0: ordinary least squares)"),
    _ranged("training", TRAINING_RULES, "steps", "integer", "2000", "optimiser steps"),
    _ranged("training", TRAINING_RULES, "batch_size", "integer", "128", "pairs per step"),
    _ranged("training", TRAINING_RULES, "lr", "number", "0.001", "peak learning rate (Adam)"),
    _ranged("training", TRAINING_RULES, "warmup_steps", "integer", "100", "linear warm-up steps"),
    _ranged("training", TRAINING_RULES, "min_lr_ratio", "number", "0.01", "cosine decay ends at lr x this"),
    _ranged("training", TRAINING_RULES, "weight_decay", "number", "0", "decoupled weight decay (AdamW)"),
    _ranged("training", TRAINING_RULES, "grad_clip", "number", "10", "global gradient-norm clip (0: none)"),
    _ranged("training", TRAINING_RULES, "val_fraction", "number", "0.1", "share of items held out for "
            "validation"),
    _ranged("training", TRAINING_RULES, "val_every", "integer", "200", "steps between validations"),
    _ranged("training", TRAINING_RULES, "patience", "integer", "5", "validations without gain before stopping "
            "early (0: never)"),
    _ranged("training", TRAINING_RULES, "seed", "integer", "0", "seed of the split, batch order and init"),
    _ranged("training", TRAINING_RULES, "max_bad_steps", "integer", "10", "consecutive non-finite steps "
            "tolerated"),
    _ranged("training", TRAINING_RULES, "condition_noise", "number", "0", "noise added to training conditions, "
            "relative to their RMS"),
    _ranged("training", TRAINING_RULES, "target_noise", "number", "0", "std of noise added to training targets"),
    EntryKey("published", "sha256", "string", "required", "sha256 of the translator file (64 hex digits)"),
    EntryKey("published", "url", "string", "none", "http(s) or file URL, or a path relative to the registry "
             "file that sets it"),
    EntryKey("published", "hf_repo", "string", "none", "a Hugging Face repository (with `hf_file`)"),
    EntryKey("published", "hf_file", "string", "none", "the file in `hf_repo`"),
    EntryKey("published", "size", "integer", "2 GiB cap", "bytes of the file; a download that grows past it "
             "is stopped", "[1, ...)"),
)


def keys_of(table: str) -> set[str]:
    """The key names allowed in one table of an entry (``""`` is the entry itself)."""
    return {k.name for k in KEYS if k.table == table}


def markdown_table() -> str:
    """The README's table of entry keys."""
    rows = ["| key | type | range | default | meaning |", "|---|---|---|---|---|"]
    for k in KEYS:
        rows.append(f"| `{k.path}` | {k.type} | {k.range or ''} | {k.default} | {k.meaning} |")
    return "\n".join(rows) + "\n"
