"""Load benchmark of `n2n-hub serve` on loopback: dynamic batching on against off.

Starts two real servers for the offline default pair (bert -> vaegan@animals, translator cached
beforehand with `n2n-hub pair bert vaegan@animals`): one batching (``--max-batch 64``), one not
(``--max-batch 1``). The load comes from `wrk` (Debian package ``wrk``) in a process of its own,
driven by ``bench/serve_wrk.lua``: ``c`` closed-loop connections send seeded requests (one
prompt, ``n`` samples, PNG answer). For each concurrency the two servers get alternating rounds
(off, on, off, on, ...) of a fixed time; the table pools each server's rounds. Latency
percentiles, non-2xx answers and socket errors are read from wrk's ``--latency`` report. The
run then checks that the two servers answer seeded requests with the same bytes, and soaks the
batching server while sampling its resident memory.

    python bench/bench_serve.py --seconds 10 --rounds 2 --soak 600

Bounded: every round has a time and a request limit, the whole run prints its plan first, and
all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
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


WRK_SCRIPT = Path(__file__).resolve().parent / "serve_wrk.lua"
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"cannot read wrk's time {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> dict:
    """Requests, duration, rate, p50/p99 and errors from wrk's ``--latency`` report (+ our Lua's line)."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    if not done:
        raise ValueError(f"no request count in wrk's output:\n{out}")
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)[ \t]*$", out, re.M))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = re.search(r"n2n-bad-bodies: (\d+)", out)
    kinds = {}
    if socket:
        kinds.update({k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), socket.groups()) if int(v)})
    if non2xx and int(non2xx.group(1)):
        kinds["non-2xx"] = int(non2xx.group(1))
    if bad and int(bad.group(1)):
        kinds["not a PNG"] = int(bad.group(1))
    requests, seconds = int(done.group(1)), _ms(done.group(2) + done.group(3)) / 1000
    return {"requests": requests, "seconds": seconds, "rps": requests / seconds,
            "p50_ms": _ms(pct["50"]) if "50" in pct else float("nan"),
            "p99_ms": _ms(pct["99"]) if "99" in pct else float("nan"),
            "errors": sum(kinds.values()), "error_kinds": kinds}


def wrk(url: str, concurrency: int, seconds: float, n: int, max_requests: int) -> dict:
    """``concurrency`` closed-loop connections for ``seconds`` (at most ``max_requests``), from wrk's process."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "120s", "--latency",
           "-s", str(WRK_SCRIPT), url, "--", PAIR, str(n), str(max_requests)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 180)
    if run.returncode != 0:
        raise SystemExit(f"wrk failed ({run.returncode}): {run.stderr.strip() or run.stdout.strip()}")
    return parse_wrk(run.stdout)


def pooled(rounds: list[dict]) -> dict:
    """One server's rounds at one concurrency: rates pooled, p50 the mean, p99 the worst round's."""
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    kinds: dict[str, int] = {}
    for r in rounds:
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    return {"requests": requests, "seconds": seconds, "rps": requests / seconds,
            "p50_ms": sum(r["p50_ms"] for r in rounds) / len(rounds), "p99_ms": max(r["p99_ms"] for r in rounds),
            "errors": sum(kinds.values()), "error_kinds": kinds, "rounds": rounds}


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


def soak(url: str, pid: int, seconds: float, concurrency: int, n: int) -> dict:
    """wrk against the batching server for ``seconds`` while its resident memory is sampled every 5 s."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "120s", "--latency",
           "-s", str(WRK_SCRIPT), url, "--", PAIR, str(n), "0"]
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        samples.append((time.monotonic() - t0, rss_mb(pid)))
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            if time.monotonic() - t0 > seconds + 180:
                proc.kill()
                raise SystemExit("wrk did not finish the soak in time") from None
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    res = parse_wrk(out)
    warm = [m for t, m in samples if t >= min(30.0, seconds / 4)] or [m for _, m in samples]
    return {**res, "rss_start_mb": warm[0], "rss_end_mb": warm[-1], "rss_max_mb": max(warm),
            "rss_samples": len(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", default="1,4,16,64", help="comma-separated; empty: only the identity check and the soak")
    ap.add_argument("--seconds", type=float, default=10.0, help="per round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per concurrency and mode, alternating off/on")
    ap.add_argument("--max-requests", type=int, default=5000, help="per round")
    ap.add_argument("-n", type=int, default=1, help="samples per request")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each server")
    ap.add_argument("--soak", type=float, default=600.0, help="seconds of the memory soak (0: skip)")
    ap.add_argument("--soak-concurrency", type=int, default=16)
    ap.add_argument("--encode-apart", action="store_true", help="pass --encode-apart to the batching server")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("the load comes from wrk, which is not installed: apt-get install wrk")
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    plan = 2 * len(levels) * args.rounds * args.seconds + args.soak
    print(f"plan: {len(levels)} concurrencies x 2 modes x {args.rounds} rounds x {args.seconds:g} s + soak "
          f"{args.soak:g} s ≈ {plan / 60:.1f} min (+ start-up)", file=sys.stderr)
    extra = ["--encode-apart"] if args.encode_apart else []
    on, on_url = start(args.max_batch, args.delay_ms, args.threads, extra)
    off, off_url = start(1, 0, args.threads, [])
    results: dict = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_before": loadavg()},
                     "settings": vars(args) | {"json": None}, "levels": []}
    try:
        for url in (on_url, off_url):  # warm both (first calls allocate)
            wrk(url, 4, 3, args.n, 50)
        for c in levels:
            rounds: dict[str, list[dict]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for name, url in (("off", off_url), ("on", on_url)):
                    rounds[name].append(wrk(url, c, args.seconds, args.n, args.max_requests))
            row = {"concurrency": c, "off": pooled(rounds["off"]), "on": pooled(rounds["on"])}
            row["speedup"] = row["on"]["rps"] / row["off"]["rps"]
            row["load"] = loadavg()
            results["levels"].append(row)
            print(json.dumps({k: (v if not isinstance(v, dict) else {x: y for x, y in v.items() if x != 'rounds'})
                              for k, v in row.items()}), file=sys.stderr)
        results["identical"] = asyncio.run(identical(on_url, off_url, 24, 2))
        results["identical"]["of"] = 24
        if args.soak > 0:
            results["soak"] = soak(on_url, on.pid, args.soak, args.soak_concurrency, args.n)
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
    for r in results["levels"]:
        if r["concurrency"] == 16:
            met = r["speedup"] >= 4 and r["on"]["p99_ms"] <= r["off"]["p99_ms"]
            print(f"\ntarget at concurrency 16 (>= x4 req/s at equal or better p99): {'met' if met else 'NOT met'} "
                  f"(x{r['speedup']:.2f}, p99 {r['on']['p99_ms']:.0f} against {r['off']['p99_ms']:.0f} ms)")
    errors = {f"{r['concurrency']}/{m}": r[m]["error_kinds"] for r in results["levels"] for m in ("off", "on")
              if r[m]["errors"]}
    if errors:
        print(f"errors: {errors}")
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
