"""Every core for the elementwise passes: the work cut into blocks of rows, one block per thread.

NumPy runs a matrix product on every core (BLAS threads it) but an elementwise pass (a
subtraction, a sum, a strided copy) on one. In a CNN with batch norm those passes are a third
of a training step, so on a 2-core machine the second core idles for a third of the time.
A NumPy ufunc releases the GIL while it loops, so Python threads each given their own block
of rows really do run at once: ``Blocks.run(fn, rows)`` calls fn(start, stop) for ``workers``
contiguous ranges of rows, one on the calling thread and the rest on our worker threads.

NOTE: only for passes whose blocks write disjoint memory; a sum over rows is computed per block
and the partial sums added after, so its last bits differ from the one-pass sum (float rounding,
as with BLAS threads).
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable

from ..host.resources import usable_cores

# Below this many numbers handing blocks to threads costs more than it saves. Forward + backward on
# 1 against 2 threads (2-core Xeon): ReLU at 200,704 numbers 146 / 288 µs, 401,408 374 / 402,
# 802,816 784 / 611; batch norm 640 / 1040, 1396 / 1512, 2830 / 2370; 2x2 max pooling 354 / 512,
# 734 / 791, 1413 / 1236. At 2^16 the seed's (9,000, 10) passes went to the threads: its run took
# 2.0 s instead of 1.83; cnn and cnn-best epochs did not move (their passes are larger).
MIN_FLOATS = 1 << 19
# Several passes over one block run chunk by chunk, each chunk small enough to stay in cache
# between the passes: four passes over a (784, 4096) float32 array took 15.3 ms as whole-array
# calls and 7.1 ms over chunks of 256 KB (a 2-core EPYC, 512 KB of L2 per core). With OpenBLAS's
# idle threads asleep (host/openblas_idle.py) bigger chunks won: BlockBatchNorm2d forward + backward,
# batch 128, 32 channels at 28x28 / 64 at 14x14: 13.9 / 7.2 ms (256 KB chunks), 12.9 / 6.3
# (512 KB), 11.3 / 5.9 (1 MB), 11.0 / 5.2 (2 MB), per-chunk NumPy calls costing less.
CHUNK_FLOATS = 1 << 19

_inboxes: list[queue.SimpleQueue] = []  # one per worker thread (see _workers)
_lock = threading.Lock()
_local = threading.local()  # .worker: True on our worker threads
_controller = None  # threadpoolctl's handle on the loaded BLAS, found once (a search takes ~ms)
_limit_lock = threading.Lock()
_limiter = None  # the one-thread limit while any one_blas_thread context is open
_limit_users = 0  # the open contexts


def blas_thread_count() -> int:
    """The number of threads the BLAS library in use runs a product on. Where threadpoolctl finds
    none it can read (Accelerate, on macOS), that library's own limit VECLIB_MAXIMUM_THREADS if
    set, else the cores this process may use: what such a library takes by default."""
    counts = _blas_thread_counts()
    if counts:
        return max(1, min(counts))
    veclib = os.environ.get("VECLIB_MAXIMUM_THREADS", "").strip()
    return int(veclib) if veclib.isdigit() and int(veclib) > 0 else usable_cores()


def blas_controllable() -> bool:
    """Whether threadpoolctl finds a BLAS library whose thread count it can set (``--threads``)."""
    return bool(_blas_thread_counts())


def _blas_thread_counts() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info.get("num_threads", 1) for info in threadpool_info() if info.get("user_api") == "blas"]


@contextlib.contextmanager
def one_blas_thread():
    """A context in which BLAS computes each product on the calling thread only, for products our
    own threads already run side by side (BLAS threads on top would fight them for the cores).

    The BLAS setting is process-wide, so the contexts of several threads (two requests to a web
    server) share one limit: the first to enter sets it, the last to leave restores the setting
    from before. Each restoring its own would let the first to leave lift the limit under the
    other, which would then "restore" 1 thread for good.
    """
    global _controller, _limiter, _limit_users
    with _limit_lock:
        if _limit_users == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            _limiter = _controller.limit(limits=1, user_api="blas")
            _release_blas_control()
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                _limiter.restore_original_limits()
                _limiter = None
                _release_blas_control()


def _release_blas_control() -> None:
    """Let another thread set OpenBLAS's thread count next. threadpoolctl >= 3.6 lets only the
    thread that last set it set it again (until that thread leaves a ``with`` of its own); the
    shared limit above is set by the first thread in and restored by the last out, often another."""
    from threadpoolctl import OpenBLASController

    release = getattr(OpenBLASController, "clear_controlling_thread", None)  # only the caller's own control
    if release is not None:
        release()


def openblas_spins() -> bool:
    """Whether OpenBLAS was loaded before scratchnn could tell its idle threads to sleep (see
    openblas_idle): they then spin on the cores our threads need for ~0.1 s after each product."""
    from ..host import openblas_idle

    if not openblas_idle.LOADED_BEFORE:
        return False
    from threadpoolctl import threadpool_info

    return any(info.get("internal_api") == "openblas" for info in threadpool_info())


def split(rows: int, parts: int) -> list[tuple[int, int]]:
    """``rows`` cut into ``parts`` (at most ``rows``) contiguous (start, stop) ranges of near-equal size.

    >>> split(7, 2)
    [(0, 4), (4, 7)]
    """
    parts = max(1, min(parts, rows))
    bounds = [rows * k // parts for k in range(parts + 1)]
    bounds = [rows - b for b in reversed(bounds)]  # the larger blocks first
    return list(zip(bounds[:-1], bounds[1:]))


def chunks(start: int, stop: int, row_floats: int, chunk_floats: int = CHUNK_FLOATS):
    """Rows start..stop as (a, b) ranges of about ``chunk_floats`` numbers (rows of ``row_floats``).

    >>> list(chunks(0, 5, 3, chunk_floats=6))
    [(0, 2), (2, 4), (4, 5)]
    """
    step = max(1, chunk_floats // max(1, row_floats))
    for a in range(start, stop, step):
        yield a, min(a + step, stop)


class Blocks:
    """Runs a pass over rows on ``workers`` threads (1: on the calling thread only).

    ``min_floats``: passes over fewer numbers run in one block (tests set 0 to split every pass).
    """

    def __init__(self, workers: int | None = None, min_floats: int | None = None):
        self.workers = max(1, int(workers if workers is not None else os.cpu_count() or 1))
        self.min_floats = MIN_FLOATS if min_floats is None else min_floats

    def ranges(self, rows: int, floats: int) -> list[tuple[int, int]]:
        """The blocks ``run`` would use for ``rows`` rows holding ``floats`` numbers in all."""
        return split(rows, self.workers if floats >= self.min_floats else 1)

    def run(self, fn: Callable[[int, int], object], rows: int, floats: int) -> list:
        """[fn(start, stop) for each block], run at once; the first exception is raised."""
        return _at_once(fn, self.ranges(rows, floats))

    def deal(self, fn: Callable[[int, list], object], pieces: list) -> list:
        """[fn(k, its pieces) for each worker k], run at once, each worker given a contiguous run
        of ``pieces`` (e.g. chunks of rows: a pipeline of several passes and products per chunk,
        its arrays still in cache between them)."""
        shares = [pieces[a:b] for a, b in split(len(pieces), self.workers)]
        return _at_once(fn, list(enumerate(shares)))

    def __repr__(self):
        return f"Blocks(workers={self.workers})"


def _at_once(fn: Callable, calls: list[tuple]) -> list:
    """[fn(*args) for args in calls]: the first on the calling thread, the rest on our workers;
    the first exception (in call order) is raised once every call has stopped.

    A call made on a worker (a block that itself runs blocks) runs its calls one after another:
    a worker never waits on workers.
    """
    if len(calls) == 1 or getattr(_local, "worker", False):
        return [fn(*args) for args in calls]
    try:
        inboxes = _workers(len(calls) - 1)
    except RuntimeError:  # "can't start new thread" (ulimit -u, ulimit -v): the same blocks, one after another
        return [fn(*args) for args in calls]  # (a traceback ended the run: the resource audit)
    outbox = queue.SimpleQueue()  # this call's own: callers on other threads never see its results
    for k, args in enumerate(calls[1:], start=1):
        inboxes[k - 1].put((fn, args, k, outbox))
    outcomes = [_outcome(fn, calls[0])]
    outcomes += [outcome for _, outcome in sorted(outbox.get() for _ in calls[1:])]
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def _outcome(fn: Callable, args: tuple) -> tuple[bool, object]:
    """(True, fn(*args)), or (False, the exception it raised)."""
    try:
        return True, fn(*args)
    except BaseException as error:  # handed to the caller, which raises it
        return False, error


def _work(inbox: queue.SimpleQueue) -> None:
    """A worker's life: run what arrives in its inbox, post (index, outcome) to the call's outbox."""
    _local.worker = True
    while True:
        fn, args, k, outbox = inbox.get()
        outcome = _outcome(fn, args)
        del fn, args  # a pass's closure holds its work arrays: not kept alive until the next call
        outbox.put((k, outcome))
        del outcome, outbox


def _workers(count: int) -> list[queue.SimpleQueue]:
    """The inboxes of at least ``count`` worker threads (started when first needed, then kept).

    NOTE: a worker waits on its own SimpleQueue, not a ThreadPoolExecutor's futures: a 2-block
    pass over 2M floats took 523-544 µs through the executor and 453-458 µs through the queues
    (the same process, alternating; 2-core VM); cnn-best runs ~30 such passes a batch.
    """
    with _lock:
        while len(_inboxes) < count:
            inbox = queue.SimpleQueue()
            name = f"scratchnn-blocks-{len(_inboxes)}"
            threading.Thread(target=_work, args=(inbox,), daemon=True, name=name).start()
            _inboxes.append(inbox)
        return _inboxes[:count]


def _forget_workers() -> None:
    """A forked child has none of its parent's threads: it starts workers of its own."""
    global _lock
    _inboxes.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)
