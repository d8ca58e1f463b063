"""Keeping freed memory for the next batch (glibc only): fewer page faults while training.

A training step allocates the same big arrays every time: a CNN's activations are megabytes each
(the first layer's output for a batch of 128 digits is 11 MB). glibc gives blocks that large back
to the operating system when they are freed (they come from mmap, or the heap is trimmed), so the
next step writes to fresh pages and the kernel must fault in and zero every 4 KB page again: for
the benchmark CNN ~700 faults and ~4 ms of a ~60 ms step. ``keep_freed_memory`` raises glibc's
two thresholds (``mallopt``): blocks up to 32 MB come from the heap (M_MMAP_THRESHOLD, its
maximum), and up to 512 MB of freed heap is kept for reuse rather than trimmed (M_TRIM_THRESHOLD).

It is process-wide and stays set: the process then holds on to memory it has used once (its peak
training footprint) instead of handing it back between steps. Elsewhere (macOS, Windows, musl)
it does nothing; the numbers a model computes are the same either way.
"""
from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 512 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep big freed blocks for reuse; True if it took both settings. Idempotent."""
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # NOTE: both or neither: setting one turns off glibc's own adjustment of the other, and with
    # only the trim threshold raised every block over 128 kB is mmapped (60x the page faults)
    _done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _done
