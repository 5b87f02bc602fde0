"""A CPU training process keeps the pages it frees: glibc's thresholds are raised once, where glibc is there."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.slow  # starts a Python process, so the setting does not leak into the test run
def test_training_raises_the_malloc_thresholds_once_on_glibc():
    code = """
import ctypes, torch
from n2n_hub.base import allocator
from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.training import TrainConfig, train
assert allocator._applied is None  # nothing is changed by importing
flow = ConditionalINN(4, ConditionSpec((3,), "vector"), n_blocks=2, hidden=8)
train(flow, torch.randn(64, 3), torch.randn(64, 4), TrainConfig(steps=3, batch_size=16, progress=False))
print(allocator._applied, allocator.keep_freed_memory())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    glibc = platform.libc_ver()[0] == "glibc"
    assert out.stdout.split() == ([str(glibc)] * 2)
