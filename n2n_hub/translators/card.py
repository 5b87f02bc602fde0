"""The model card of a translator: what a stranger needs to know before using it.

A card is a ``README.md`` in the Hugging Face format (YAML front matter, then markdown),
written from the translator file's metadata and the two experts' specs alone, so any
cached or published translator has one (``n2n-hub cache show KEY``; ``publish`` writes it
beside the file). Its metadata names the experts as ``base_model`` where their weights
have a Hugging Face id, a licence no looser than any part it was made from (both experts
and the dataset, see :data:`STRICTNESS`), tags, the held-out results as a ``model-index``
and the compute record. :func:`check_card` checks a card offline the way the hub's
metadata validation does, with ``huggingface_hub``'s own parsers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import InputError

if TYPE_CHECKING:
    from ..spec.components import DatasetSpec
    from ..spec.expert import ExpertSpec

CARD_FILE = "README.md"
CARD_TAG = "n2n-hub"  # what marks a README.md as a card publish may replace

# The licence identifiers the Hugging Face hub accepts in a card's ``license`` field
# (https://huggingface.co/docs/hub/repositories-licenses); anything else is rejected on push.
HF_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5
cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense
zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown other
""".split())

# Our order of strictness, loosest first: public domain < permissive < attribution <
# non-commercial < no-derivatives. A translator's licence is the strictest of its parts';
# licences outside this order (copyleft, responsible-AI and model-specific licences) cannot
# be ranked against others, so a card mixing them says ``other`` and lists every part.
STRICTNESS: tuple[str, ...] = (
    "cc0-1.0", "unlicense", "pddl", "wtfpl",
    "mit", "isc", "zlib", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "bsd", "bsl-1.0", "postgresql",
    "ncsa", "apache-2.0",
    "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "odc-by",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
)
_ALIASES = {"apache": "apache-2.0", "apache-2": "apache-2.0", "apache-license-2.0": "apache-2.0",
            "bsd-3": "bsd-3-clause", "bsd-2": "bsd-2-clause", "cc0": "cc0-1.0", "public-domain": "cc0-1.0"}

# Domains (what the source reads -> what the target makes) that are a Hugging Face task.
PIPELINE_TAGS = {("text", "image"): "text-to-image", ("image", "image"): "image-to-image",
                 ("image", "text"): "image-to-text", ("image", "label"): "image-classification",
                 ("text", "label"): "text-classification"}
BASE_TAGS = ("n2n-hub", "net2net", "conditional-invertible-network")
_NOUNS = {"text": "text", "image": "images", "label": "class labels"}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_URL = re.compile(r"https?://[^\s)<>\"']+")


# -- licences ---------------------------------------------------------------------------
def license_id(text: str | None) -> str | None:
    """The Hugging Face licence id a spec's free-text licence names (``"MIT (x)"`` -> ``mit``), else None."""
    head = re.split(r"[(;,]", text or "", maxsplit=1)[0].strip().lower()
    slug = re.sub(r"\s+", "-", head)
    slug = _ALIASES.get(slug, slug)
    return slug if slug in HF_LICENSES and slug not in ("other", "unknown", "cc", "bsd", "gpl", "lgpl") else None


@dataclass(frozen=True)
class Part:
    """One thing a translator was made from, and the licence it carries (``license`` None: not known)."""

    role: str
    name: str
    license_text: str
    license: str | None


@dataclass(frozen=True)
class License:
    """A card's licence fields: ``license`` and, for ``other``, ``license_name`` (+ ``license_link``)."""

    license: str
    name: str | None = None
    link: str | None = None
    why: str = ""


def combine_licenses(parts: Sequence[Part]) -> License:
    """The strictest licence among ``parts``; ``other`` when one is unknown or cannot be ranked."""
    ids = [p.license for p in parts]
    unknown = [p for p in parts if p.license is None]
    if not unknown and len(set(ids)) == 1 and ids:
        return License(ids[0], why=f"every part is {ids[0]}")  # type: ignore[arg-type]
    if not unknown and ids and all(i in STRICTNESS for i in ids):
        strictest = max(ids, key=STRICTNESS.index)  # type: ignore[arg-type]
        return License(strictest, why=f"the strictest of {', '.join(sorted(set(ids)))} "  # type: ignore[arg-type]
                                      "in n2n-hub's order of strictness")
    names = sorted({p.license or "unknown" for p in parts}) or ["unknown"]
    link = next((m.group(0) for p in unknown for m in [_URL.search(p.license_text)] if m), None)
    why = ("the licence of " + ", ".join(p.name for p in unknown) + " is not known" if unknown
           else "these licences cannot be ranked against each other")
    return License("other", name="-and-".join(names)[:96], link=link, why=why)


