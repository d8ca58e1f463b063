"""Starting a page run's worker process: the BLAS threads it inherits, and what stops it starting.

The worker is spawned (a fresh interpreter) with its BLAS thread variables set in the environment
it inherits. Spawning needs a process (``ulimit -u``), semaphores in /dev/shm and file
descriptors (``ulimit -n``); a server short of one answered a bare 500 and left an empty run
folder at every try (the resource audit). ``WorkerNotStarted`` says which, as a 503.
"""
from __future__ import annotations

import errno
import os
import threading

from ..errors import ScratchnnError

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_environment = threading.Lock()  # spawning reads os.environ: one spawn at a time changes it
SHORT_OF = {errno.EAGAIN: "no process could be started (a process limit: ulimit -u)",
            errno.ENOSPC: "no semaphore could be made (/dev/shm is full)",
            errno.EMFILE: "no file could be opened (too many open: ulimit -n)",
            errno.ENFILE: "no file could be opened (the system's limit)",
            errno.ENOMEM: "the memory to start a process is not there"}


class WorkerNotStarted(ScratchnnError):
    """The server could not start a run's worker process just now (HTTP 503)."""


def not_started(error: OSError | RuntimeError) -> WorkerNotStarted:
    """The error a page is told when its run's worker could not be started.

    >>> str(not_started(BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")))
    'the server could not start the run: no process could be started (a process limit: ulimit -u); try again later'
    """
    reason = SHORT_OF.get(getattr(error, "errno", None)) or " ".join(str(error).split())[:120] or type(error).__name__
    return WorkerNotStarted(f"the server could not start the run: {reason}; try again later")


def spawn_with_threads(process, threads: int) -> None:
    """Start ``process`` with the BLAS thread variables set in the environment it inherits."""
    with _environment:
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
        try:
            process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
