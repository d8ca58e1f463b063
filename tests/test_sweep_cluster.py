"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes, and a sweep
sent to it with ``--scheduler``. Part of the default (CI) run: it takes well under a minute."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep_support import SMALL, SPACE, env, scratchnn, study_trials, write_digits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parent_of(pid: int) -> int:
    """The parent PID of a live process (Linux /proc): a worker's trial runs in the nanny's child."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc (Linux)")
def test_trials_run_in_the_workers_of_an_existing_cluster(shared_dir, tmp_path):
    digits = write_digits(shared_dir, tmp_path / "digits.csv")
    (tmp_path / "space.toml").write_text(SPACE)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = []
    try:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(2):
            started.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"],
                env=env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        done = scratchnn("sweep", "--space", tmp_path / "space.toml", "--csv", digits, *SMALL, "--trials", 4,
                         "--scheduler", address, "--out", tmp_path / "sweep", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        trials = study_trials(tmp_path / "sweep")
        assert len(trials) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        workers = {p.pid for p in started[1:]}
        pids = {t.user_attrs["pid"] for t in trials}
        assert os.getpid() not in pids
        assert all(parent_of(pid) in workers for pid in pids), (pids, workers)  # the workers' own processes
        assert (tmp_path / "sweep" / "best.toml").is_file()
    finally:
        for process in reversed(started):  # workers, then the scheduler, each by its PID
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
