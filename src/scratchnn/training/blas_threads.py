"""How many threads a run's matrix products use: ``--threads``, and a note when the cores are busy.

NumPy's matrix products run on OpenBLAS threads, by default one per core. A product split over
more threads adds its terms in another order, so the last bits of the weights depend on the
thread count; one thread repeats a run whatever the core count (on the same kind of CPU: other
vector kernels add in another order too).

OpenBLAS threads wait for each other by spinning, so when another program holds a core, every
product waits for the thread that shares it, spinning: on a 2-core machine beside a 2-process
job we measured a step ~70x slower. ``--threads 1`` (or fewer threads than idle cores) avoids it.
More threads than cores is worse still: the seed preset took 36x as long with ``--threads 64``
as with 2 on a 2-core machine. Training only notices the risk (more threads than cores, or a
load average that leaves too few idle) and says so; it never changes the thread count, since
that would change the weights. Under a process or memory limit, though, more threads than cores
is refused (``check_threads_fit``): OpenBLAS that cannot start them hangs.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager

from ..errors import ConfigError


@contextmanager
def blas_threads(threads: int):
    """Limit the BLAS library to ``threads`` threads inside the block (0: leave it as it is)."""
    if not threads:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


FEW_PROCESSES = 4096  # a process limit set on purpose (a container's): Linux's default is tens of thousands


def check_threads_fit(threads: int, remedy: str = "") -> None:
    """A ConfigError for ``threads`` BLAS threads above the cores this run may use where this
    process runs under a limit that may not hold them (``ulimit -u``, ``ulimit -v``): OpenBLAS that
    cannot start all its threads waits for them for ever, spinning and deaf to Ctrl+C and SIGTERM
    (the resource audit: --threads 8 on 2 cores under ulimit -v 400 MB, ended by kill -9 after
    ten minutes). Without such a limit more threads than cores is slow, not stuck: a note says so.
    ``remedy``: what to do, default "use --threads N or fewer"."""
    from ..host.resources import usable_cores

    cores = usable_cores()
    if threads <= cores:
        return
    try:
        import resource
    except ImportError:  # Windows: no such limits
        return

    def soft(name: str) -> int:
        return resource.getrlimit(getattr(resource, name))[0] if hasattr(resource, name) else resource.RLIM_INFINITY

    processes, memory = soft("RLIMIT_NPROC"), soft("RLIMIT_AS")
    limited = [name for name, held in (("ulimit -u", processes != resource.RLIM_INFINITY and processes < FEW_PROCESSES),
                                       ("ulimit -v", memory != resource.RLIM_INFINITY)) if held]
    if limited:
        raise ConfigError(f"--threads {threads} is more than the {cores} core{'s' * (cores > 1)} this run may use, "
                          f"and this process runs under {' and '.join(limited)}: OpenBLAS that cannot start all "
                          f"its threads waits for them for ever; {remedy or f'use --threads {cores} or fewer'}")


def note_if_busy(threads: int, log: Callable[[str], None]) -> None:
    """Log ``busy_machine_note(threads)`` when there is one."""
    note = busy_machine_note(threads)
    if note:
        log(note)


def busy_machine_note(threads: int) -> str | None:
    """``crowding_note`` for this machine now, for a run asking ``threads`` BLAS threads (0: the
    library's default); only the note of more threads than cores where the load average is
    unknown (Windows); only ``uncontrolled_note`` where no BLAS library's threads can be set."""
    from ..fast.threads import blas_controllable, blas_thread_count
    from ..host.resources import usable_cores

    if not blas_controllable():  # nothing known of the library's threads (Accelerate): they may not spin
        return uncontrolled_note(threads) if threads else None
    asked = threads
    if threads == 0:
        threads = blas_thread_count()
    cores = usable_cores()
    if threads > cores:
        return more_threads_than_cores_note(threads, cores, asked=bool(asked))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    return crowding_note(threads, load, cores)


def uncontrolled_note(threads: int) -> str:
    """The note for ``--threads`` where threadpoolctl finds no BLAS library it can set.

    >>> print(uncontrolled_note(2))
    Note: --threads 2 does nothing here: no BLAS library whose threads can be set was found (NumPy's may \
be Apple's Accelerate); set its own variable before starting instead (VECLIB_MAXIMUM_THREADS=2 for \
Accelerate).
    """
    return (f"Note: --threads {threads} does nothing here: no BLAS library whose threads can be set was found "
            "(NumPy's may be Apple's Accelerate); set its own variable before starting instead "
            f"(VECLIB_MAXIMUM_THREADS={threads} for Accelerate).")


def more_threads_than_cores_note(threads: int, cores: int, asked: bool = True) -> str:
    """The note for ``threads`` BLAS threads on fewer ``cores`` (``asked``: by --threads, else by
    the library's default, e.g. a container allowed fewer cores than the machine has).

    >>> print(more_threads_than_cores_note(64, 2))
    Note: --threads 64 is more than the 2 cores this run may use: the matrix products' threads take \
turns on them, each spinning while it waits for the others, which makes training many times slower \
(the seed preset took 36x as long with 64 threads as with 2, on 2 cores); use --threads 2 or fewer.
    """
    which = f"--threads {threads} is" if asked else f"OpenBLAS's default of {threads} threads is"
    return (f"Note: {which} more than the {cores} core{'s' * (cores > 1)} this run may use: the matrix products' "
            "threads take turns on them, each spinning while it waits for the others, which makes training many "
            f"times slower (the seed preset took 36x as long with 64 threads as with 2, on 2 cores); use --threads "
            f"{cores} or fewer.")


def crowding_note(threads: int, load: float, cores: int) -> str | None:
    """The note for ``threads`` BLAS threads on ``cores`` cores with a 1-minute load average
    ``load`` (runnable processes, ours included), or None when the threads fit: busy is other
    work taking a whole core of those the threads need (a load of 0.6 on 2 cores, part of it
    this run's own start, was called busy when half a core was the margin).

    >>> crowding_note(2, 0.6, 2) is None, crowding_note(2, 1.0, 2) is None
    (True, False)
    >>> print(crowding_note(2, 2.4, 2))
    Note: this machine is busy (load average 2.4 on 2 cores) and the matrix products use 2 threads; \
they spin while they wait for a shared core, which can make training many times slower. If epochs \
crawl, stop and start again with --threads 1.
    """
    if threads <= 1 or load + threads < cores + 1:
        return None
    return (f"Note: this machine is busy (load average {load:.1f} on {cores} cores) and the matrix products "
            f"use {threads} threads; they spin while they wait for a shared core, which can make training "
            f"many times slower. If epochs crawl, stop and start again with --threads 1.")
