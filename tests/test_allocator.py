"""A CPU training process keeps the pages it frees: glibc's thresholds are raised once, where glibc is there.

What a step gains: a block freed and allocated again, even one above glibc's 32 MiB cap on the
mmap threshold, comes back without faulting its pages in again.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.slow  # starts a Python process, so the setting does not leak into the test run
def test_training_raises_the_malloc_thresholds_once_on_glibc():
    code = """
import ctypes, resource, torch
from n2n_hub.base import allocator
from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.training import TrainConfig, train
assert allocator._applied is None  # nothing is changed by importing
flow = ConditionalINN(4, ConditionSpec((3,), "vector"), n_blocks=2, hidden=8)
train(flow, torch.randn(64, 3), torch.randn(64, 4), TrainConfig(steps=3, batch_size=16, progress=False))
print(allocator._applied, allocator.keep_freed_memory())

def refaults(mib):  # in steady state, as step after step reuses its blocks
    torch.ones(mib * 2**18)  # allocated, written and freed
    counts = []
    for _ in range(3):  # the heap's layout after training can put one reuse on pages not yet touched
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(mib * 2**18)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(counts)
print(refaults(8), refaults(48))  # one gradient of a 1024-wide layer, the condition projection's of Net2Net size
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    glibc = platform.libc_ver()[0] == "glibc"
    applied, again, small, large = out.stdout.split()
    assert [applied, again] == [str(glibc)] * 2
    if glibc:  # 4 KiB pages: 2048 and 12,288 faults for blocks mapped afresh
        assert int(small) < 200 and int(large) < 200, (small, large)
