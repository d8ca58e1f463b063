"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes, and a sweep
sent to it with ``--scheduler``. Part of the default (CI) run: it takes well under a minute."""
import contextlib
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


@contextlib.contextmanager
def cluster(folder: Path, workers: int = 2, worker_args: tuple = ()):
    """(address, [scheduler, worker...] processes) of ``dask scheduler`` and ``workers`` ``dask worker``
    processes on 127.0.0.1, started in ``folder``; each stopped by its PID afterwards."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = []
    try:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(workers):
            started.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard",
                 *worker_args], env=env(), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address, started
    finally:
        for process in reversed(started):  # workers, then the scheduler, each by its PID
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc (Linux)")
def test_trials_run_in_the_workers_of_an_existing_cluster(shared_dir, tmp_path):
    digits = write_digits(shared_dir, tmp_path / "digits.csv")
    (tmp_path / "space.toml").write_text(SPACE)
    with cluster(tmp_path) as (address, started):
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


# A worker "on another machine": each trial's run folder leaves the sweep's disk once the trial is done
# (to the worker's own), as the run folders of workers without a shared disk never reach the client's.
ELSEWHERE = """
import shutil
from pathlib import Path

import scratchnn.tune.trial as trial

trained_here = getattr(trial.run_trial, "trained_here", trial.run_trial)  # Dask may import a preload twice


def run_trial(storage, study_name, trial_id, config, trial_dir, stop_event=None):
    outcome = trained_here(storage, study_name, trial_id, config, trial_dir, stop_event)
    shutil.move(trial_dir, Path({away!r}) / Path(trial_dir).name)
    return outcome


run_trial.trained_here = trained_here
trial.run_trial = run_trial
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc (Linux)")
def test_workers_without_the_sweeps_disk_still_give_best_toml_and_lose_nothing(shared_dir, tmp_path):
    """The sweep audit: with workers on other machines (no shared disk), best.toml was read from a
    trial folder that was not there, and the error handler then deleted the sweep folder, study too."""
    digits = write_digits(shared_dir, tmp_path / "digits.csv")
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "away").mkdir()
    (tmp_path / "elsewhere.py").write_text(ELSEWHERE.format(away=str(tmp_path / "away")))
    with cluster(tmp_path, workers=1, worker_args=("--preload", str(tmp_path / "elsewhere.py"))) as (address, _):
        done = scratchnn("sweep", "--space", tmp_path / "space.toml", "--csv", digits, *SMALL, "--trials", 2,
                         "--scheduler", address, "--out", tmp_path / "sweep", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "run folder is on its worker's disk" in done.stdout, done.stdout
        trials = study_trials(tmp_path / "sweep")
        assert len(trials) == 2 and not any((tmp_path / "sweep" / "trials").glob("*/config.toml"))
        best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, -t.number))
        moved = (tmp_path / "away" / f"{best.number:04d}" / "config.toml").read_text()
        assert (tmp_path / "sweep" / "best.toml").read_text() == moved  # the trial's config, as its worker saved it


def test_a_scheduler_lost_mid_sweep_is_one_line_that_says_what_to_do(shared_dir, tmp_path):
    """The sweep audit: killing the scheduler printed Dask's own "distributed.client - ERROR" line
    before the sweep's one line (finished trials kept, how to resume)."""
    import signal

    digits = write_digits(shared_dir, tmp_path / "digits.csv")
    (tmp_path / "space.toml").write_text(SPACE)
    with cluster(tmp_path, workers=1) as (address, started):
        sweep = subprocess.Popen([sys.executable, "-m", "scratchnn", "sweep", "--space", tmp_path / "space.toml",
                                  "--csv", digits, "--hidden", "32", "--epochs", "40", "--trials", "3",
                                  "--scheduler", address, "--out", tmp_path / "sweep"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        try:
            deadline = time.monotonic() + 120
            while not list((tmp_path / "sweep").glob("trials/*/metrics.csv")) and time.monotonic() < deadline:
                time.sleep(0.2)
            started[0].send_signal(signal.SIGKILL)  # the scheduler
            _, stderr = sweep.communicate(timeout=120)
        finally:
            if sweep.poll() is None:
                sweep.kill()
    assert sweep.returncode == 1, stderr
    assert stderr.strip().splitlines() == [line for line in stderr.strip().splitlines() if "lost the Dask cluster" in
                                           line], stderr
    assert "finished trials are kept" in stderr and (tmp_path / "sweep" / "study.log").is_file()
