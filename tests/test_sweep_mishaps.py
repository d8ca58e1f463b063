"""What went wrong for an engineer tuning with ``scratchnn sweep`` (an audit): a worker lost mid-trial,
a second --resume of a running sweep, a start that failed half-way, scheduler addresses that are
not one, a database shared by sweeps, options whose search compares nothing."""
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from ci_guard import require_module

require_module("optuna", "tune", "the sweep tests")

from scratchnn.errors import ConfigError  # noqa: E402
from scratchnn.tune import parallel  # noqa: E402
from scratchnn.tune.space import parse_space  # noqa: E402
from scratchnn.tune.study import LOCK_FILE, absolute_sqlite, sweep_lock  # noqa: E402

from sweep_support import REFUSED_QUICKLY, SMALL, SPACE, scratchnn, write_digits  # noqa: E402


def test_a_running_sweeps_folder_is_refused_to_a_second_one_and_a_killed_ones_lock_is_taken_over(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another sweep, running
    try:
        (tmp_path / LOCK_FILE).write_text(f"{other.pid} {socket.gethostname()}\n")
        with pytest.raises(ConfigError, match=rf"is in use by a running sweep \(pid {other.pid} on "):
            with sweep_lock(tmp_path):
                pass
    finally:
        other.kill()
        other.wait()
    with sweep_lock(tmp_path):  # its process is gone: taken over, and let go when this sweep ends
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / LOCK_FILE).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")  # a killed sweep's
    with sweep_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    (tmp_path / LOCK_FILE).write_text("1 another-host\n")  # elsewhere: this machine cannot tell, so it waits
    with pytest.raises(ConfigError, match="pid 1 on another-host"):
        with sweep_lock(tmp_path):
            pass


