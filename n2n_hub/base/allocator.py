"""Let a training process keep the memory it frees, instead of handing it back to the OS every step.

A CPU training step allocates and frees the same few hundred tensors every time. glibc's
malloc serves blocks above its mmap threshold with a fresh ``mmap`` and returns them with
``munmap``, and gives the top of its heap back past the trim threshold, so each step
faults in, zeroes and releases the same pages again: thousands of page faults per step
for the default text pair. Raising both thresholds once makes the second step reuse the
first step's memory. glibc caps the mmap threshold at 32 MiB, so blocks above that (the
condition projection's gradient of a Net2Net-sized flow is 44 MB: 10,700 page faults a step)
would still be mapped afresh; turning direct mmaps off serves them from the heap as well.
The cost is that the process keeps its peak footprint until it ends, which is what a
training run does anyway.

This is a process-wide setting, so only training calls it; on anything but glibc it does
nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit); M_MMAP_MAX = 0 takes
# the larger blocks to the heap too (a thread's arena that cannot hold one hands it to the main heap).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2**31 - 1

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and stop direct mmaps, for this process (once); True where it took effect."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others have no mallopt
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _applied = all([mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                            mallopt(M_MMAP_MAX, 0)])
    return _applied


__all__ = ["keep_freed_memory"]
