"""One process at a time in a run folder, and a run that cannot write says what it keeps.

The failure audit: two `train --out SAME` started together both succeeded, the folder mixing the
two runs (one's model, the other's config.toml); a second `--resume` of a folder still training
deleted the first one's temporary file and killed it; a full disk mid-run said only "No space
left on device", so the user trained again from scratch though the folder could be resumed.
"""
import errno
import os
import socket
import subprocess
import sys

import pytest
from test_run import digits, quiet, small_config, tensors  # noqa: F401 (fixture)

from scratchnn.errors import ConfigError, RunNotSaved
from scratchnn.files import folder_lock
from scratchnn.io import MODEL_FILE
from scratchnn.training.checkpoint import CHECKPOINT_FILE
from scratchnn.training.run import RUN_LOCK, resume_run, train_run


@pytest.fixture
def another_process():
    """A live process on this host (another train, as far as a lock can tell)."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield other.pid
    other.kill()
    other.wait()


def test_a_folder_a_live_process_trains_in_is_refused_to_train_and_to_resume(tmp_path, digits,  # noqa: F811
                                                                               another_process):
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_LOCK).write_text(f"{another_process} {socket.gethostname()}\n")
    with pytest.raises(ConfigError, match=rf"{run} is in use by a training run \(pid {another_process} on "):
        train_run(small_config(digits, epochs=1, warmup=0.0), run, log=quiet, progress=False)
    assert sorted(path.name for path in run.iterdir()) == [RUN_LOCK]  # nothing written beside its lock
    with pytest.raises(ConfigError, match="is in use by a training run"):
        resume_run(run, log=quiet, progress=False)


def test_a_killed_runs_lock_is_taken_over_and_every_run_lets_go_of_its_own(tmp_path, digits):  # noqa: F811
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_LOCK).write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")  # a run killed with -9
    train_run(small_config(digits, epochs=2, checkpoint_every=1), run, log=quiet, progress=False)
    assert (run / MODEL_FILE).is_file() and not (run / RUN_LOCK).exists()


def test_a_second_train_into_the_same_folder_is_refused_after_the_first_began(tmp_path, digits):  # noqa: F811
    """The race: both passed the 'already holds a run' check while their data loaded. Under the
    lock the folder is checked again, so the later one is refused and the first one's run stays whole."""
    run = tmp_path / "run"
    train_run(small_config(digits, epochs=1, warmup=0.0), run, log=quiet, progress=False)
    before = tensors(run / MODEL_FILE)
    with folder_lock(run, RUN_LOCK, "a training run"):
        pass  # taken and let go: the folder's own check decides
    from scratchnn.training import run as run_module

    checks = []
    real = run_module._refuse_taken
    run_module._refuse_taken = lambda folder: checks.append(folder) or (real(folder) if len(checks) > 1 else None)
    try:  # the first check passed (as when both started together); the one under the lock refuses
        with pytest.raises(ConfigError, match="already holds a (finished )?run"):
            train_run(small_config(digits, epochs=1, seed=9, warmup=0.0), run, log=quiet, progress=False)
    finally:
        run_module._refuse_taken = real
    assert len(checks) == 2
    assert all((before[name] == tensors(run / MODEL_FILE)[name]).all() for name in before)


def test_a_full_disk_mid_run_names_the_file_and_the_resume_that_goes_on(tmp_path, digits, monkeypatch):  # noqa: F811
    run, calls = tmp_path / "run", []
    real_fsync = os.fsync

    def full_after_a_while(fd):
        calls.append(fd)
        if len(calls) > 6:  # config.toml, then the first epoch's files: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_after_a_while)
    with pytest.raises(RunNotSaved) as raised:
        train_run(small_config(digits, epochs=3, checkpoint_every=1), run, log=quiet, progress=False)
    message = str(raised.value)
    assert message.startswith(str(run / "")) and "No space left on device (the disk is full)" in message
    assert message.endswith(f"the run folder {run} keeps its last checkpoint: once that is mended, "
                            f"'scratchnn train --resume {run}' goes on from it"), message
    assert (run / CHECKPOINT_FILE).is_file() and not (run / RUN_LOCK).exists()
    assert not [path.name for path in run.iterdir() if path.name.endswith(".tmp")]
    monkeypatch.setattr(os, "fsync", real_fsync)
    resume_run(run, log=quiet, progress=False)
    whole = tmp_path / "whole"
    train_run(small_config(digits, epochs=3, checkpoint_every=1), whole, log=quiet, progress=False)
    assert all((tensors(whole / MODEL_FILE)[name] == value).all() for name, value in tensors(run / MODEL_FILE).items())


def test_a_folder_the_lock_cannot_be_made_in_is_said_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.*No such file or directory.*; copy the folder"):
        with folder_lock(tmp_path / "missing", RUN_LOCK, "a training run", unwritable="copy the folder"):
            raise AssertionError("never reached")


def test_a_report_that_cannot_be_written_says_the_model_is_saved_and_how_to_draw_it(tmp_path, digits,  # noqa: F811
                                                                                     monkeypatch, capsys):
    from scratchnn.cli.main import main
    from scratchnn.insight import report

    def full(run_dir, log=print):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "report.html"))

    monkeypatch.setattr(report, "write_report", full)
    images, labels = digits
    code = main(["train", "--images", str(images), "--labels", str(labels), "--epochs", "1", "--dev-size", "200",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "run" / MODEL_FILE).is_file()
    assert (f"{tmp_path / 'run' / 'report.html'}: No space left on device (the disk is full: free some space); the "
            f"model is saved in {tmp_path / 'run'}: draw its report once that is mended, with 'scratchnn report "
            f"{tmp_path / 'run'}'") in err, err


def test_an_out_folder_that_is_a_dangling_link_is_named_as_such(tmp_path, digits):  # noqa: F811
    (tmp_path / "runs").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match=r"runs is a link to .*gone, which does not exist; make that folder"):
        train_run(small_config(digits, epochs=1, warmup=0.0), tmp_path / "runs", log=quiet, progress=False)
    (tmp_path / "gone").mkdir()
    train_run(small_config(digits, epochs=1, warmup=0.0), tmp_path / "runs", log=quiet, progress=False)
    assert (tmp_path / "gone" / MODEL_FILE).is_file()


def test_a_lock_whose_pid_is_not_ascii_digits_is_said_not_crashed_on(tmp_path):
    """Read over the diff: '²' passes str.isdigit() and int() then raised ValueError (the same slip
    the web fuzz audit found in Last-Event-ID)."""
    (tmp_path / RUN_LOCK).write_text(f"\xb2 {socket.gethostname()}\n")
    with pytest.raises(ConfigError, match="is in use by a training run"):
        with folder_lock(tmp_path, RUN_LOCK, "a training run"):
            pass