@pytest.mark.parametrize("address, message", [
    ("http://127.0.0.1:8787", "is a web address (the scheduler's dashboard"),
    ("tcp://127.0.0.1:44523x", "is not a scheduler address; give tcp://HOST:PORT"),
    ("127.0.0.1", "is not a scheduler address"),
])
def test_what_is_no_scheduler_address_is_one_line(address, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parallel.check_scheduler_address(address)
    assert parallel.check_scheduler_address("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"


def test_the_lock_is_written_as_the_utf8_it_is_read_as(tmp_path):
    """Windows' default file encoding is cp1252: a host named "Jürgen-PC" wrote a lock the next
    sweep could not read ("not UTF-8 text"). Warned of as Python warns of any default encoding."""
    probe = (f"import warnings\nfrom scratchnn.tune.study import sweep_lock\n"
             f"warnings.simplefilter('error', EncodingWarning)\nwith sweep_lock({str(tmp_path)!r}):\n    pass\n")
    result = subprocess.run([sys.executable, "-X", "warn_default_encoding", "-c", probe], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_killed_sweeps_journal_lock_is_removed_by_the_next_sweep_holding_the_folder(tmp_path):
    """The crash audit: a sweep killed while Optuna held study.log.lock made the next --resume wait
    30 s, with three warnings, before Optuna took it over."""
    lock = tmp_path / "study.log.lock"
    lock.symlink_to(tmp_path / "study.log")  # what Optuna's symlink lock makes
    with sweep_lock(tmp_path):  # a young one may be a live scheduler's (--scheduler outlives a killed sweep)
        assert lock.is_symlink()
    long_ago = time.time() - 31  # past Optuna's 30 s grace: a killed sweep's
    os.utime(lock, (long_ago, long_ago), follow_symlinks=False)
    with sweep_lock(tmp_path):
        assert not lock.is_symlink()
    lock.symlink_to(tmp_path / "study.log")
    os.utime(lock, (long_ago, long_ago), follow_symlinks=False)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a sweep running there
    try:
        (tmp_path / LOCK_FILE).write_text(f"{other.pid} {socket.gethostname()}\n")
        with pytest.raises(ConfigError, match="in use by a running sweep"):
            with sweep_lock(tmp_path):
                pass
    finally:
        other.kill()
        other.wait()
    assert (tmp_path / "study.log.lock").is_symlink()  # its journal lock is left alone


def test_a_port_that_accepts_and_never_answers_is_given_up_on(monkeypatch):
    """The dashboard's port hung the sweep for 3 minutes 20 seconds before."""
    from distributed import Client

    monkeypatch.setattr(parallel, "CONNECT_WAIT", 2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted = []
        threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ConfigError, match=r"no Dask scheduler answered at .* in 2 s: is it the dashboard's port"):
            parallel._connect(Client, address)


def test_a_sweep_that_cannot_start_leaves_no_folder_behind(tmp_path):
    """sweep.json was written before the scheduler was tried: the same command then said 'already
    holds a sweep', and its --resume 'the study is not in its storage'."""
    (tmp_path / "space.toml").write_text(SPACE)
    for _ in range(2):  # the same command twice: the same error, not another one
        done = scratchnn("sweep", "--space", tmp_path / "space.toml", "--scheduler", "tcp://127.0.0.1:1",
                         "--out", tmp_path / "s", "--csv", tmp_path / "space.toml", script=REFUSED_QUICKLY, timeout=120)
        assert done.returncode == 1, done.stderr
        assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in done.stderr, done.stderr
        assert not (tmp_path / "s").exists()


def test_a_sweep_killed_before_it_made_its_study_is_resumed(shared_dir, tmp_path):
    """The crash audit: SIGKILL in the second of start-up between sweep.json and the study left a
    folder whose --resume said 'start a new sweep' and whose command again 'continue it with
    --resume'. No trial ran (no trials/ folder): --resume makes the study and runs the sweep."""
    from scratchnn.training.presets import get_preset
    from scratchnn.tune.sweep import start_sweep

    base = get_preset("mlp")
    base.csv = str(write_digits(shared_dir, tmp_path / "d.csv", 1200))
    base.dev_size, base.epochs, base.hidden = 500, 2, [32]
    start_sweep(tmp_path / "s", parse_space(SPACE, "space.toml"), base, 1)  # what the command had done when killed
    told = scratchnn("report", tmp_path / "s", timeout=120)  # the review: it said "though trials ran"
    assert told.returncode == 1 and "a sweep stopped before it made it is started by scratchnn sweep --resume" \
        in told.stderr, told.stderr
    done = scratchnn("sweep", "--resume", tmp_path / "s", "--workers", 1, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "had not started a trial when it was stopped; starting it" in done.stdout
    assert (tmp_path / "s" / "best.toml").is_file()


@pytest.mark.parametrize("name", ["dev_size", "split_seed", "seed", "threads"])
def test_options_whose_search_compares_nothing_are_refused(name):
    with pytest.raises(ConfigError, match=rf"line 1: {name} cannot be searched: "):
        parse_space(f"{name} = {{low = 1, high = 4}}\n", "space.toml")


def test_threads_given_to_a_sweep_is_refused_not_ignored(tmp_path, capsys):
    from scratchnn.cli.main import main

    assert main(["sweep", "--threads", "2", "--out", str(tmp_path / "s")]) == 1
    assert "--threads: every trial runs on one BLAS thread (one trial per core: --workers); drop --threads" \
        in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_relative_sqlite_url_is_kept_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///rel.db") == f"sqlite:///{tmp_path / 'rel.db'}"
    for kept in ("sqlite:////abs/x.db", "sqlite:///:memory:", "postgresql://u@h/db", ""):
        assert absolute_sqlite(kept) == kept


def test_two_sweeps_share_one_database_each_with_its_own_study(shared_dir, tmp_path):
    """The study was always named 'sweep': the second sweep on a database died with DuplicatedStudyError."""
    digits = write_digits(shared_dir, tmp_path / "digits.csv", 1200)
    (tmp_path / "space.toml").write_text(SPACE)
    for out in ("a", "b"):
        done = scratchnn("sweep", "--space", tmp_path / "space.toml", "--csv", digits, *SMALL, "--dev-size", 300,
                         "--epochs", 1, "--trials", 1, "--workers", 1, "--storage", "sqlite:///shared.db",
                         "--out", tmp_path / out, cwd=tmp_path, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
    import optuna
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'shared.db'}"))
    assert len(names) == 2 and names[0].startswith("sweep-a-") and names[1].startswith("sweep-b-")


def test_a_trial_run_again_after_its_worker_died_starts_afresh(shared_dir, tmp_path):
    """Dask runs a lost worker's task again: the retry found its own half-written folder and failed
    ('already holds a run; continue it with --resume ...'), and the trial was lost."""
    import optuna

    from scratchnn.training.presets import get_preset
    from scratchnn.tune.study import STUDY_NAME, make_pruner
    from scratchnn.tune.trial import run_trial

    digits = write_digits(shared_dir, tmp_path / "digits.csv", 1200)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", pruner=make_pruner())
    config = get_preset("mlp")
    config.csv, config.dev_size, config.epochs, config.hidden, config.warmup = str(digits), 300, 1, [32], 0.0
    folder = tmp_path / "trials" / "0000"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("# what the first attempt left\n")
    (folder / "metrics.csv").write_text("epoch,train_loss\n")
    trial = study.ask()
    outcome = run_trial(storage, STUDY_NAME, trial._trial_id, config.to_dict(), str(folder))
    assert outcome["state"] == "complete", outcome
    assert "started again from the beginning" in (folder / "train.log").read_text()


def test_data_that_is_not_there_is_one_error_before_the_sweep_not_one_per_trial(tmp_path):
    """A missing --csv was 'its folder does not exist and cannot be made there'; a named dataset that
    cannot be fetched failed in every trial, one by one."""
    from sweep_support import env

    (tmp_path / "space.toml").write_text(SPACE)
    quiet = {**env(), "XDG_CACHE_HOME": str(tmp_path / "cache"), "SCRATCHNN_MIRRORS": "http://127.0.0.1:1/"}
    for data, message in ((["--csv", "nope.csv"], f"{tmp_path / 'nope.csv'}: no such file; check the path"),
                          ([], "mnist: train files not found")):
        done = subprocess.run([sys.executable, "-m", "scratchnn", "sweep", "--space", "space.toml", *data,
                               "--workers", "1", "--out", "s"], capture_output=True, text=True, env=quiet,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 1 and message in done.stderr.splitlines()[-1], done.stderr
        assert "Trial" not in done.stdout and not (tmp_path / "s").exists()


def test_a_step_that_does_not_divide_its_range_is_refused_with_the_end_that_fits():
    """Optuna moved high down itself with a warning naming its own source file."""
    with pytest.raises(ConfigError, match=r"line 1: lr step 0.03 does not divide 0.001..0.1; .*\(high = 0.091, say\)"):
        parse_space("lr = {low = 0.001, high = 0.1, step = 0.03}\n", "space.toml")
    parse_space("epochs = {low = 5, high = 20, step = 5}\n", "space.toml")


def test_ctrl_c_in_a_terminal_stops_a_local_sweep_in_one_line(shared_dir, tmp_path):
    """The terminal sends SIGINT to the whole process group: each Dask worker printed a traceback."""
    import signal

    from sweep_support import env

    digits = write_digits(shared_dir, tmp_path / "digits.csv", 2000)
    (tmp_path / "space.toml").write_text(SPACE)
    sweep = subprocess.Popen([sys.executable, "-m", "scratchnn", "sweep", "--space", "space.toml", "--csv", digits,
                              "--epochs", "40", "--hidden", "32", "--trials", "4", "--workers", "2", "--out", "s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "s").glob("trials/*/metrics.csv")) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(sweep.pid, signal.SIGINT)
        _, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == -signal.SIGINT and "Traceback" not in stderr, stderr  # ended by the signal
    assert stderr.strip().splitlines()[-1].endswith("continue with 'scratchnn sweep --resume s'")


class Client:
    """Stands for distributed's Client at a worker's exit: its ``__del__`` meets a closed loop."""

    def __init__(self, message: str):
        self.message = message

    def __del__(self):
        raise RuntimeError(self.message)


class Other(Client):
    def __del__(self):
        raise RuntimeError(self.message)


def test_a_workers_client_on_a_closed_loop_is_not_printed_at_ctrl_c(monkeypatch):
    """Under load 3 of 32 stopped sweeps ended with a worker's "Exception ignored in Client.__del__
    ... IOLoop is closed" after the one line (CI failed the test above on it): a trial's worker
    leaves that message out, and only that one."""
    from scratchnn.tune.trial import _quiet_closed_loop_clients

    printed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: printed.append(str(unraisable.exc_value)))
    _quiet_closed_loop_clients()
    _quiet_closed_loop_clients()  # a second trial on the worker wraps nothing twice
    for message in ("IOLoop is closed", "something else"):
        Client(message)  # collected at once: its __del__ raises into the hook
    Other("IOLoop is closed")  # the same words from another object's __del__ are printed
    assert printed == ["something else", "IOLoop is closed"]


def test_a_stopped_sweeps_trials_stop_after_their_batch(shared_dir, tmp_path):
    """On a cluster the sweep does not own, Ctrl+C left its trials training for nobody until the
    next --resume asked them again: the sweep now sets a Dask Event each trial polls."""
    import optuna
    from distributed import Client, Event, LocalCluster

    from scratchnn.training.presets import get_preset
    from scratchnn.tune.study import STUDY_NAME, make_pruner
    from scratchnn.tune.trial import run_trial

    digits = write_digits(shared_dir, tmp_path / "digits.csv", 1200)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", pruner=make_pruner())
    config = get_preset("mlp")
    config.csv, config.dev_size, config.epochs, config.hidden = str(digits), 300, 200, [32]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        Event("stop-test", client=client).set()
        trial = study.ask()
        outcome = client.submit(run_trial, storage, STUDY_NAME, trial._trial_id, config.to_dict(),
                                str(tmp_path / "trial"), "stop-test").result(timeout=120)
    rows = (tmp_path / "trial" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,"), rows  # the header and the epoch it stopped in
    assert outcome["state"] == "stopped" and outcome["epoch"] == 1, outcome  # not a finished trial's accuracy
    assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # --resume marks it interrupted and asks again


def test_the_review_of_the_sweep_fixes(tmp_path, monkeypatch):
    """A --resume of a folder that holds no sweep says so (it was 'lost the Dask cluster'); a folder
    the user made stays after a failed start; every Dask protocol and Docker's host names pass; a
    lock of this very pid (a restarted container) or an empty one a minute old is taken over."""
    missing = scratchnn("sweep", "--resume", tmp_path / "nonexistent", timeout=120)
    assert missing.returncode == 1 and "not a sweep folder (no sweep.json)" in missing.stderr, missing.stderr
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "mine").mkdir()
    failed = scratchnn("sweep", "--space", tmp_path / "space.toml", "--scheduler", "tcp://127.0.0.1:1", "--out",
                       tmp_path / "mine", "--csv", tmp_path / "space.toml", script=REFUSED_QUICKLY, timeout=120)
    assert failed.returncode == 1 and (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    for address in ("ws://127.0.0.1:18787", "tcp://dask_scheduler:8786", "tls://[::1]:8786"):
        assert parallel.check_scheduler_address(address) == address
    with pytest.raises(ConfigError, match="Dask has no protocol 'foo' here"):
        parallel.check_scheduler_address("foo://h:1")
    lock = tmp_path / LOCK_FILE
    lock.write_text(f"{os.getpid()} {socket.gethostname()}\n")
    with sweep_lock(tmp_path):
        pass
    lock.write_text("")
    with pytest.raises(ConfigError, match="in use by a running sweep"):  # just made: its sweep may write it yet
        with sweep_lock(tmp_path):
            pass
    os.utime(lock, (0, 0))
    with sweep_lock(tmp_path):
        pass
    lock.write_text("")
    os.utime(lock, (time.time() + 1e7, time.time() + 1e7))  # copied from a machine whose clock was ahead
    with sweep_lock(tmp_path):  # (it held the folder until then: the locale audit)
        pass


def test_ctrl_c_while_waiting_for_the_cluster_leaves_no_folder_that_cannot_resume(tmp_path, monkeypatch, capsys):
    """The sweep audit: interrupted while it waited for a worker, the folder said 'continue with
    --resume', whose study did not exist, and the same command was refused ('already holds a sweep')."""
    import contextlib

    from scratchnn.cli.main import main

    @contextlib.contextmanager
    def waiting(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(parallel, "dask_client", waiting)
    (tmp_path / "space.toml").write_text(SPACE)
    digits = write_digits_here(tmp_path)
    argv = ["sweep", "--space", str(tmp_path / "space.toml"), "--csv", str(digits), "--scheduler", "tcp://127.0.0.1:1",
            "--out", str(tmp_path / "s")]
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted; no trial had started; run the same command again")
    assert not (tmp_path / "s").exists()


def test_a_sweep_piped_into_head_that_quit_is_not_told_it_lost_its_cluster(tmp_path, monkeypatch, capfd):
    """`sweep ... | head -1`: BrokenPipeError is a ConnectionError, and the sweep said "lost the Dask
    cluster" (the locale audit); it says what train says of a closed output."""
    import contextlib

    from scratchnn.cli.main import main

    @contextlib.contextmanager
    def reader_gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")
        yield

    monkeypatch.setattr(parallel, "dask_client", reader_gone)
    (tmp_path / "space.toml").write_text(SPACE)
    argv = ["sweep", "--space", str(tmp_path / "space.toml"), "--csv", str(write_digits_here(tmp_path)),
            "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "s")]
    assert main(argv) == 1
    err = capfd.readouterr().err  # (main points the real stdout at devnull: capfd puts it back)
    assert "stopped: its output was closed" in err and "Dask" not in err, err


def test_a_sweeps_workers_are_counted_against_the_cores_it_may_use(tmp_path, monkeypatch, capsys):
    """The resource audit: under taskset -c 0 the default ran 2 trials at a time on 1 usable core
    (os.cpu_count() counts the machine's)."""
    from scratchnn.cli import sweep_cmd
    from scratchnn.cli.main import main

    monkeypatch.setattr(sweep_cmd, "usable_cores", lambda: 1)
    (tmp_path / "space.toml").write_text(SPACE)
    argv = ["sweep", "--space", str(tmp_path / "space.toml"), "--csv", str(write_digits_here(tmp_path)),
            "--workers", "5", "--out", str(tmp_path / "s")]
    assert main(argv) == 1
    assert "--workers must be at most 4 (4 a core of this machine), got 5" in capsys.readouterr().err


def write_digits_here(tmp_path):
    """A tiny CSV of 20 blank digits, two of each class: enough for the sweep to accept the data."""
    rows = [",".join([str(i % 10)] + ["0"] * 784) for i in range(20)]
    path = tmp_path / "digits.csv"
    path.write_text(",".join(["label"] + [f"pixel{i}" for i in range(784)]) + "\n" + "\n".join(rows) + "\n")
    return path


def test_a_cluster_left_without_workers_is_said_to_be_once(monkeypatch):
    """The sweep audit: every worker killed, the sweep waited for over a minute without a word."""
    from scratchnn.tune import sweep

    class Pending:
        def __init__(self):
            self.futures, self.ready_at = ["trial-0"], None

        def is_empty(self):
            return not self.futures

        def has_ready(self):
            return self.ready_at is not None and time.monotonic() >= self.ready_at

        def __next__(self):
            return self.futures.pop()

    class Client:
        def __init__(self, pending):
            self.pending, self.asked = pending, 0

        def scheduler_info(self):
            self.asked += 1
            if self.asked == 40:  # a worker joins again; its trial finishes a little later
                self.pending.ready_at = time.monotonic() + 0.05
            return {"workers": {"tcp://w": {}} if self.asked >= 40 else {}}

    monkeypatch.setattr(sweep, "NO_WORKERS", 0.1)
    monkeypatch.setattr(sweep, "POLL", 0.005)
    pending, said = Pending(), []
    assert list(sweep.completed(pending, Client(pending), said.append)) == ["trial-0"]
    assert len(said) == 1 and said[0].startswith("Note: the cluster has had no worker for 0 s; the sweep waits")


def test_a_trial_finished_before_ctrl_c_is_recorded_not_trained_again():
    """The sweep audit: a trial whose worker had finished a moment before Ctrl+C was left RUNNING,
    so --resume marked it interrupted and trained it again; one still training stays to be asked again."""
    import optuna
    from optuna.trial import TrialState

    from scratchnn.tune import sweep

    class Future:
        def __init__(self, status, outcome=None):
            self.status, self.outcome = status, outcome

        def result(self):
            return self.outcome

    study = optuna.create_study(direction="maximize")
    done, training = study.ask(), study.ask()
    running = {Future("finished", {"state": "complete", "value": 0.93, "findings": [], "config": {"lr": 0.01}}): done,
               Future("pending"): training}
    sweep._record_finished(study, running)
    trials = study.get_trials(deepcopy=False)
    assert (trials[0].state, trials[0].value, trials[0].user_attrs["config"]) == (TrialState.COMPLETE, 0.93,
                                                                                 {"lr": 0.01})
    assert trials[1].state == TrialState.RUNNING


def test_one_unanswered_look_at_the_stop_event_does_not_stop_a_trial(monkeypatch):
    """The sweep audit: the first look at the stop event raised (a network hiccup), the trial stopped
    after one batch and stayed RUNNING in a sweep that was not stopped."""
    import distributed

    from scratchnn.tune import trial

    answers = iter([OSError("hiccup"), False, OSError("gone"), OSError("gone"), OSError("gone")])

    class Event:
        def __init__(self, name):
            pass

        def is_set(self):
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

    monkeypatch.setattr(distributed, "Event", Event)
    monkeypatch.setattr(trial, "STOP_POLL", 0.0)
    requested = trial.sweep_stopped("stop")
    assert [requested() for _ in range(5)] == [False, False, False, False, True]  # three in a row: gone


def test_a_local_cluster_that_cannot_start_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """The resource audit: under ulimit -n 32 (or a full /dev/shm) Dask's 'Nanny failed to start'
    printed a 100-line traceback and left base.toml, space.toml and sweep.json behind."""
    import distributed

    from scratchnn.cli.main import main

    def cannot_start(*args, **kwargs):
        try:
            raise OSError(24, "Too many open files")
        except OSError as error:
            raise RuntimeError("Nanny failed to start.") from error
    monkeypatch.setattr(distributed, "LocalCluster", cannot_start)
    (tmp_path / "space.toml").write_text(SPACE)
    argv = ["sweep", "--space", str(tmp_path / "space.toml"), "--csv", str(write_digits_here(tmp_path)),
            "--workers", "2", "--out", str(tmp_path / "s")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the sweep's 2 worker process(es) could not start (OSError: [Errno 24] Too many " \
        "open files)" in err, err
    assert not (tmp_path / "s").exists()
