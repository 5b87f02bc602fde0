"""The serving benchmark reads wrk's report right (rates, percentiles in any unit, every error kind)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_serve.py"

# wrk 4.1.0 --latency output with our Lua's last line (note the trailing blanks after the times)
REPORT = """Running 10s test @ http://127.0.0.1:8765
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   155.20ms   12.27ms 191.50ms   71.00%
    Req/Sec   111.53     42.68   161.00     57.50%
  Latency Distribution
     50%  155.09ms 
     75%  160.33ms 
     90%  171.00ms 
     99%    1.02s 
  1008 requests in 10.05s, 906.93KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:    100.30
Transfer/sec:     90.24KB
n2n-bad-bodies: 1
"""


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rates_percentiles_and_errors_come_from_the_report(bench):
    r = bench.parse_wrk(REPORT)
    assert r["requests"] == 1008 and r["seconds"] == pytest.approx(10.05)
    assert r["rps"] == pytest.approx(1008 / 10.05)
    assert (r["p50_ms"], r["p99_ms"]) == (pytest.approx(155.09), pytest.approx(1020.0))
    assert r["error_kinds"] == {"read": 2, "timeout": 1, "non-2xx": 3, "not a PNG": 1} and r["errors"] == 7


def test_a_clean_report_has_no_errors_and_microsecond_times_convert(bench):
    clean = REPORT.replace("155.09ms", "812.50us").replace("read 2", "read 0").replace("timeout 1", "timeout 0")
    clean = clean.replace("  Non-2xx or 3xx responses: 3\n", "").replace("n2n-bad-bodies: 1", "n2n-bad-bodies: 0")
    r = bench.parse_wrk(clean)
    assert r["p50_ms"] == pytest.approx(0.8125) and r["errors"] == 0 and r["error_kinds"] == {}
    with pytest.raises(ValueError, match="no request count"):
        bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_rounds_pool_rates_and_keep_the_worst_p99(bench):
    a = {"requests": 100, "seconds": 10.0, "p50_ms": 100.0, "p99_ms": 300.0, "error_kinds": {}}
    b = {"requests": 140, "seconds": 10.0, "p50_ms": 80.0, "p99_ms": 200.0, "error_kinds": {"read": 1}}
    p = bench.pooled([a, b])
    assert p["rps"] == pytest.approx(12.0) and p["p50_ms"] == pytest.approx(90.0) and p["p99_ms"] == 300.0
    assert p["errors"] == 1