def _variant_declared(spec: ExpertSpec | None, variant: str | None) -> bool:
    return spec is not None and variant is not None and spec.variant(variant) is not None


def expert_part(role: str, record: Mapping[str, Any], spec: ExpertSpec | None) -> Part:
    """An expert as a part: its spec's licence covers only the weights the spec declares."""
    address = str(record.get("address") or record.get("id") or "?")
    if spec is None:
        return Part(role, address, "", None)
    if not _variant_declared(spec, record.get("variant")) and record.get("variant") is not None:
        return Part(role, address, f"weights {record.get('variant')} are not among the expert's declared variants;"
                                   " check their licence", None)
    return Part(role, address, spec.license, license_id(spec.license))


def hf_model_id(record: Mapping[str, Any], spec: ExpertSpec | None) -> str | None:
    """The Hugging Face model id an expert's weights come from (``Variant.settings['hf_repo']``, or an
    ``id@org/name`` address of an expert that accepts hub ids), else None."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    variant = record.get("variant")
    if spec is None or not isinstance(variant, str):
        return None
    declared = spec.variant(variant)
    repo = declared.settings.get("hf_repo") if declared is not None else (
        variant if spec.accepts_hub_ids and variant.count("/") == 1 and not variant.startswith(("/", ".", "~"))
        else None)
    if not isinstance(repo, str) or "/" not in repo:
        return None
    try:
        validate_repo_id(repo)
    except HFValidationError:
        return None
    return repo


# -- the card ---------------------------------------------------------------------------
def _num(v: Any) -> float | None:
    return float(f"{v:.5g}") if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _fmt(v: Any) -> str:
    n = _num(v)
    return "-" if n is None else f"{n:.4g}"


def _domains(source: ExpertSpec | None, target: ExpertSpec | None) -> tuple[str | None, str | None]:
    return (source.input_domain if source is not None else None,
            target.output_domain if target is not None else None)


def _eval_results(meta: Mapping[str, Any], task: str, data_type: str, data_name: str,
                  evaluation: Mapping[str, Any] | None, prompts: Mapping[str, Any] | None) -> list[Any]:
    """Held-out results as ``huggingface_hub.EvalResult``s (what is absent is left out)."""
    from huggingface_hub import EvalResult

    out = []

    def add(metric: str, value: Any, name: str, split: str, source: str) -> None:
        v = _num(value)
        if v is not None:
            out.append(EvalResult(task_type=task, dataset_type=data_type, dataset_name=f"{data_name} ({source})",
                                  dataset_split=split, metric_type=metric, metric_value=v, metric_name=name))

    metrics = meta.get("metrics") or {}
    add("nll", metrics.get("best_val_nll"), "held-out NLL (nats/dim)", "validation", "validation pairs")
    add("mse", metrics.get("best_val_mse"), "held-out squared error (per dim)", "validation", "validation pairs")
    found = (evaluation or {}).get("metrics") or {}
    add("nll", found.get("nll"), "held-out NLL (nats/dim)", "test", "test pairs")
    add("frechet_distance", found.get("fd_latent"), "Fréchet distance, target latents", "test", "test pairs")
    features = (evaluation or {}).get("features")
    add("frechet_distance", found.get("fd_features"), f"Fréchet distance, image features ({features})", "test",
        "test pairs")
    for kind, share in sorted(((prompts or {}).get("top1") or {}).items()):
        add("accuracy", share, f"class share of samples showing the prompted class ({kind} prompts)", "test",
            "prompts")
    return out


def card_metadata(meta: Mapping[str, Any], source: ExpertSpec | None = None, target: ExpertSpec | None = None,
                  dataset: DatasetSpec | None = None, *, name: str | None = None,
                  evaluation: Mapping[str, Any] | None = None,
                  prompts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's YAML metadata, built and exported through ``huggingface_hub.ModelCardData``."""
    from huggingface_hub import ModelCardData

    recipe = meta.get("recipe") or {}
    src_rec, tgt_rec = meta.get("source") or {}, meta.get("target") or {}
    lic = combine_licenses(parts(meta, source, target, dataset))
    base = [m for m in (hf_model_id(src_rec, source), hf_model_id(tgt_rec, target)) if m]
    a, b = _domains(source, target)
    task = PIPELINE_TAGS.get((a, b)) if a and b else None  # type: ignore[arg-type]
    data_id = recipe.get("dataset")
    tags = [*BASE_TAGS, *([f"{a}-to-{b}"] if a and b else []),
            *[str(r.get("id")) for r in (src_rec, tgt_rec) if r.get("id")], *([str(data_id)] if data_id else [])]
    data_type = str(data_id) if data_id else f"{recipe.get('recipe', 'recipe')}-pairs"
    data_name = f"{data_id or recipe.get('recipe', '?')}"
    results = _eval_results(meta, task or "other", data_type, data_name, evaluation, prompts)
    extra: dict[str, Any] = {"n2n_hub": _record(meta)}
    data = ModelCardData(
        license=lic.license, license_name=lic.name, license_link=lic.link, base_model=base or None,
        datasets=[data_id] if isinstance(data_id, str) and "/" in data_id else None, tags=tags, pipeline_tag=task,
        model_name=name or card_name(meta) if results else None, eval_results=results or None, **extra)
    return data.to_dict()


