"""Where a sweep's trials run: a Dask ``LocalCluster`` of one-thread worker processes, or a cluster
the user started (``dask scheduler`` + ``dask worker`` on any machines).

The study's storage is registered on the cluster's scheduler (Optuna's ``DaskStorage``), so
every worker reports to one study over the Dask connection, with no shared disk or database.
"""
from __future__ import annotations

import importlib
import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ConfigError

TUNE_MODULES = ("optuna", "optuna_integration", "distributed", "threadpoolctl")
INSTALL_HINT = "install the tune extra: pip install 'scratchnn[tune]' (from a checkout: pip install '.[tune]')"


def require_tune_extra(command: str = "this command") -> None:
    """A ConfigError that says how to install what is missing (checked before anything starts)."""
    missing = []
    for name in TUNE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"{command} needs {', '.join(missing)}; {INSTALL_HINT}")


@contextmanager
def dask_client(workers: int, scheduler: str | None = None, log=print) -> Iterator:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a LocalCluster of ``workers``
    processes with one thread each, started here and stopped on the way out."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = _connect(Client, check_scheduler_address(scheduler))
        with _client_errors_left_to_the_sweep(), client:  # silent until the client has closed too
            if not client.scheduler_info().get("workers"):
                log(f"Waiting up to {WORKER_WAIT} s for a worker to join {scheduler} ...")
                try:
                    client.wait_for_workers(1, timeout=WORKER_WAIT)
                except TimeoutError:
                    raise ConfigError(f"the Dask scheduler at {scheduler} has no workers after {WORKER_WAIT} s; "
                                      f"start some with 'dask worker {scheduler} --nthreads 1', one per core") from None
            yield client
        return
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    # NOTE: dashboard on any free port (the scheduler serves HTTP anyway; 8787 may be taken by
    # another sweep); memory_limit=0: no per-worker memory cap; Dask's default would pause a trial's worker
    # at a fraction of the machine's memory meant for data frames, not for one training run;
    # workers' logs below CRITICAL silenced: a trial's error reaches the sweep as its exception, and
    # at Ctrl+C a worker whose heartbeat met the closing scheduler printed a traceback (an ERROR)
    try:
        with _sigint_ignored_by_children():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                                   dashboard_address=":0", silence_logs=logging.CRITICAL)
    except (OSError, RuntimeError) as error:  # "Nanny failed to start": a 100-line traceback (the resource audit)
        cause = error.__cause__ or error.__context__ or error
        raise ConfigError(f"the sweep's {workers} worker process(es) could not start ({type(cause).__name__}: "
                          f"{' '.join(str(cause).split())[:160]}); fewer --workers, or more processes, files or "
                          "/dev/shm space (ulimit -u, ulimit -n) may let them") from None
    with cluster, Client(cluster) as client:
        yield client


@contextmanager
def _client_errors_left_to_the_sweep() -> Iterator[None]:
    """Dask's client logs a lost scheduler as an ERROR line of its own ("distributed.client - ERROR
    - ..."), before the sweep says the same in one line with what to do (the sweep audit)."""
    logger = logging.getLogger("distributed.client")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Start processes that ignore SIGINT: Ctrl+C in a terminal reaches the whole process group,
    and each Dask worker printed a KeyboardInterrupt traceback of its own. The sweep (this process)
    still stops on it, and shuts its workers down as it leaves."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the processes started now
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


WORKER_WAIT = 60  # seconds a cluster without workers is waited for
CONNECT_WAIT = 20  # seconds: beyond Client's own 15 s, a port that accepts and never answers (the dashboard's)
ADDRESS = re.compile(r"(?:([a-z]+)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})")


def check_scheduler_address(address: str) -> str:
    """``tcp://HOST:PORT`` (or any protocol Dask has: tls, ws, wss, ucx...; or ``HOST:PORT``) as
    ``dask scheduler`` prints it; a ConfigError naming the usual slip otherwise (the dashboard's
    http:// address)."""
    from distributed.comm.registry import backends

    found = ADDRESS.fullmatch(address.strip())
    if address.startswith(("http://", "https://")):
        raise ConfigError(f"--scheduler {address} is a web address (the scheduler's dashboard, port 8787 by default); "
                          "give the address 'dask scheduler' prints, tcp://HOST:8786")
    if found and found.group(1) and found.group(1) not in backends:
        raise ConfigError(f"--scheduler {address}: Dask has no protocol {found.group(1)!r} here; it has "
                          f"{', '.join(sorted(backends))} (tcp://HOST:8786, as 'dask scheduler' prints it)")
    if not found or not 0 < int(found.group(3)) < 65536:
        raise ConfigError(f"--scheduler {address!r} is not a scheduler address; give tcp://HOST:PORT, as "
                          "'dask scheduler' prints it (tcp://127.0.0.1:8786)")
    return address.strip()


def _connect(client_type, address: str):
    """A Client of the scheduler at ``address``, or a one-line ConfigError: unreachable, or no
    answer in CONNECT_WAIT seconds (a port that is open but not a scheduler's hung for minutes)."""
    outcome: dict = {}

    def connect() -> None:
        try:
            outcome["client"] = client_type(address, timeout="15s")
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="scratchnn-dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_WAIT)
    if thread.is_alive():
        raise ConfigError(f"no Dask scheduler answered at {address} in {CONNECT_WAIT} s: is it the dashboard's port "
                          "(8787)? 'dask scheduler' prints the scheduler's (tcp://...:8786)")
    error = outcome.get("error")
    if isinstance(error, (OSError, TimeoutError, ValueError)):
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({error}); start one with "
                          "'dask scheduler' and workers with 'dask worker ADDRESS --nthreads 1', one per "
                          "core") from None
    if error is not None:
        raise error
    return outcome["client"]


def cluster_storage(client, storage):
    """``storage`` (a URL or a storage object) held by the cluster's scheduler for every worker."""
    from .study import ClusterStorage

    return ClusterStorage(storage=storage, client=client)
