"""Load benchmark of `n2n-hub serve` on loopback: dynamic batching on against off.

Starts two real servers for the offline default pair (bert -> vaegan@animals, translator cached
beforehand with `n2n-hub pair bert vaegan@animals`): one batching (``--max-batch 64``), one not
(``--max-batch 1``). For each concurrency it drives both in turn with the same seeded requests
(one prompt, ``n`` samples, PNG answer) for a fixed time, then reports requests/s, p50/p99
latency and the error rate. It then checks that the two servers answer seeded requests with the
same bytes, and soaks the batching server while sampling its resident memory.

    python bench/bench_serve.py --seconds 10 --soak 600

Bounded: every phase has a time limit, and the whole run prints its plan first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, loadavg  # noqa: E402

PROMPTS = ["a photo of a zebra", "an elephant", "a bird", "a cow in a field", "a sheep", "a giraffe",
           "a horse running", "a dog", "a bear in the woods", "a cat sleeping", "two zebras", "a big elephant"]
PAIR = "bert-vaegan-animals"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(max_batch: int, delay_ms: float, threads: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "n2n_hub", "serve", PAIR, "--port", str(port), "--max-batch", str(max_batch),
           "--max-delay-ms", str(delay_ms), "--threads", str(threads), "--max-queue", "1024", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            r = httpx.get(url + "/readyz")
            if r.status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not get ready in 180 s (is the translator cached? run `n2n-hub pair bert vaegan@animals`)")


def body(i: int, n: int, fmt: str = "png") -> dict:
    return {"pair": PAIR, "texts": [PROMPTS[i % len(PROMPTS)]], "n": n, "seed": i, "format": fmt}


async def drive(url: str, concurrency: int, seconds: float, n: int, max_requests: int) -> dict:
    """``concurrency`` clients, each sending its next request when the last one is answered."""
    lat: list[float] = []
    errors = 0
    kinds: dict[str, int] = {}
    counter = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal errors, counter
            while time.monotonic() < stop and counter < max_requests:
                i = counter
                counter += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/translate", json=body(i, n))
                    ok = r.status_code == 200 and r.content[:4] == b"\x89PNG"
                    kind = f"HTTP {r.status_code}: {r.text[:80]}" if not ok else ""
                except httpx.HTTPError as e:
                    ok, kind = False, type(e).__name__
                lat.append(time.perf_counter() - t0)
                errors += not ok
                if kind:
                    kinds[kind] = kinds.get(kind, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {"requests": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "errors": errors, "error_kinds": kinds}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def identical(url_a: str, url_b: str, count: int, n: int) -> dict:
    """Seeded requests sent concurrently to both servers: how many answers have the same bytes."""
    out = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for fmt in ("png", "safetensors"):
            bodies = [body(i, n, fmt) for i in range(count)]
            a = await asyncio.gather(*(client.post(url_a + "/v1/translate", json=b) for b in bodies))
            b = await asyncio.gather(*(client.post(url_b + "/v1/translate", json=b) for b in bodies))
            out[fmt] = sum(x.content == y.content and x.status_code == 200 for x, y in zip(a, b))
    return out


async def soak(url: str, pid: int, seconds: float, concurrency: int, n: int) -> dict:
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    task = asyncio.create_task(drive(url, concurrency, seconds, n, 10**9))
    while not task.done():
        samples.append((time.monotonic() - t0, rss_mb(pid)))
        await asyncio.sleep(5)
    res = await task
    warm = [m for t, m in samples if t >= min(30.0, seconds / 4)] or [m for _, m in samples]
    return {**res, "rss_start_mb": warm[0], "rss_end_mb": warm[-1], "rss_max_mb": max(warm),
            "rss_samples": len(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency and mode")
    ap.add_argument("--max-requests", type=int, default=2000, help="per concurrency and mode")
    ap.add_argument("-n", type=int, default=1, help="samples per request")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each server")
    ap.add_argument("--soak", type=float, default=600.0, help="seconds of the memory soak (0: skip)")
    ap.add_argument("--soak-concurrency", type=int, default=16)
    ap.add_argument("--encode-apart", action="store_true", help="pass --encode-apart to the batching server")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    plan = 2 * len(levels) * args.seconds + args.soak
    print(f"plan: {len(levels)} concurrencies x 2 modes x {args.seconds:g} s + soak {args.soak:g} s ≈ {plan / 60:.1f} min",
          file=sys.stderr)
    extra = ["--encode-apart"] if args.encode_apart else []
    on, on_url = start(args.max_batch, args.delay_ms, args.threads, extra)
    off, off_url = start(1, 0, args.threads, [])
    results: dict = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_before": loadavg()},
                     "settings": vars(args) | {"json": None}, "levels": []}
    try:
        asyncio.run(drive(on_url, 4, 3, args.n, 50))   # warm both (first calls allocate)
        asyncio.run(drive(off_url, 4, 3, args.n, 50))
        for c in levels:
            row = {"concurrency": c}
            for name, url in (("off", off_url), ("on", on_url)):
                row[name] = asyncio.run(drive(url, c, args.seconds, args.n, args.max_requests))
            row["speedup"] = row["on"]["rps"] / row["off"]["rps"]
            row["load"] = loadavg()
            results["levels"].append(row)
            print(json.dumps(row), file=sys.stderr)
        results["identical"] = asyncio.run(identical(on_url, off_url, 24, 2))
        results["identical"]["of"] = 24
        if args.soak > 0:
            results["soak"] = asyncio.run(soak(on_url, on.pid, args.soak, args.soak_concurrency, args.n))
        results["machine"]["load_after"] = loadavg()
    finally:
        for p in (on, off):
            p.send_signal(signal.SIGTERM)
        for p in (on, off):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    print("| concurrency | batching off: req/s | p50 ms | p99 ms | batching on: req/s | p50 ms | p99 ms | speed-up | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["levels"]:
        a, b = r["off"], r["on"]
        print(f"| {r['concurrency']} | {a['rps']:.1f} | {a['p50_ms']:.0f} | {a['p99_ms']:.0f} | {b['rps']:.1f} | "
              f"{b['p50_ms']:.0f} | {b['p99_ms']:.0f} | ×{r['speedup']:.2f} | {a['errors'] + b['errors']} |")
    ident = results["identical"]
    print(f"\nseeded answers identical (batching on vs off, 24 concurrent requests, n=2): PNG {ident['png']}/24, "
          f"safetensors {ident['safetensors']}/24")
    if "soak" in results:
        s = results["soak"]
        print(f"soak {args.soak:g} s at concurrency {args.soak_concurrency}: {s['requests']} requests, {s['errors']} errors, "
              f"{s['rps']:.1f} req/s; RSS after warm-up {s['rss_start_mb']:.0f} MB -> end {s['rss_end_mb']:.0f} MB "
              f"(max {s['rss_max_mb']:.0f} MB, {s['rss_samples']} samples)")
    print(f"machine: {results['machine']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