def card_name(meta: Mapping[str, Any]) -> str:
    """A model name for the card: the registry entry it was trained from, else source and target."""
    recipe = meta.get("recipe") or {}
    if recipe.get("registry_entry"):
        return str(recipe["registry_entry"])
    pair = f"{(meta.get('source') or {}).get('address', '?')}-{(meta.get('target') or {}).get('address', '?')}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", pair).strip("-")


def parts(meta: Mapping[str, Any], source: ExpertSpec | None, target: ExpertSpec | None,
          dataset: DatasetSpec | None) -> list[Part]:
    """The experts and the dataset a translator was made from, with their licences."""
    found = [expert_part("source expert", meta.get("source") or {}, source),
             expert_part("target expert", meta.get("target") or {}, target)]
    data_id = (meta.get("recipe") or {}).get("dataset")
    if data_id:
        text = dataset.license if dataset is not None else ""
        found.append(Part("training dataset", str(data_id), text, license_id(text)))
    return found


def _record(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What n2n-hub itself reads back: key, experts with fingerprints, training size and compute."""
    recipe, training = meta.get("recipe") or {}, meta.get("training") or {}
    experts = {role: {k: (meta.get(role) or {}).get(k) for k in ("address", "version", "fingerprint")}
               for role in ("source", "target")}
    compute = {k: round(v, 3) if k == "wall_time_s" and isinstance(v, float) else v
               for k, v in (meta.get("compute") or {}).items() if v is not None}
    return {"key": meta.get("key"), "kind": meta.get("kind"), **experts, "recipe": recipe.get("recipe"),
            "dataset": recipe.get("dataset"), "pairs": meta.get("pairs"),
            "steps": training.get("steps"), "batch_size": training.get("batch_size"),
            "compute": compute or None, "package_version": meta.get("package_version"),
            **_route_record(meta)}


def model_card(meta: Mapping[str, Any], source: ExpertSpec | None = None, target: ExpertSpec | None = None,
               dataset: DatasetSpec | None = None, *, name: str | None = None,
               published: Mapping[str, Any] | None = None, evaluation: Mapping[str, Any] | None = None,
               prompts: Mapping[str, Any] | None = None) -> str:
    """The ``README.md`` text of the translator whose metadata is ``meta``.

    ``source``/``target``/``dataset`` are the specs of what it was made from (None where no
    plugin registers them now: the card then says so); ``evaluation`` and ``prompts`` are an
    :class:`~n2n_hub.evaluation.metrics.Evaluation` / prompt evaluation as dicts (default: the
    ones recorded in ``meta``); ``published`` is the snippet's ``published`` table.
    """
    from huggingface_hub.utils import yaml_dump

    evaluation = evaluation if evaluation is not None else meta.get("evaluation")
    prompts = prompts if prompts is not None else meta.get("prompt_evaluation")
    name = name or card_name(meta)
    data = card_metadata(meta, source, target, dataset, name=name, evaluation=evaluation, prompts=prompts)
    body = _body(meta, source, target, dataset, name, published, evaluation, prompts)
    return "---\n" + yaml_dump(data, sort_keys=False).strip() + "\n---\n\n" + body


def _expert_line(role: str, record: Mapping[str, Any], spec: ExpertSpec | None) -> str:
    address = record.get("address", "?")
    if spec is None:
        return f"| {role} | `{address}` | (no installed plugin registers `{record.get('id')}`) | unknown |"
    variant = spec.variant(record.get("variant") or "")
    what = spec.description + (f"; weights: {variant.description}" if variant and variant.description else "")
    hf = hf_model_id(record, spec)
    what += f" ([{hf}](https://huggingface.co/{hf}))" if hf else ""
    return f"| {role} | `{address}` | {what.replace('|', '/')} | {expert_part(role, record, spec).license_text or 'unknown'} |"


def _body(meta: Mapping[str, Any], source: ExpertSpec | None, target: ExpertSpec | None,
          dataset: DatasetSpec | None, name: str, published: Mapping[str, Any] | None,
          evaluation: Mapping[str, Any] | None, prompts: Mapping[str, Any] | None) -> str:
    recipe, training, config = meta.get("recipe") or {}, meta.get("training") or {}, meta.get("config") or {}
    metrics, compute = meta.get("metrics") or {}, meta.get("compute") or {}
    src_rec, tgt_rec = meta.get("source") or {}, meta.get("target") or {}
    src, tgt = src_rec.get("address", "?"), tgt_rec.get("address", "?")
    a, b = _domains(source, target)
    kind = meta.get("kind", "?")
    what = ("a conditional invertible network (cINN) that samples the target's latent given the source's "
            "representation, so one input gives many outputs" if kind == "cinn"
            else f"a `{kind}` translator that predicts one target latent per source representation")
    makes = f"{_NOUNS.get(a or '', 'its input')} into {_NOUNS.get(b or '', 'latents')}"
    lines = [f"# {name}: {src} → {tgt}", "",
             f"An n2n-hub translator that turns {makes}. It is {what}. "
             f"It reads what the frozen expert `{src}` encodes and writes latents the frozen expert `{tgt}` "
             "decodes (Net2Net). Only the translator was trained; it works only with exactly these experts' "
             "weights (their fingerprints are in the metadata, and n2n-hub refuses the file for others).", "",
             "## Experts", "", "| role | expert | what it is | licence |", "|---|---|---|---|",
             _expert_line("source", src_rec, source), _expert_line("target", tgt_rec, target), ""]
    lines += ["## Use", "", "```bash", "pip install n2n-hub"]
    if published is not None:
        lines.append(f"# add the registry snippet published with this file ({name}.toml) to "
                     "~/.config/n2n-hub/registry.toml")
    example = '"a photo of a zebra"' if a == "text" else "INPUT"
    lines += [f"n2n-hub translate {src} {tgt} {example} -n 16 -o samples.png", "```", ""]
    data = recipe.get("dataset")
    bridges = ", ".join(recipe.get("bridges") or []) or "none"
    flow = ", ".join(f"{k} {config[k]}" for k in ("n_blocks", "hidden", "depth", "cond_dim", "condition_projection",
                                                  "condition_projection_kind", "whiten") if k in config)
    lines += ["## Training", "",
              f"- data: {meta.get('pairs', '?')} training pairs made by the `{recipe.get('recipe', '?')}` recipe"
              + (f" from dataset `{data}` (starting from its `{recipe.get('start_domain')}` items)" if data else "")
              + f", bridges: {bridges}, {recipe.get('pairs_per_item', 1)} pair(s) per item"
              + (f", recipe options `{json.dumps(recipe['options'], sort_keys=True)}`" if recipe.get("options") else ""),
              *_route_lines(meta),
              f"- translator: `{kind}` ({flow or 'default size'})",
              f"- optimisation: {training.get('steps', '?')} steps of batch {training.get('batch_size', '?')}, "
              f"learning rate {training.get('lr', '?')}, seed {training.get('seed', '?')}; "
              f"{training.get('val_fraction', '?')} of the pairs held out for validation; weights of the best "
              f"validation step ({metrics.get('best_step', '?')})" + (", stopped early" if metrics.get("stopped_early")
                                                                       else ""),
              f"- made by n2n-hub {meta.get('package_version', '?')} on {meta.get('created', '?')}; "
              f"key `{meta.get('key', '?')}`", ""]
    lines += ["## Evaluation", "", "| metric | split | value |", "|---|---|---|"]
    rows = [("held-out NLL (nats/dim)", "validation", metrics.get("best_val_nll")),
            ("held-out NLL (bits/dim)", "validation", metrics.get("best_val_bits_per_dim")),
            ("held-out squared error (per dim)", "validation", metrics.get("best_val_mse"))]
    found = (evaluation or {}).get("metrics") or {}
    rows += [("NLL (nats/dim)", "test", found.get("nll")), ("Fréchet distance, latents", "test", found.get("fd_latent")),
             (f"Fréchet distance, image features ({(evaluation or {}).get('features')})", "test",
              found.get("fd_features"))]
    rows += [(f"class share, {k} prompts", "prompts", v) for k, v in sorted(((prompts or {}).get("top1") or {}).items())]
    rows += [("class share, real latents (ceiling)", "prompts", (prompts or {}).get("ceiling"))]
    lines += [f"| {label} | {split} | {_fmt(v)} |" for label, split, v in rows if _num(v) is not None]
    if kind == "cinn":
        lines += ["", f"For reference, a standard normal scores {_fmt(metrics.get('reference_nll_per_dim', 1.4189))}"
                      " nats/dim on its own samples; the lower the NLL, the more of the target the condition explains."]
    lines += [""]
    if compute:
        energy = (f"{_fmt(compute['energy_kwh'])} kWh ({compute.get('energy_source')})"
                  if compute.get("energy_kwh") is not None else "not measured")
        lines += ["## Compute", "",
                  f"- {_fmt(compute.get('wall_time_s'))} s on {compute.get('device_name', '?')} "
                  f"({compute.get('device', '?')}) × {compute.get('world_size', 1)} process(es)",
                  f"- {compute.get('steps', '?')} steps, {compute.get('samples_seen', '?')} samples seen, "
                  f"{_fmt((compute.get('train_flops') or 0) / 1e12)} TFLOP of matrix products "
                  f"({_fmt(compute.get('flops_per_sample'))} FLOP per sample)", f"- energy: {energy}", ""]
    lic = combine_licenses(parts(meta, source, target, dataset))
    lines += ["## Licence", "", f"`{lic.license}`" + (f" (`{lic.name}`)" if lic.name else "") + f": {lic.why}. "
              "A translator is made from its experts and its training data, so its licence is no looser than "
              "any of theirs; honour each of them:", ""]
    lines += [f"- {p.role} {p.name}: {p.license_text or 'not declared'}" for p in parts(meta, source, target, dataset)]
    classes = (dataset.class_names if dataset is not None and dataset.class_names else None) or (
        target.class_names if target is not None and target.class_names else None)
    lines += ["", "## Limitations and uses to avoid", "",
              "- It knows only what its training pairs cover" + (f" (the {len(classes)} classes of `{data}`)"
                                                                  if classes and data else "")
              + ": inputs far from them are mapped onto the nearest thing it has seen, or onto noise.",
              f"- Its outputs are what `{tgt}` decodes, with that expert's quality and biases; they are samples, "
              "not facts, and must not be presented as real photographs, evidence or statements about real people.",
              "- Do not use it for decisions about people, for safety-critical work, or beyond what the licences "
              "above allow.",
              "- It is valid only with exactly the expert weights it was trained with: other weights give "
              "meaningless outputs (n2n-hub checks the fingerprints)."]
    if published is not None:
        lines += ["", "## File", ""]
        lines += [f"- {k}: `{v}`" for k, v in published.items()]
    return "\n".join(lines) + "\n"


def _route_record(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``{"from_route": {"nodes", "translators"}}`` for a translator distilled from a route, else nothing."""
    drawn = (meta.get("recipe") or {}).get("from_route")
    if not isinstance(drawn, dict):
        return {}
    hops = (meta.get("request") or {}).get("route") or []
    return {"from_route": {"nodes": drawn.get("nodes"),
                           "translators": [h.get("key") for h in hops if h.get("kind") == "translator"]}}


def _route_lines(meta: Mapping[str, Any]) -> list[str]:
    """For a translator distilled from a route: the route, how it was sampled, and each hop's key."""
    recipe = meta.get("recipe") or {}
    drawn = recipe.get("from_route")
    if not isinstance(drawn, dict):
        return []
    hops = (meta.get("request") or {}).get("route") or []
    lines = [f"- distilled from the route `{' -> '.join(drawn.get('nodes') or [])}`: each pair is a source input of "
             f"its first hop pushed through the route (seed {recipe.get('seed', '?')}, temperature "
             f"{drawn.get('temperature', '?')}, {recipe.get('samples', '?')} pairs drawn); its hops:"]
    for i, hop in enumerate(hops, 1):
        if hop.get("kind") == "translator":
            lines.append(f"  {i}. `{hop.get('source')}` -> `{hop.get('target')}`: translator `{hop.get('key')}`")
        else:
            src, tgt = hop.get("source") or {}, hop.get("target") or {}
            lines.append(f"  {i}. `{src.get('id')}@{src.get('variant')}` decodes, "
                         f"`{tgt.get('id')}@{tgt.get('variant')}` encodes")
    return lines


def is_card(path: Path) -> bool:
    """Whether ``path`` holds a card n2n-hub wrote (front matter tagged ``n2n-hub``): one publish may replace."""
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    try:
        block = REGEX_YAML_BLOCK.search(path.read_text(encoding="utf-8"))
        data = yaml.safe_load(block.group(2)) if block else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and isinstance(data.get("tags"), list) and CARD_TAG in data["tags"] \
        and "n2n_hub" in data


# -- checking ---------------------------------------------------------------------------
def check_card(text: str) -> dict[str, Any]:
    """Check ``text`` as the Hugging Face hub checks a model card's metadata; return the metadata.

    Offline, with ``huggingface_hub``'s parsers: the front matter must parse into
    ``ModelCardData``, its ``model-index`` must survive ``model_index_to_eval_results`` and
    ``eval_results_to_model_index`` unchanged with finite numbers, the licence must be one the
    hub knows (``other`` with a ``license_name`` id), and ``base_model``/``datasets`` must be
    repository ids. Raises :class:`InputError` naming the first problem.
    """
    import yaml
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard import REGEX_YAML_BLOCK
    from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    def bad(problem: str) -> InputError:
        return InputError(f"the model card would be rejected by the Hugging Face hub: {problem}")

    block = REGEX_YAML_BLOCK.search(text)
    if not text.startswith("---") or block is None:
        raise bad("it does not start with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(block.group(2))
    except yaml.YAMLError as e:
        raise bad(f"its metadata does not parse ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if not isinstance(meta, dict):
        raise bad("its metadata does not parse into a mapping of fields")
    index = meta.get("model-index")
    if index is not None:
        try:
            model, results = model_index_to_eval_results(index)
            again = eval_results_to_model_index(model, results)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise bad(f"its model-index is malformed ({type(e).__name__}: {e})") from None
        if again != index:
            raise bad("its model-index does not survive huggingface_hub's round trip (unknown or misplaced fields)")
        for r in results:
            if not isinstance(r.metric_value, (int, float)) or isinstance(r.metric_value, bool) or \
                    not math.isfinite(r.metric_value):
                raise bad(f"metric {r.metric_type!r} has value {r.metric_value!r}, not a finite number")
            if not all(isinstance(x, str) and x for x in (r.task_type, r.dataset_type, r.dataset_name, r.metric_type)):
                raise bad("a model-index result lacks its task type, dataset type and name, or metric type")
    try:
        ModelCard(text)  # as huggingface_hub reads it: into ModelCardData, model-index and all
        ModelCardData(**dict(meta))
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises several kinds
        raise bad(f"huggingface_hub cannot read it ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    lic = meta.get("license")
    if lic is not None and lic not in HF_LICENSES:
        raise bad(f"licence {lic!r} is not a Hugging Face licence id (see "
                  "https://huggingface.co/docs/hub/repositories-licenses); use 'other' with license_name")
    if lic == "other" and not (isinstance(meta.get("license_name"), str) and _SLUG.match(meta["license_name"])):
        raise bad("licence 'other' needs a license_name id (lowercase letters, digits, '.', '+' or '-')")
    for key in ("base_model", "datasets"):
        values = meta.get(key)
        for v in [values] if isinstance(values, str) else (values or []):
            try:
                validate_repo_id(v)
            except (HFValidationError, TypeError) as e:
                raise bad(f"{key} {v!r} is not a repository id ({e})") from None
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) and t for t in tags)):
        raise bad("tags must be a list of strings")
    return meta


__all__ = ["CARD_FILE", "HF_LICENSES", "STRICTNESS", "License", "Part", "card_metadata", "check_card",
           "combine_licenses", "is_card", "license_id", "model_card"]
