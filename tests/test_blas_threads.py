"""The note that training shares busy cores: when it is printed, and that a run prints it."""
import os

import pytest

from scratchnn.training import blas_threads
from scratchnn.training.blas_threads import busy_machine_note, crowding_note


@pytest.mark.parametrize("threads, load, cores, noted", [
    (2, 0.2, 2, False),   # an idle machine
    (2, 0.6, 2, False),   # the docs audit's: less than a core's worth, some of it this run's own start
    (2, 1.0, 2, True),    # one other busy process: one of our two threads shares its core
    (1, 8.0, 2, False),   # one thread never spins waiting for another
    (4, 2.0, 8, False),   # enough idle cores for every thread
    (8, 2.0, 8, True),
])
def test_a_note_when_our_threads_and_the_load_exceed_the_cores(threads, load, cores, noted):
    note = crowding_note(threads, load, cores)
    assert (note is not None) == noted
    if noted:
        assert f"load average {load:.1f} on {cores} cores" in note and "--threads 1" in note


def test_more_threads_than_cores_is_noted_whatever_the_load(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    note = busy_machine_note(64)
    assert note.startswith("Note: --threads 64 is more than the 2 cores this run may use: ")
    assert note.endswith("use --threads 2 or fewer.")
    monkeypatch.setattr("scratchnn.fast.threads.blas_thread_count", lambda: 8)  # a container's 2 of 8 cores
    assert busy_machine_note(0).startswith("Note: OpenBLAS's default of 8 threads is more than the 2 cores ")

    def unknown():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert busy_machine_note(3).startswith("Note: --threads 3 is more than the 2 cores")
    assert busy_machine_note(2) is None


def test_the_default_thread_count_is_the_blas_librarys(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    monkeypatch.setattr("scratchnn.fast.threads.blas_thread_count", lambda: 3)
    monkeypatch.setattr(blas_threads, "crowding_note", lambda threads, load, cores: (threads, load))
    assert busy_machine_note(0) == (3, 5.0)
    assert busy_machine_note(2) == (2, 5.0)


def test_no_note_where_the_load_is_unknown(monkeypatch):
    def unknown():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unknown)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert busy_machine_note(2) is None


def test_a_training_run_prints_the_note(monkeypatch, tmp_path, shared_dir):
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    monkeypatch.setattr(blas_threads, "busy_machine_note", lambda threads: f"Note: busy ({threads})")
    config = TrainConfig(csv=str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), hidden=[4], epochs=1,
                         batch_size=100, train_size=200, dev_size=100, threads=1, doctor="off")
    lines = []
    train_run(config, tmp_path / "run", log=lines.append, progress=False)
    assert "Note: busy (1)" in lines


def test_without_a_blas_library_threadpoolctl_can_set_the_count_is_the_cores_or_accelerates_own(monkeypatch):
    """Apple's Accelerate is invisible to threadpoolctl: its products take every core (or
    VECLIB_MAXIMUM_THREADS), so the elementwise passes' blocks should too, not 1."""
    import threadpoolctl

    from scratchnn.fast.threads import blas_controllable, blas_thread_count

    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [{"user_api": "openmp", "num_threads": 9}])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.delenv("VECLIB_MAXIMUM_THREADS", raising=False)
    assert not blas_controllable() and blas_thread_count() == 3
    monkeypatch.setenv("VECLIB_MAXIMUM_THREADS", "1")  # as the page's training process is started
    assert blas_thread_count() == 1
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [{"user_api": "blas", "num_threads": 2}])
    assert blas_controllable() and blas_thread_count() == 2  # OpenBLAS, as before


def test_threads_asked_where_they_cannot_be_set_get_a_note_and_the_default_gets_none(monkeypatch):
    import threadpoolctl

    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [])
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))  # busy, but Accelerate's threads are no OpenBLAS
    assert busy_machine_note(2).startswith("Note: --threads 2 does nothing here: no BLAS library whose threads can "
                                           "be set was found")
    assert "VECLIB_MAXIMUM_THREADS=2" in busy_machine_note(2)
    assert busy_machine_note(0) is None


def test_the_pages_training_process_starts_with_accelerates_thread_limit_too(monkeypatch):
    from scratchnn.web import worker_start

    seen = {}

    class Process:
        def start(self):
            seen.update({name: os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")})

    monkeypatch.setenv("VECLIB_MAXIMUM_THREADS", "8")
    worker_start.spawn_with_threads(Process(), 1)
    assert seen == {"OPENBLAS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}
    assert os.environ["VECLIB_MAXIMUM_THREADS"] == "8"  # the server's own setting comes back


def test_more_threads_than_cores_under_a_process_or_memory_limit_is_refused(monkeypatch):
    """The resource audit: --threads 8 on 2 cores under ulimit -v (or a low ulimit -u) hung in
    OpenBLAS, which waits for ever for threads it could not start, deaf to Ctrl+C and SIGTERM."""
    resource = pytest.importorskip("resource")
    from scratchnn.errors import ConfigError
    from scratchnn.host import resources as machine
    from scratchnn.training.blas_threads import check_threads_fit

    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    limits = {resource.RLIMIT_NPROC: 96_367, resource.RLIMIT_AS: resource.RLIM_INFINITY}
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limits[which], limits[which]))
    check_threads_fit(8)  # Linux's default process limit, no memory limit: slow (a note says so), not stuck
    limits[resource.RLIMIT_AS] = 400 * 2**20
    with pytest.raises(ConfigError, match=r"--threads 8 is more than the 2 cores this run may use, and this process "
                                          r"runs under ulimit -v: .* use --threads 2 or fewer$"):
        check_threads_fit(8)
    check_threads_fit(2)
    limits[resource.RLIMIT_AS], limits[resource.RLIMIT_NPROC] = resource.RLIM_INFINITY, 20
    with pytest.raises(ConfigError, match=r"under ulimit -u: .*; set threads = 1 in run/config.toml"):
        check_threads_fit(3, "set threads = 1 in run/config.toml")
