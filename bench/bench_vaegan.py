"""Measure the shipped ``vaegan@animals``: reconstruction quality, latent class structure, speed.

    python bench/bench_vaegan.py [--variant animals] [--grid vaegan_animals.png]

Prints JSON. The grid shows, per pair of rows, test images above their reconstructions
(two of each class), then samples decoded from z ~ N(0, I).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="animals")
    ap.add_argument("--grid", default=None, help="write a PNG grid here")
    args = ap.parse_args()

    from n2n_animals.classifier import classify
    from n2n_animals.data import load
    from n2n_hub.spec.expert import import_object
    from n2n_hub.catalog.host import get_host
    from n2n_vaegan.metrics import reconstruction_metrics

    spec = get_host().collect().experts["vaegan"]
    t = time.perf_counter()
    expert = import_object(spec.loader)(spec, args.variant)
    load_s = time.perf_counter() - t
    test, train = load("test"), load("train")
    x, y = test["image"], test["label"]

    t = time.perf_counter()
    z = expert.encode(x)
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    rec = expert.decode(z)
    dec_s = time.perf_counter() - t
    report = {"variant": args.variant, "fingerprint": expert.fingerprint()[:16], "test_images": x.shape[0],
              **{k: round(v, 4) for k, v in reconstruction_metrics(x, rec).items()}}

    # Do reconstructions still show the same animal? And is the latent organised by class?
    report["classifier_acc_on_test"] = round((classify(x).argmax(1) == y).float().mean().item(), 4)
    report["classifier_acc_on_reconstructions"] = round((classify(rec).argmax(1) == y).float().mean().item(), 4)
    z_train = expert.encode(train["image"])
    means = torch.stack([z_train[train["label"] == c].mean(0) for c in range(10)])
    report["nearest_class_mean_acc_in_latent"] = round((torch.cdist(z, means).argmin(1) == y).float().mean().item(), 4)
    report["latent_mean_abs"] = round(z_train.mean(0).abs().mean().item(), 4)
    report["latent_std"] = round(z_train.std(0).mean().item(), 4)
    gen = torch.Generator().manual_seed(0)
    samples = expert.decode(expert.sample_prior(32, gen).latents)
    report["classifier_confidence_on_prior_samples"] = round(classify(samples).softmax(1).max(1).values.mean().item(), 4)
    report["seconds"] = {"load": round(load_s, 3), "encode_1000": round(enc_s, 3), "decode_1000": round(dec_s, 3)}
    report["training"] = expert.info
    print(json.dumps(report, indent=2))

    if args.grid:
        from torchvision.utils import save_image

        first = torch.stack([(y == c).nonzero()[0, 0] for c in range(10)])  # one of each class per row
        second = torch.stack([(y == c).nonzero()[1, 0] for c in range(10)])
        rows = [x[first], rec[first], x[second], rec[second], samples[:10], samples[10:20]]
        save_image(torch.cat(rows) * 0.5 + 0.5, args.grid, nrow=10, padding=2, pad_value=0.5)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
