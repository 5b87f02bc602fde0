"""Our cINN against FrEIA and zuko flows at equal wall-clock, on the same data, optimizer and embedder.

Two tasks:

(a) analytic: z_Θ = A z_Φ + L ε (bench/analytic.py); the best possible held-out NLL is known, so we
    report each flow's gap to it.
(b) Net2Net-sized: d = 268 target (BERT → BigGAN, Sec. 4.1), 768-d condition, 20 blocks, hidden 1024,
    on a random nonlinear conditional Gaussian mixture whose exact NLL we can evaluate.

Peers (all conditioned on the output h of the same kind of embedder, n2n_hub's VectorEmbedder):

* ours: n2n_hub.cinn.ConditionalINN (alternating affine coupling + ActNorm + permutation per block);
* FrEIA AllInOneBlock ×n (one affine half-coupling, global affine, permutation per block);
* FrEIA GLOWCouplingBlock + ActNorm + PermuteRandom ×n (both halves per block, like ours);
* zuko NICE with affine transforms ×2n (one half-coupling each, so as many subnets as ours).

Every peer gets the same batches in the same order, Adam (fused, same lr), linear warmup and a cosine
decay over its own share of the budget, and gradient clipping. Ours takes n2n-hub's own training
step (``n2n_hub.training.step.train_step``, as ``pair`` runs it: the clip is applied inside the
fused update); the peers clip with ``clip_grad_norm_`` and then step, as their users would. Training time is handed out in short
slices, round-robin, so that load from other processes on a shared machine hits all peers alike.

Effective GFLOP/s counts only matrix-multiply FLOPs: a training step costs ≈ 3× the forward's
(forward, gradient w.r.t. inputs, gradient w.r.t. weights), so

    effective GFLOP/s = 3 · F_fwd(B) / B · samples/s / 1e9,

where F_fwd(B) is the forward pass's matmul FLOPs (2·m·k·n per (m×k)(k×n) product, counted by
torch.utils.flop_counter on the peer itself, embedder included). The roofline is torch.mm's
GFLOP/s on the same shapes (our model's forward and backward matmuls at batch B, weighted by FLOPs),
measured in the same run.

Usage: python bench/bench_cinn.py --budget 90 --analytic-budget 30 --device cpu --out bench/cinn_table.md
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# On a CPU shared with other jobs, OpenMP threads that spin at barriers wait for each other to be
# scheduled and a 2-thread step ran 4-8x slower than a 1-thread one; sleeping waiters avoid that.

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytic import make_task  # noqa: E402

from n2n_hub.cinn import ConditionalINN, ConditionSpec  # noqa: E402
from n2n_hub.cinn.embedders import make_embedder  # noqa: E402
from n2n_hub.cinn.nll import LOG_2PI  # noqa: E402
from n2n_hub.base.distributed import World  # noqa: E402
from n2n_hub.training.step import train_step  # noqa: E402
from machine import cpu_name, loadavg, wait_policy  # noqa: E402


# -- machine --------------------------------------------------------------------------------------
cpu_model = cpu_name


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


LIBC = _libc()
if LIBC is not None:
    # Serve every allocation above 64 KiB by mmap and return it on free, so the resident set size
    # follows live tensors and its peak is a meaningful per-step memory figure on CPU.
    LIBC.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD


def rss_bytes(key: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the Net2Net-sized task -----------------------------------------------------------------------
class MixtureMap:
    """p(z | c) = Σ_k π_k(c) N(z; M_k u(c) + b_k, L_k L_kᵀ), u(c) = tanh(W c): nonlinear, multimodal,
    heteroscedastic, and with an exact log-density to compare held-out NLLs against."""

    def __init__(self, dim: int, cond_dim: int, k: int = 4, features: int = 64, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.dim, self.cond_dim, self.k = dim, cond_dim, k
        self.W = torch.randn(features, cond_dim, generator=g, dtype=torch.float64) * (2.0 / math.sqrt(cond_dim))
        self.Wpi = torch.randn(k, features, generator=g, dtype=torch.float64) * 0.5
        self.M = torch.randn(k, dim, features, generator=g, dtype=torch.float64) * (1.5 / math.sqrt(features))
        self.b = torch.randn(k, dim, generator=g, dtype=torch.float64) * 0.5
        diag = torch.exp(torch.empty(k, dim, dtype=torch.float64).uniform_(math.log(0.2), 0.0, generator=g))
        off = torch.tril(torch.randn(k, dim, dim, generator=g, dtype=torch.float64), -1) * (0.3 / math.sqrt(dim))
        self.L = off + torch.diag_embed(diag)

    def _parts(self, c: Tensor) -> tuple[Tensor, Tensor]:
        u = torch.tanh(c.double() @ self.W.T)
        logits = u @ (self.Wpi.T * 3.0)
        means = torch.einsum("kdf,nf->nkd", self.M, u) + self.b
        return torch.log_softmax(logits, dim=1), means

    def sample(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        c = torch.randn(n, self.cond_dim, generator=g, dtype=torch.float64)
        logpi, means = self._parts(c)
        comp = torch.multinomial(logpi.exp(), 1, generator=g)[:, 0]
        eps = torch.randn(n, self.dim, generator=g, dtype=torch.float64)
        z = means[torch.arange(n), comp]
        for j in range(self.k):  # per component: gathering L per sample would need n·D² memory
            rows = comp == j
            z[rows] += eps[rows] @ self.L[j].T
        return c.float(), z.float()

    def true_nll(self, z: Tensor, c: Tensor) -> Tensor:
        logpi, means = self._parts(c)
        logp = []
        for j in range(self.k):
            r = (z.double() - means[:, j]).T
            u = torch.linalg.solve_triangular(self.L[j], r, upper=False)
            logdet = torch.log(torch.diagonal(self.L[j])).sum()
            logp.append(-0.5 * u.pow(2).sum(0) - 0.5 * self.dim * LOG_2PI - logdet)
        return -torch.logsumexp(torch.stack(logp, 1) + logpi, dim=1)


# -- peers ----------------------------------------------------------------------------------------
def gaussian_nll(v: Tensor, logdet: Tensor) -> Tensor:
    return 0.5 * v.pow(2).sum(1) + 0.5 * v.shape[1] * LOG_2PI - logdet


class FreiaFlow(nn.Module):
    """A FrEIA SequenceINN conditioned on h = H(c) from n2n_hub's embedder."""

    def __init__(self, dim: int, cond_dim: int, n_blocks: int, hidden: int, glow: bool) -> None:
        super().__init__()
        import FrEIA.framework as Ff
        import FrEIA.modules as Fm

        def subnet(c_in: int, c_out: int) -> nn.Module:
            return nn.Sequential(nn.Linear(c_in, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.01), nn.Linear(hidden, hidden), nn.LeakyReLU(0.01),
                                 nn.Linear(hidden, c_out))

        self.embedder = make_embedder(ConditionSpec((cond_dim,), "vector"), dim, max(dim, 256))
        self.inn = Ff.SequenceINN(dim)
        for i in range(n_blocks):
            if glow:
                self.inn.append(Fm.GLOWCouplingBlock, cond=0, cond_shape=(dim,), subnet_constructor=subnet, clamp=2.0)
                self.inn.append(Fm.ActNorm)
                self.inn.append(Fm.PermuteRandom, seed=i)
            else:
                self.inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(dim,), subnet_constructor=subnet,
                                affine_clamping=2.0, permute_soft=False)

    def nll(self, z: Tensor, c: Tensor) -> Tensor:
        v, logdet = self.inn(z, c=[self.embedder(c)])
        return gaussian_nll(v, logdet)

    def sample(self, c: Tensor) -> Tensor:
        v = torch.randn(c.shape[0], self.inn.shapes[0][0], device=c.device)
        return self.inn(v, c=[self.embedder(c)], rev=True)[0]


