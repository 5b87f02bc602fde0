"""The residual at work, on held-out animals (the test split): unpaired, shape/appearance, exemplar-guided.

(a) Unpaired (domain@animals -> vaegan@animals, recipe ``domains``), every direction over the
    ten classes and horse <-> zebra on its own: the share of outputs the shipped animals
    classifier assigns to the target class, against its accuracy on the VAE-GAN's
    reconstructions; silhouette IoU between input and output, against the chance line
    (IoU between the input and random test images of the target class); the cycle A -> B -> A.
    The same with a fresh residual v ~ N(0, I) instead of the input's, and with the
    deterministic MLP translator (no residual), as in Sec. E.
(b) Shape/appearance (vaegan -> vaegan, recipe ``deformation``): IoU of the output with the
    shape input and with the appearance input; grey level and texture energy inside the
    silhouette, and whether they are closer to the appearance input's than to the shape input's.
(c) Exemplar-guided (segmenter:labels -> vaegan): transfer against re-sampling v ~ N(0, I)
    under the same label map: latent distance to the exemplar, and how well the segmenter's
    map of the output matches the new label map.

Run: ``python bench/bench_transfer.py [--per-class 20] [--out bench/out/transfer.md]``. The
translators are taken from the cache (``$N2N_HUB_HOME``) or trained first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from machine import cpu_name, loadavg

HORSE, ZEBRA = 7, 9


def masks(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).flatten(1)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row IoU of silhouettes (pixels brighter than mid-grey)."""
    ma, mb = masks(a), masks(b)
    inter = (ma & mb).sum(1).float()
    union = (ma | mb).sum(1).float().clamp(min=1)
    return inter / union


