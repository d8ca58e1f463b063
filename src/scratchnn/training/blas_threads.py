"""How many threads a run's matrix products use: ``--threads``, and a note when the cores are busy.

NumPy's matrix products run on OpenBLAS threads, by default one per core. A product split over
more threads adds its terms in another order, so the last bits of the weights depend on the
thread count; one thread repeats a run on any machine.

OpenBLAS threads wait for each other by spinning, so when another program holds a core, every
product waits for the thread that shares it, spinning: on a 2-core machine beside a 2-process
job we measured a step ~70x slower. ``--threads 1`` (or fewer threads than idle cores) avoids it.
Training only notices the risk, from the load average, and says so; it never changes the thread
count, since that would change the weights.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager


@contextmanager
def blas_threads(threads: int):
    """Limit the BLAS library to ``threads`` threads inside the block (0: leave it as it is)."""
    if not threads:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def note_if_busy(threads: int, log: Callable[[str], None]) -> None:
    """Log ``busy_machine_note(threads)`` when there is one."""
    note = busy_machine_note(threads)
    if note:
        log(note)


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
