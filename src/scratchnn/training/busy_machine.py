"""A note at the start of training when other work already keeps the cores busy.

NumPy's matrix products run on OpenBLAS threads, by default one per core. OpenBLAS threads wait
for each other by spinning, so when another program holds a core, every product waits for the
thread that shares it, spinning: on a 2-core machine beside a 2-process job we measured a step
~70x slower. ``--threads 1`` (or fewer threads than idle cores) avoids it; this module only
notices the risk, from the load average, and says so. It never changes the thread count: that
would change the last bits of the weights (see run.blas_threads).
"""
from __future__ import annotations

import os


def crowding_note(threads: int, load: float, cores: int) -> str | None:
    """The note for ``threads`` BLAS threads on ``cores`` cores with a 1-minute load average
    ``load`` (runnable processes, ours included), or None when the threads fit.

    >>> crowding_note(2, 0.3, 2) is None
    True
    >>> print(crowding_note(2, 2.4, 2))
    Note: this machine is busy (load average 2.4 on 2 cores) and the matrix products use 2 threads; \
they spin while they wait for a shared core, which can make training many times slower. If epochs \
crawl, stop and start again with --threads 1.
    """
    if threads <= 1 or load + threads <= cores + 0.5:
        return None
    return (f"Note: this machine is busy (load average {load:.1f} on {cores} cores) and the matrix products "
            f"use {threads} threads; they spin while they wait for a shared core, which can make training "
            f"many times slower. If epochs crawl, stop and start again with --threads 1.")


def busy_machine_note(threads: int) -> str | None:
    """``crowding_note`` for this machine now, for a run asking ``threads`` BLAS threads (0: the
    library's default); None where the load average is unknown (Windows)."""
    if threads == 0:
        from ..fast.threads import blas_thread_count

        threads = blas_thread_count()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return crowding_note(threads, load, cores)