def texture(x: torch.Tensor, interior: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean grey level inside each silhouette, and its texture energy (mean |Laplacian|).

    With ``interior`` the energy is taken only where the Laplacian's whole 3×3 window lies
    inside the silhouette, so it measures stripes and shading; without it, the jump at the
    silhouette's edge dominates and the energy mostly measures the outline's length.
    """
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    lap = torch.nn.functional.conv2d(x, k, padding=1).abs()
    m = (x > -0.5).float()
    n = m.flatten(1).sum(1).clamp(min=1)
    grey = (x * m).flatten(1).sum(1) / n
    e = -torch.nn.functional.max_pool2d(-m, 3, stride=1, padding=1) if interior else m
    energy = (lap * e).flatten(1).sum(1) / e.flatten(1).sum(1).clamp(min=1)
    return grey, energy


def training_facts(t) -> dict:
    """How the translator was trained: steps run, the best held-out score, wall time (from its metadata)."""
    m = t.metrics
    return {"kind": t.kind, "steps": m.get("steps"), "best_step": m.get("best_step"),
            "stopped_early": m.get("stopped_early"), "best_val_nll": m.get("best_val_nll"),
            "best_val_mse": m.get("best_val_mse"), "train_wall_s": m.get("wall_time_s"), "file": str(t.path)}


def pick(images: torch.Tensor, labels: torch.Tensor, per_class: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.cat([torch.nonzero(labels == k).flatten()[torch.randperm(int((labels == k).sum()), generator=gen)[:per_class]]
                     for k in range(10)])
    return images[idx], labels[idx]


def unpaired(hub, images, labels, per_class: int, classify, names, gen, train_seed: int | None = None) -> dict:
    from n2n_hub.translators.transfer import run_transfer

    x, y = pick(images, labels, per_class, gen)
    t = hub.pair("domain@animals", "vaegan@animals", translator="cinn",
                 **({} if train_seed is None else {"seed": train_seed}))
    t0 = time.perf_counter()
    mlp = hub.pair("domain@animals", "vaegan@animals", translator="mlp")
    mlp_seconds = time.perf_counter() - t0
    vae = t.target
    recon = vae.decode(vae.encode(images))
    recon_acc = float((classify(recon).argmax(1) == labels).float().mean())
    rows = {"cinn": [], "fresh": [], "mlp": []}
    cyc = []
    for b in range(10):
        keep = y != b
        xs, ys = x[keep], y[keep]
        src_names = [names[int(i)] for i in ys]
        out = run_transfer(t, "domain", xs, to=names[b], from_=src_names, n=1, temperature=1.0,
                           seed=int(torch.randint(1 << 30, (1,), generator=gen)))
        back = run_transfer(t, "domain", out.outputs, to=src_names, from_=names[b])
        out_mlp = run_transfer(mlp, "domain", xs, to=names[b])
        real_b = images[labels == b]
        chance = iou(xs, real_b[torch.randint(len(real_b), (len(xs),), generator=gen)])
        for kind, o in (("cinn", out.outputs), ("fresh", out.resampled[:, 0]), ("mlp", out_mlp.outputs)):
            hit = classify(o).argmax(1) == b
            rows[kind].append({"to": b, "from": ys, "hit": hit, "iou": iou(xs, o), "chance": chance})
        cyc.append({"to": b, "from": ys, "iou": iou(xs, back.outputs)})

    def summary(kind: str, pair: tuple[int, int] | None = None) -> dict:
        hits, ious, chances = [], [], []
        for r in rows[kind]:
            sel = torch.ones_like(r["hit"]) if pair is None else (r["from"] == pair[0]) & (r["to"] == pair[1])
            hits.append(r["hit"][sel]); ious.append(r["iou"][sel]); chances.append(r["chance"][sel])
        hit, io, ch = torch.cat(hits).float(), torch.cat(ious), torch.cat(chances)
        return {"n": len(hit), "target_share": float(hit.mean()), "share_of_recon_acc": float(hit.mean()) / recon_acc,
                "iou": float(io.mean()), "chance_iou": float(ch.mean()), "iou_minus_chance": float(io.mean() - ch.mean())}

    def cycle(pair: tuple[int, int] | None = None) -> float:
        vals = [c["iou"][torch.ones_like(c["from"], dtype=torch.bool) if pair is None else
                         (c["from"] == pair[0]) & (c["to"] == pair[1])] for c in cyc]
        return float(torch.cat(vals).mean())

    res = {"recon_accuracy": recon_acc, "mlp_train_or_load_seconds": mlp_seconds,
           "training": {"cinn": training_facts(t), "mlp": training_facts(mlp)}}
    for kind in rows:
        res[kind] = {"all": summary(kind), "horse->zebra": summary(kind, (HORSE, ZEBRA)),
                     "zebra->horse": summary(kind, (ZEBRA, HORSE))}
    res["cycle_iou"] = {"all": cycle(), "horse->zebra->horse": cycle((HORSE, ZEBRA)),
                        "zebra->horse->zebra": cycle((ZEBRA, HORSE))}
    return res


def shape_appearance(hub, images, labels, per_class: int, names, gen, train_seed: int | None = None) -> dict:
    from n2n_hub.translators.transfer import run_transfer

    t = hub.pair("vaegan@animals", "vaegan@animals", translator="cinn",
                 **({} if train_seed is None else {"seed": train_seed}))
    x, y = pick(images, labels, per_class, gen)
    perm = torch.randperm(len(x), generator=gen)
    shape, look, ys, yl = x, x[perm], y, y[perm]
    out = run_transfer(t, "appearance", shape, appearance=look).outputs
    recon_shape = t.target.decode(t.target.encode(shape))
    g_out, e_out = texture(out)
    g_s, e_s = texture(shape)
    g_a, e_a = texture(look)
    closer_grey = ((g_out - g_a).abs() < (g_out - g_s).abs()).float()
    closer_tex = ((e_out - e_a).abs() < (e_out - e_s).abs()).float()
    # Where the two inputs' grey levels differ clearly, "closer" is not decided by a hair's breadth.
    distinct = (g_s - g_a).abs() > 0.2
    edged = [texture(v, interior=False)[1] for v in (out, shape, look)]
    closer_tex_edged = ((edged[0] - edged[2]).abs() < (edged[0] - edged[1]).abs()).float()
    chance = iou(shape, images[torch.randint(len(images), (len(shape),), generator=gen)])
    per_pair = {}
    for a, b in ((HORSE, ZEBRA), (ZEBRA, HORSE), (5, 1), (1, 5), (6, 3)):  # (shape class, appearance class)
        s = shape[ys == a][:10]
        lk = look[yl == b][:1].expand(len(s), -1, -1, -1) if (yl == b).any() else None
        if lk is None or len(s) == 0:
            continue
        o = run_transfer(t, "appearance", s, appearance=lk).outputs
        go, eo = texture(o)
        gs, es = texture(s)
        ga, ea = texture(lk)
        per_pair[f"{names[a]} shape, {names[b]} look"] = {
            "iou_with_shape": float(iou(o, s).mean()), "iou_with_look": float(iou(o, lk).mean()),
            "texture_out": float(eo.mean()), "texture_shape": float(es.mean()), "texture_look": float(ea.mean()),
            "grey_out": float(go.mean()), "grey_shape": float(gs.mean()), "grey_look": float(ga.mean())}
    return {"training": training_facts(t), "n": len(shape), "iou_with_shape": float(iou(out, shape).mean()),
            "iou_with_look": float(iou(out, look).mean()), "chance_iou": float(chance.mean()),
            "recon_iou_with_shape": float(iou(recon_shape, shape).mean()),
            "grey_closer_to_look": float(closer_grey.mean()), "texture_closer_to_look": float(closer_tex.mean()),
            "texture_with_edges_closer_to_look": float(closer_tex_edged.mean()),
            "pairs_with_distinct_grey": int(distinct.sum()),
            "grey_closer_to_look_where_distinct": float(closer_grey[distinct].mean()),
            "grey_gap_out_to_look": float((g_out - g_a).abs().mean()),
            "grey_gap_out_to_shape": float((g_out - g_s).abs().mean()),
            "texture_energy": {"out": float(e_out.mean()), "shape": float(e_s.mean()), "look": float(e_a.mean())},
            "grey_level_spread_between_images": float(g_s.std()), "per_pair": per_pair}


def exemplar_guided(hub, images, labels, per_class: int, gen) -> dict:
    from n2n_hub.translators.transfer import run_transfer

    t = hub.pair("segmenter:labels@animals", "vaegan@animals", translator="cinn")
    seg = t.source
    x, _ = pick(images, labels, per_class, gen)
    cond = x[torch.randperm(len(x), generator=gen)]
    out = run_transfer(t, "source", x, condition=cond, n=1, temperature=1.0, seed=0)
    z_ex = t.target.encode(x)
    fresh = out.resampled[:, 0]
    z_fresh = t.target.encode(fresh)
    z_out = t.target.encode(out.outputs)
    want = seg.segment(cond)

    def seg_match(o: torch.Tensor) -> tuple[float, float]:
        got = seg.segment(o)
        fg_w, fg_g = want > 0, got > 0
        fiou = ((fg_w & fg_g).flatten(1).sum(1).float() / (fg_w | fg_g).flatten(1).sum(1).clamp(min=1)).mean()
        agree = ((got == want) & fg_w).flatten(1).sum(1).float() / fg_w.flatten(1).sum(1).clamp(min=1)
        return float(fiou), float(agree.mean())

    fi_t, ag_t = seg_match(out.outputs)
    fi_f, ag_f = seg_match(fresh)
    return {"training": training_facts(t), "n": len(x),
            "latent_distance_transfer": float((z_out - z_ex).norm(dim=1).mean()),
            "latent_distance_resampled": float((z_fresh - z_ex).norm(dim=1).mean()),
            "latent_distance_exemplar_to_condition_image": float((t.target.encode(cond) - z_ex).norm(dim=1).mean()),
            "fg_iou_with_new_map_transfer": fi_t, "class_agreement_transfer": ag_t,
            "fg_iou_with_new_map_resampled": fi_f, "class_agreement_resampled": ag_f,
            "iou_with_exemplar_transfer": float(iou(out.outputs, x).mean()),
            "iou_with_exemplar_resampled": float(iou(fresh, x).mean())}


def figures(hub, images, labels, names, out_dir: Path) -> list[Path]:
    """The README's figures: unpaired rows (exemplar | transfer | cycle back | 2 fresh-residual samples),
    shape/appearance rows (shape | appearance | output) and exemplar-guided rows
    (exemplar | new label map's image | transfer | fresh-residual sample)."""
    from n2n_hub.base.images import save_grid
    from n2n_hub.translators.transfer import run_transfer

    written = []
    gen = torch.Generator().manual_seed(5)
    t = hub.pair("domain@animals", "vaegan@animals", translator="cinn")
    rows = []
    for a, b, k in ((HORSE, ZEBRA, 3), (ZEBRA, HORSE, 3), (1, 5, 1), (3, 0, 1)):
        x = images[labels == a][torch.randperm(int((labels == a).sum()), generator=gen)[:k]]
        out = run_transfer(t, "domain", x, to=names[b], from_=names[a], n=2, temperature=1.0, seed=0)
        back = run_transfer(t, "domain", out.outputs, to=names[a], from_=names[b])
        rows.append(torch.stack([x, out.outputs, back.outputs, out.resampled[:, 0], out.resampled[:, 1]], 1))
    path = out_dir / "transfer.png"
    save_grid(torch.cat(rows).flatten(0, 1), path, ncol=5)
    written.append(path)
    t = hub.pair("vaegan@animals", "vaegan@animals", translator="cinn")
    shape = torch.cat([images[labels == HORSE][:2], images[labels == 5][:2]])
    look = torch.cat([images[labels == ZEBRA][:1].expand(2, -1, -1, -1), images[labels == 1][:1].expand(2, -1, -1, -1)])
    out = run_transfer(t, "appearance", shape, appearance=look)
    t2 = hub.pair("segmenter:labels@animals", "vaegan@animals", translator="cinn")
    ex = torch.cat([images[labels == HORSE][2:4], images[labels == 3][:2]])
    cond = torch.cat([images[labels == 6][:2], images[labels == 0][:2]])
    out2 = run_transfer(t2, "source", ex, condition=cond, n=1, temperature=1.0, seed=0)
    grid = torch.cat([torch.stack([shape, look, out.outputs, torch.full_like(shape, -1.0)], 1),
                      torch.stack([ex, cond, out2.outputs, out2.resampled[:, 0]], 1)])
    path = out_dir / "transfer_shape.png"
    save_grid(grid.flatten(0, 1), path, ncol=4)
    written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=20, help="held-out inputs per class")
    ap.add_argument("--out", type=Path, default=Path("bench/out/transfer.json"))
    ap.add_argument("--parts", default="unpaired,shape,exemplar")
    ap.add_argument("--figures", type=Path, default=None, help="also write the README figures into this folder")
    ap.add_argument("--train-seed", type=int, default=None,
                    help="(a) and (b): train the domains and deformation cINNs with this seed instead of the "
                         "registry's, to see how much the numbers move between training runs")
    args = ap.parse_args()
    torch.manual_seed(0)
    from n2n_animals import CLASS_NAMES
    from n2n_animals.classifier import classify
    from n2n_animals.data import load

    from n2n_hub import Hub

    hub = Hub(progress=False)
    test = load("test")
    images, labels = test["image"], test["label"]
    res: dict = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, load {loadavg()}",
                 "torch_threads": torch.get_num_threads()}
    parts = args.parts.split(",")
    t0 = time.perf_counter()
    if "unpaired" in parts:
        res["unpaired"] = unpaired(hub, images, labels, args.per_class, classify, CLASS_NAMES,
                                   torch.Generator().manual_seed(1), args.train_seed)
    if "shape" in parts:
        res["shape_appearance"] = shape_appearance(hub, images, labels, args.per_class, CLASS_NAMES,
                                                   torch.Generator().manual_seed(2), args.train_seed)
    if "exemplar" in parts:
        res["exemplar_guided"] = exemplar_guided(hub, images, labels, args.per_class, torch.Generator().manual_seed(3))
    res["seconds"] = time.perf_counter() - t0
    if args.figures is not None:
        res["figures"] = [str(p) for p in figures(hub, images, labels, CLASS_NAMES, args.figures)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
