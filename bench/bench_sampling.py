"""Batch-1 sampling: the plain flow against its inference form, interleaved, with the GEMV floor.

For each flow size, ``sample`` runs through the plain modules (``inverse``: log-dets, module
calls, ActNorm's exp per call) and through the inference form (the default), alternating
in rounds so that load from other processes falls on both alike; the median round is reported.
Two floors: the flow's matrix-vector products alone, one ``torch.mm`` per weight matrix
(embedder and condition projection included), and one read of as many bytes as the weights
(``torch.sum`` over a flat tensor of that size), which no sampling path can beat without
reading fewer weight bytes. With several threads the form runs few-row products as two
batched halves, one per thread, and so goes below the ``mm`` floor.

    python bench/bench_sampling.py --threads 2
    python bench/bench_sampling.py --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, interleaved, loadavg, wait_policy  # noqa: E402

from n2n_hub.cinn import ConditionalINN, ConditionSpec  # noqa: E402

SIZES = {  # name: (dim, condition, blocks, hidden, depth, condition projection)
    "default text pair (bert-vaegan-animals)": (128, 384, 12, 256, 2, 10),
    "bench_compile size": (268, 768, 8, 512, 3, None),
    "Net2Net size (bench_cinn)": (268, 768, 20, 1024, 3, None),
}


def build(dim: int, cond: int, blocks: int, hidden: int, depth: int,
          proj: int | None) -> tuple[ConditionalINN, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    flow = ConditionalINN(dim, ConditionSpec.infer((cond,), "float32"), n_blocks=blocks, hidden=hidden,
                          depth=depth, condition_projection=proj)
    z, c = torch.randn(512, dim, generator=g), torch.randn(512, cond, generator=g)
    if proj:
        flow.fit_condition(c, torch.randint(0, proj, (512,), generator=g))
    flow.initialize(z, c, whitening_rows=torch.randn(16 * dim, dim, generator=g))
    return flow.eval(), c[:1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="default: torch's (the cores)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--sizes", default="0,1,2", help="indices into the size table")
    args = ap.parse_args()
    try:
        picked = [int(i) for i in args.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes takes comma-separated indices, got {args.sizes!r}")
    if not all(0 <= i < len(SIZES) for i in picked):
        ap.error(f"--sizes indices run from 0 to {len(SIZES) - 1}, got {args.sizes!r}")
    if min(args.threads, args.rounds, args.calls) < 1:
        ap.error("--threads, --rounds and --calls must be at least 1")
    torch.set_num_threads(args.threads)
    load_before = loadavg()
    lines = ["| flow | weights (MB) | plain (ms) | inference form (ms) | speed-up | mm floor (ms) | read floor (ms) "
             "| outputs |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for i in picked:
        name, size = list(SIZES.items())[i]
        flow, c = build(*size)
        weights = [m.weight for m in flow.modules() if isinstance(m, torch.nn.Linear)]
        xs = [torch.randn(1, w.shape[1]) for w in weights]
        g = torch.Generator()

        def plain() -> torch.Tensor:  # sampling as before the inference form: through the modules
            flow._fast = lambda x: False
            try:
                return flow.sample(c, n=1, generator=g.manual_seed(1))[:, 0]
            finally:
                del flow._fast

        def folded() -> torch.Tensor:
            return flow.sample(c, n=1, generator=g.manual_seed(1))[:, 0]

        def floor() -> None:
            for w, x in zip(weights, xs):
                torch.mm(x, w.t())
        flat = torch.randn(sum(w.numel() for w in weights))

        def read() -> None:
            flat.sum()
        a, b = plain(), folded()
        gap = (a - b).abs().max().item()
        outputs = "bit-identical" if torch.equal(a, b) else f"max abs. difference {gap:.1e} (largest entry {a.abs().max().item():.1f})"
        fns = {"plain": plain, "folded": folded, "floor": floor, "read": read}
        interleaved(fns, rounds=1, calls=3)  # warm-up
        ms = {k: 1e3 * s for k, s in interleaved(fns, args.rounds, args.calls).items()}
        p, f, fl, rd = (ms[k] for k in ("plain", "folded", "floor", "read"))
        mb = sum(w.numel() for w in weights) * 4 / 1e6
        lines.append(f"| {name}: {size[2]} blocks, hidden {size[3]}, depth {size[4]}, d={size[0]}, condition "
                     f"{size[1]}{f' via a {size[5]}-d probe' if size[5] else ''} | {mb:.1f} | {p:.2f} | {f:.2f} | "
                     f"{p / f:.2f}× | {fl:.2f} | {rd:.2f} | {outputs} |")
        print(lines[-1], flush=True)
    head = (f"- {cpu_name()}, {args.threads} thread(s), {wait_policy()}, torch {torch.__version__}, load {load_before} before and "
            f"{loadavg()} after; median of {args.rounds} interleaved rounds of {args.calls} calls")
    print("\n".join([head, ""] + lines))


if __name__ == "__main__":
    main()
