"""A run resumed again and again keeps its tables and its verdict (the resume audit): each
--resume of a run the strict doctor stopped trained one more evaluation, and each --resume
from an epoch-0 checkpoint added another copy of epoch 0's health rows."""
import gzip

import pytest

from scratchnn.cli.main import main
from scratchnn.doctor.signals import read_health_csv


@pytest.fixture(scope="module")
def digits_csv(shared_dir, tmp_path_factory):
    """The first 2,000 of the shared digits, for runs of a few seconds."""
    with gzip.open(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", "rt") as source:
        lines = [next(source) for _ in range(2001)]
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    path.write_text("".join(lines))
    return path


def test_a_run_the_strict_doctor_stopped_is_stopped_again_before_it_trains(digits_csv, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "seed", "--csv", str(digits_csv), "--threads", "1", "--fault", "tiny-init",
                 "--doctor", "strict", "--checkpoint-every", "1", "--out", str(run), "--no-report"]) == 3
    metrics = (run / "metrics.csv").read_text()
    capsys.readouterr()
    for _ in range(2):
        assert main(["train", "--resume", str(run), "--no-report"]) == 3
        err = capsys.readouterr().err
        assert "the doctor found an error in this run by iteration 10 ([small-init] " in err
        assert (f'so --doctor strict stops it before it trains again: fix that and train it anew, or set doctor = "on" '
                f"in {run}/config.toml") in err
        assert (run / "metrics.csv").read_text() == metrics  # nothing trained: iteration 10 still its last
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace('doctor = "strict"', 'doctor = "on"'))
    assert main(["train", "--resume", str(run), "--no-report", "--quiet"]) == 0  # trains on, as told


def test_resuming_from_the_epoch_0_checkpoint_again_and_again_keeps_one_copy_of_epoch_0(digits_csv, tmp_path):
    """A run that diverges in its first epoch keeps the untrained network's checkpoint; each
    --resume measured epoch 0 again and health.csv went 45, 77, 109 lines."""
    run = tmp_path / "run"
    args = ["--preset", "mlp", "--csv", str(digits_csv), "--epochs", "5", "--threads", "1", "--optimizer", "sgd",
            "--lr", "300", "--out", str(run), "--no-report"]
    assert main(["train", *args]) == 1
    rows = read_health_csv(run / "health.csv")
    assert rows and {row.epoch for row in rows} <= {0, 1}
    for _ in range(2):
        assert main(["train", "--resume", str(run), "--no-report"]) == 1
        again = read_health_csv(run / "health.csv")
        assert sorted(map(repr, again)) == sorted(map(repr, rows))
        keys = [(row.epoch, row.layer, row.signal) for row in again]
        assert len(keys) == len(set(keys))


def test_resume_messages_say_what_may_be_edited_and_where(digits_csv, tmp_path, capsys):
    """The resume audit: a moved data file was told 'put it back' (config.toml may say where it
    went), --threads with --resume 'drop --threads' (config.toml may change it), and evaluate of a
    run still training 'complete it with --resume', which that run's lock then refused."""
    import shutil
    import socket
    import subprocess
    import sys

    data = tmp_path / "digits.csv"
    shutil.copy(digits_csv, data)
    run = tmp_path / "run"
    assert main(["train", "--preset", "mlp", "--epochs", "2", "--csv", str(data), "--threads", "1", "--out", str(run),
                 "--no-report", "--quiet"]) == 0
    (run / "model.safetensors").unlink()  # as if cut short: the checkpoint finishes it
    data.rename(tmp_path / "moved.csv")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-report"]) == 1
    assert (f'that file is missing: put it back, or if it moved, set csv = "NEW PATH" in {run}/config.toml (its '
            "sha256 is checked)") in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--threads", "2", "--lr", "0.1"]) == 1
    assert capsys.readouterr().err.rstrip().endswith(
        f"drop --lr, --threads (threads may be changed in {run}/config.toml before resuming)")
    training = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a run still training
    try:
        (run / "run.lock").write_text(f"{training.pid} {socket.gethostname()}\n")
        assert main(["evaluate", str(run)]) == 1
        assert "the run is still training (no model.safetensors yet); wait for it to finish" in capsys.readouterr().err
    finally:
        training.kill()
        training.wait()


def test_a_resumed_run_names_what_the_doctor_found_before_in_one_line(digits_csv, tmp_path, capsys):
    """The resume audit: at its first evaluation a resumed run printed every earlier finding again
    in full, one of them in other words ([lr-too-high] of another layer, at another iteration)."""
    from scratchnn.training.presets import get_preset
    from scratchnn.training.run import train_run

    config = get_preset("seed")
    config.csv, config.fault, config.threads, config.epochs = str(digits_csv), ["tiny-init"], 1, 60
    config.checkpoint_every = 1

    def interrupt(result):
        if result.epoch == 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "run", progress=False, log=lambda line: None, on_evaluation=interrupt)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "The doctor found before: [small-init] error, " in out
    assert f"('scratchnn doctor {tmp_path / 'run'}' says more)" in out
    assert "[small-init] error: " not in out  # not again in full