class ZukoFlow(nn.Module):
    """zuko's NICE/RealNVP coupling flow (affine) conditioned on h = H(c)."""

    def __init__(self, dim: int, cond_dim: int, transforms: int, hidden: int) -> None:
        super().__init__()
        import zuko

        self.embedder = make_embedder(ConditionSpec((cond_dim,), "vector"), dim, max(dim, 256))
        self.flow = zuko.flows.NICE(dim, context=dim, transforms=transforms, randmask=False,
                                    hidden_features=(hidden,) * 3, activation=nn.LeakyReLU)

    def nll(self, z: Tensor, c: Tensor) -> Tensor:
        return -self.flow(self.embedder(c)).log_prob(z)

    def sample(self, c: Tensor) -> Tensor:
        return self.flow(self.embedder(c)).sample()


class Ours(nn.Module):
    def __init__(self, dim: int, cond_dim: int, n_blocks: int, hidden: int) -> None:
        super().__init__()
        self.flow = ConditionalINN(dim, ConditionSpec((cond_dim,), "vector"), n_blocks=n_blocks, hidden=hidden)

    def nll(self, z: Tensor, c: Tensor) -> Tensor:
        return self.flow.nll(z, c)

    def sample(self, c: Tensor) -> Tensor:
        return self.flow.sample(c)[:, 0]


