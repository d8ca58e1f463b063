"""Where a sweep's trials run: a Dask ``LocalCluster`` of one-thread worker processes, or a cluster
the user started (``dask scheduler`` + ``dask worker`` on any machines).

The study's storage is registered on the cluster's scheduler (Optuna's ``DaskStorage``), so
every worker reports to one study over the Dask connection, with no shared disk or database.
"""
from __future__ import annotations

import importlib
import logging
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
def dask_client(workers: int, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a LocalCluster of ``workers``
    processes with one thread each, started here and stopped on the way out."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({error}); start one with "
                              "'dask scheduler' and workers with 'dask worker ADDRESS'") from None
        with client:
            if not client.scheduler_info().get("workers"):
                client.wait_for_workers(1, timeout=60)
            yield client
        return
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    # NOTE: dashboard on any free port (the scheduler serves HTTP anyway; 8787 may be taken by
    # another sweep); memory_limit=0: no per-worker memory cap; Dask's default would pause a trial's worker
    # at a fraction of the machine's memory meant for data frames, not for one training run
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def cluster_storage(client, storage):
    """``storage`` (a URL or a storage object) held by the cluster's scheduler for every worker."""
    from .study import ClusterStorage

    return ClusterStorage(storage=storage, client=client)