def build_peers(dim: int, cond_dim: int, n_blocks: int, hidden: int, only: list[str] | None
                ) -> dict[str, nn.Module]:
    makers: dict[str, Callable[[], nn.Module]] = {
        "ours": lambda: Ours(dim, cond_dim, n_blocks, hidden),
        "FrEIA AllInOne": lambda: FreiaFlow(dim, cond_dim, n_blocks, hidden, glow=False),
        "FrEIA GLOW": lambda: FreiaFlow(dim, cond_dim, n_blocks, hidden, glow=True),
        "zuko NICE": lambda: ZukoFlow(dim, cond_dim, 2 * n_blocks, hidden),
    }
    out = {}
    for name, make in makers.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        out[name] = make()
    return out


def forward_matmul_flops(model: nn.Module, z: Tensor, c: Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.nll(z, c)
    return int(fc.get_total_flops())


# -- interleaved training at equal wall-clock -----------------------------------------------------
@dataclass
class Run:
    name: str
    model: nn.Module
    opt: torch.optim.Optimizer
    budget: float
    steps: int = 0
    train_time: float = 0.0
    skipped: int = 0
    slice_rates: list[float] = field(default_factory=list)
    last_loss: float = float("nan")


def train_interleaved(peers: dict[str, nn.Module], data: tuple[Tensor, Tensor], budget: float, batch: int,
                      lr: float, device: torch.device, bf16: bool, slice_s: float, warmup: int = 20) -> dict[str, Run]:
    c_all, z_all = data
    n = z_all.shape[0]
    runs, params_of = {}, {}
    for name, model in peers.items():
        model.to(device).train()
        params = params_of[name] = [p for p in model.parameters() if p.requires_grad]
        try:
            opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(params, lr=lr)
        runs[name] = Run(name, model, opt, budget)
        c0, z0 = c_all[:batch].to(device), z_all[:batch].to(device)
        with torch.no_grad():  # data-dependent initialisation where the peer has it (ActNorm)
            if isinstance(model, Ours):
                model.flow.initialize(z0, c0, whitening_rows=z_all.to(device))
            else:
                model.nll(z0, c0)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (bf16 and device.type == "cuda") else None
    while any(r.train_time < r.budget for r in runs.values()):
        for r in runs.values():
            if r.train_time >= r.budget:
                continue
            sync(device)
            t0 = time.perf_counter()
            steps0 = r.steps
            while True:
                frac = min(1.0, r.train_time / r.budget)
                lr_now = lr * min(1.0, (r.steps + 1) / warmup) * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
                for gr in r.opt.param_groups:
                    gr["lr"] = lr_now
                i = (r.steps * batch) % (n - batch + 1)
                c, z = c_all[i:i + batch].to(device), z_all[i:i + batch].to(device)
                if isinstance(r.model, Ours):  # the step `pair` takes
                    lv, gv = train_step(r.model.nll, r.opt, params_of[r.name], c, z, 10.0,
                                        amp or contextlib.nullcontext(), World(), False).tolist()
                else:
                    r.opt.zero_grad(set_to_none=True)
                    if amp is not None:
                        with amp:
                            loss = r.model.nll(z, c).float().mean()
                    else:
                        loss = r.model.nll(z, c).mean()
                    loss.backward()
                    gn = torch.nn.utils.clip_grad_norm_(r.model.parameters(), 10.0)
                    lv, gv = torch.stack([loss.detach(), gn.detach().float()]).tolist()
                if math.isfinite(lv) and math.isfinite(gv):
                    r.opt.step()
                    r.last_loss = lv / z.shape[1]
                else:
                    r.skipped += 1
                r.steps += 1
                sync(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= slice_s or r.train_time + elapsed >= r.budget:
                    break
            r.train_time += elapsed
            r.slice_rates.append((r.steps - steps0) * batch / elapsed)
    return runs


@torch.no_grad()
def heldout_nll(model: nn.Module, data: tuple[Tensor, Tensor], device: torch.device, chunk: int = 500) -> float:
    model.eval()
    c, z = data
    total = 0.0
    for i in range(0, z.shape[0], chunk):
        total += model.nll(z[i:i + chunk].to(device), c[i:i + chunk].to(device)).double().sum().item()
    model.train()
    return total / z.numel()


def step_memory(model: nn.Module, data: tuple[Tensor, Tensor], batch: int, device: torch.device) -> float | None:
    """Peak memory of one training step above what is resident before it (weights, Adam moments)."""
    c, z = data[0][:batch].to(device), data[1][:batch].to(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        model.nll(z, c).mean().backward()
        peak = torch.cuda.max_memory_allocated(device)
    else:
        if LIBC is not None:
            LIBC.malloc_trim(0)
        if not reset_peak_rss():
            return None
        before = rss_bytes("VmRSS")
        model.nll(z, c).mean().backward()
        peak = rss_bytes("VmHWM")
    model.zero_grad(set_to_none=True)
    return (peak - before) / 2**20


@torch.no_grad()
def sampling_speed(model: nn.Module, cond_dim: int, device: torch.device, big: int) -> tuple[float, float]:
    """(median latency in ms for one sample, samples/s for one batch of ``big``)."""
    model.eval()
    c1 = torch.randn(1, cond_dim, device=device)
    for _ in range(3):
        model.sample(c1)
    times = []
    for _ in range(15):
        sync(device)
        t = time.perf_counter()
        model.sample(c1)
        sync(device)
        times.append(time.perf_counter() - t)
    cb = torch.randn(big, cond_dim, device=device)
    sync(device)
    t = time.perf_counter()
    model.sample(cb)
    sync(device)
    rate = big / (time.perf_counter() - t)
    model.train()
    return statistics.median(times) * 1e3, rate


def matmul_roofline(model: nn.Module, batch: int, device: torch.device, reps: int = 10,
                    dtype: torch.dtype = torch.float32, rounds: int = 7) -> float:
    """torch.mm GFLOP/s on the forward and backward matmul shapes of ``model`` at ``batch``, FLOP-weighted.

    Each shape is timed in ``rounds`` rounds that interleave all shapes, and its best round
    counts: other processes only ever slow a round down, so the best is the closest to what
    the cores can do (a roofline measured as a mean under load is not a roofline).
    """
    shapes: dict[tuple[int, int, int], int] = {}
    for m in model.modules():
        if isinstance(m, nn.Linear):
            k, n = m.in_features, m.out_features
            for s in ((batch, k, n), (batch, n, k), (n, batch, k)):  # forward, grad input, grad weight
                shapes[s] = shapes.get(s, 0) + 1
    operands = {s: (torch.randn(s[0], s[1], device=device, dtype=dtype), torch.randn(s[1], s[2], device=device,
                                                                                    dtype=dtype)) for s in shapes}
    best = {s: float("inf") for s in shapes}
    for _ in range(rounds):
        for s, (a, b) in operands.items():
            a @ b
            sync(device)
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            sync(device)
            best[s] = min(best[s], (time.perf_counter() - t) / reps)
    total_flops = sum(2.0 * m_ * k_ * n_ * count for (m_, k_, n_), count in shapes.items())
    total_time = sum(best[s] * count for s, count in shapes.items())
    return total_flops / total_time / 1e9


def optimizer_step_ms(n_params: int, device: torch.device) -> dict[str, float]:
    """Time of one Adam step over ``n_params`` weights: per-tensor (torch default on CPU) vs fused."""
    ps = [nn.Parameter(torch.randn(1024, 1024, device=device)) for _ in range(max(1, n_params // 2**20))]
    for p in ps:
        p.grad = torch.randn_like(p)
    out = {}
    for label, kw in (("default", {}), ("fused", {"fused": True})):
        opt = torch.optim.Adam(ps, lr=1e-4, **kw)
        opt.step()
        sync(device)
        t = time.perf_counter()
        for _ in range(3):
            opt.step()
        sync(device)
        out[label] = (time.perf_counter() - t) / 3 * 1e3
    return out


# -- report ---------------------------------------------------------------------------------------
def fmt(x: float | None, spec: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=90.0, help="training seconds per peer on the Net2Net-sized task")
    ap.add_argument("--analytic-budget", type=float, default=30.0, help="training seconds per peer on the analytic task")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64, help="Net2Net-sized batch (1024 suits a GPU)")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast for training (CUDA only)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--slice", type=float, default=10.0, help="seconds per round-robin training slice")
    ap.add_argument("--sample-batch", type=int, default=4096)
    ap.add_argument("--peers", nargs="*", default=None, help="subset of peers to run")
    ap.add_argument("--skip-analytic", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--dim", type=int, default=268)
    ap.add_argument("--cond-dim", type=int, default=768)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--release-freed-memory", action="store_true",
                    help="leave glibc's malloc thresholds alone (n2n-hub's trainer raises them; see n2n_hub/base/allocator.py)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown report here too")
    args = ap.parse_args()
    if min(args.batch, args.blocks, args.hidden, args.threads, args.sample_batch, args.cond_dim) < 1 or args.dim < 2:
        ap.error("--batch, --blocks, --hidden, --threads, --sample-batch and --cond-dim must be at least 1, --dim at least 2")
    if not (args.budget > 0 and args.analytic_budget > 0 and args.slice > 0 and args.lr > 0):
        ap.error("--budget, --analytic-budget, --slice and --lr must be above 0")
    if not args.release_freed_memory:  # as `pair` trains: every flow in this process keeps the pages it frees
        from n2n_hub.base.allocator import keep_freed_memory

        keep_freed_memory()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    import FrEIA
    import zuko

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    say(f"- machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({args.threads} threads, {wait_policy()}, malloc thresholds {'default' if args.release_freed_memory else 'raised as in pair'}), FrEIA {getattr(FrEIA, '__version__', '0.2')}, zuko {zuko.__version__}"
        + (f", GPU {gpu}" if gpu else ""))
    say(f"- device {device}, fp32{' + bf16 autocast' if args.bf16 and device.type == 'cuda' else ''}; "
        f"load average at start: {loadavg()}")
    t_all = time.perf_counter()

    if not args.skip_analytic:
        task = make_task(8, 5, seed=1)
        g = torch.Generator().manual_seed(0)
        train_data = task.sample(200_000, g)
        val = task.sample(10_000, g)
        true_val = (task.true_nll(val[1], val[0]).sum() / val[1].numel()).item()
        peers = build_peers(8, 5, n_blocks=8, hidden=64, only=args.peers)
        runs = train_interleaved(peers, train_data, args.analytic_budget, 256, 2e-3, device, False,
                                 slice_s=min(args.slice, 5.0), warmup=50)
        say()
        say(f"**(a) analytic task** D=8, C=5, 8 blocks, hidden 64, batch 256, lr 2e-3, {args.analytic_budget:.0f} s "
            f"each. True conditional entropy H = {task.entropy_per_dim:.4f} nats/dim "
            f"(exact NLL of the held-out set: {true_val:.4f}).")
        say()
        say("| flow | params | steps | samples/s | held-out NLL (nats/dim) | gap to H |")
        say("|---|---:|---:|---:|---:|---:|")
        for name, r in runs.items():
            nll = heldout_nll(r.model, val, device)
            say(f"| {name} | {sum(p.numel() for p in r.model.parameters()) / 1e3:.0f} k | {r.steps} | "
                f"{r.steps * 256 / r.train_time:.0f} | {fmt(nll, '.4f')} | {fmt(nll - task.entropy_per_dim, '+.4f')} |")
        del peers, runs
        gc.collect()

    if not args.skip_big:
        D, CD, B = args.dim, args.cond_dim, args.batch
        mix = MixtureMap(D, CD, seed=0)
        g = torch.Generator().manual_seed(0)
        n_train = 40_000
        train_data = mix.sample(n_train, g)
        val = mix.sample(1_000, g)
        true_val = (mix.true_nll(val[1], val[0]).sum() / val[1].numel()).item()
        peers = build_peers(D, CD, args.blocks, args.hidden, only=args.peers)
        ours_flow = next((m.flow for m in peers.values() if isinstance(m, Ours)), None)
        roof_before = matmul_roofline(ours_flow, B, device) if ours_flow is not None else None
        zb, cb = train_data[1][:B], train_data[0][:B]
        flops = {name: forward_matmul_flops(m, zb, cb) for name, m in peers.items()}
        t_train = time.perf_counter()
        runs = train_interleaved(peers, train_data, args.budget, B, args.lr, device, args.bf16, args.slice)
        t_train = time.perf_counter() - t_train
        roof_after = matmul_roofline(ours_flow, B, device) if ours_flow is not None else None
        load_mid = loadavg()
        roof = max(x for x in (roof_before, roof_after) if x is not None) if ours_flow is not None else None
        say()
        say(f"**(b) Net2Net-sized task** d={D}, condition {CD}-d, {args.blocks} blocks, hidden {args.hidden}, "
            f"batch {B}, Adam (fused) lr {args.lr:g}, {args.budget:.0f} s of training each, interleaved in "
            f"{args.slice:.0f} s slices ({t_train:.0f} s in all). Data: 4-component conditional Gaussian mixture, "
            f"exact held-out NLL {true_val:.4f} nats/dim; N(0, I) reference line {0.5 * math.log(2 * math.pi * math.e):.4f}.")
        say()
        say("| flow | params | steps | train samples/s (median slice; best) | effective GFLOP/s | % of matmul roofline "
            "| held-out NLL (nats/dim) | step peak memory (MiB) | sample latency, batch 1 (ms) "
            f"| sampling, batch {args.sample_batch} (samples/s) |")
        say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in runs.items():
            nll = heldout_nll(r.model, val, device)
            rate = r.steps * B / r.train_time
            med, best = statistics.median(r.slice_rates), max(r.slice_rates)
            eff = 3 * flops[name] / B * rate / 1e9
            mem = step_memory(r.model, train_data, B, device)
            lat, thr = sampling_speed(r.model, CD, device, args.sample_batch)
            params = sum(p.numel() for p in r.model.parameters())
            say(f"| {name} | {params / 1e6:.1f} M | {r.steps} | {rate:.1f} ({med:.1f}; {best:.1f}) | {eff:.1f} | "
                f"{fmt(100 * eff / roof if roof else None, '.0f')} | {fmt(nll, '.4f')} | {fmt(mem, '.0f')} | "
                f"{lat:.1f} | {thr:.0f} |")
        say()
        say("- forward matmul GFLOP per sample: " + ", ".join(f"{k} {v / B / 1e9:.3f}" for k, v in flops.items()))
        if roof is not None:
            say(f"- matmul roofline (torch.mm on our forward+backward shapes at batch {B}): "
                f"{fmt(roof_before, '.1f')} GFLOP/s before training, {fmt(roof_after, '.1f')} after; the best is used")
        adam = optimizer_step_ms(sum(p.numel() for p in next(iter(peers.values())).parameters()), device)
        say(f"- one Adam step over ~{sum(p.numel() for p in next(iter(peers.values())).parameters()) / 1e6:.0f} M "
            f"weights: {adam['default']:.0f} ms per-tensor (torch default on CPU), {adam['fused']:.0f} ms fused")
        say(f"- load average after training: {load_mid}")
    say(f"- whole run {time.perf_counter() - t_all:.0f} s; load average at end: {loadavg()}")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
