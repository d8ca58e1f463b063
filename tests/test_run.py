"""Training runs end to end: run folder, checkpoints, --resume after SIGKILL, divergence, --config."""
import csv
import dataclasses
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import datetime

import numpy as np
import pytest

from scratchnn.data import write_idx
from scratchnn.errors import ConfigError, RunInterrupted, RunNotSaved, TrainingDiverged
from scratchnn.io import MODEL_FILE, read_metadata, read_tensors
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import resume_run, train_run
from scratchnn.training.run_data import file_sha256


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An IDX pair of 1,200 learnable 28x28 'digits': ten random prototypes plus noise."""
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(5)
    prototypes = rng.integers(0, 256, (10, 28, 28))
    labels = rng.integers(0, 10, 1200).astype(np.uint8)
    images = np.clip(prototypes[labels] + rng.normal(0, 60, (1200, 28, 28)), 0, 255).astype(np.uint8)
    write_idx(folder / "images.idx.gz", images)
    write_idx(folder / "labels.idx.gz", labels)
    return folder / "images.idx.gz", folder / "labels.idx.gz"


def small_config(digits, **changes) -> TrainConfig:
    images, labels = digits
    values = dict(hidden=[32, 16], init="he_normal", bias_init="zeros", dropout=0.2, optimizer="adam", lr=2e-3,
                  schedule="cosine", warmup=1.0, epochs=5, batch_size=50, dev_size=200, eval_every=1,
                  images=str(images), labels=str(labels), seed=3)
    values.update(changes)
    return TrainConfig(**values)


def quiet(line):
    pass


def tensors(path):
    return read_tensors(path)[0]


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_a_run_folder_holds_config_metrics_checkpoint_and_model(tmp_path, digits):
    result = train_run(small_config(digits), tmp_path / "run", log=quiet, progress=False)
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert {"train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr", "seconds"} <= rows[0].keys()
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[-1] < lrs[1]  # cosine decays after the warm-up epoch
    images, labels = digits
    assert TrainConfig.load(run / "config.toml") == dataclasses.replace(
        small_config(digits), images_sha256=file_sha256(images), labels_sha256=file_sha256(labels))
    checkpoint = load_checkpoint(run / CHECKPOINT_FILE)
    assert checkpoint.epoch == 5 and checkpoint.metadata["finished"]
    assert result.metrics["dev_accuracy"] > 0.9
    assert result.model_path == run / MODEL_FILE
    created = read_metadata(run / MODEL_FILE)["created"]  # with the offset of the clock it was read on
    assert datetime.fromisoformat(created).utcoffset() is not None, created  # (the locale audit: none)


def test_the_saved_config_repeats_the_run_bit_for_bit(tmp_path, digits):
    train_run(small_config(digits), tmp_path / "a", log=quiet, progress=False)
    again = TrainConfig.load(tmp_path / "a" / "config.toml")
    train_run(again, tmp_path / "b", log=quiet, progress=False)
    assert_same_tensors(tensors(tmp_path / "a" / MODEL_FILE), tensors(tmp_path / "b" / MODEL_FILE))


KILL_MID_EPOCH = textwrap.dedent("""
    import os, signal, sys
    from scratchnn.training import progress
    from scratchnn.cli.main import main
    original = progress.TrainingProgress.on_batch_end

    def on_batch_end(self, epoch, batch, batches, loss, accuracy):
        original(self, epoch, batch, batches, loss, accuracy)
        if (epoch, batch) == (3, 4):  # the middle of epoch 3: epochs 1 and 2 are checkpointed
            os.kill(os.getpid(), signal.SIGKILL)

    progress.TrainingProgress.on_batch_end = on_batch_end
    sys.exit(main(sys.argv[1:]))
""")


def cli(*args, script=None):
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "scratchnn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # trains on real MNIST in subprocesses (seconds each)
@pytest.mark.parametrize("network", [{}, {"conv": [4], "hidden": [16], "augment": True}], ids=["mlp", "cnn-augmented"])
def test_a_run_killed_mid_epoch_resumes_to_bit_identical_weights(tmp_path, digits, network):
    small_config(digits, epochs=6, patience=10, **network).save(tmp_path / "config.toml")
    whole = cli("train", "--config", tmp_path / "config.toml", "--out", tmp_path / "whole", "--quiet")
    assert whole.returncode == 0, whole.stderr

    killed = cli("train", "--config", str(tmp_path / "config.toml"), "--out", str(tmp_path / "killed"),
                 script=KILL_MID_EPOCH)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "killed" / MODEL_FILE).exists()
    assert load_checkpoint(tmp_path / "killed" / CHECKPOINT_FILE).epoch == 2

    resumed = cli("train", "--resume", str(tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout and "after epoch 2 of 6" in resumed.stdout
    assert_same_tensors(tensors(tmp_path / "whole" / MODEL_FILE), tensors(tmp_path / "killed" / MODEL_FILE))
    whole_rows = list(csv.DictReader((tmp_path / "whole" / "metrics.csv").open()))
    resumed_rows = list(csv.DictReader((tmp_path / "killed" / "metrics.csv").open()))
    keys = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr")
    assert [[r[k] for k in keys] for r in whole_rows] == [[r[k] for k in keys] for r in resumed_rows]


def test_resume_refuses_a_finished_run_and_extra_flags(tmp_path, digits):
    train_run(small_config(digits, epochs=1, warmup=0.0), tmp_path / "run", log=quiet, progress=False)
    with pytest.raises(ConfigError, match="already finished"):
        resume_run(tmp_path / "run", log=quiet, progress=False)
    before = (tmp_path / "run" / MODEL_FILE).read_bytes()
    result = cli("train", "--resume", str(tmp_path / "run"), "--no-report")  # the CLI: done is done, exit 0
    assert result.returncode == 0 and "already finished; nothing to train" in result.stderr, result.stderr
    assert "--config" in result.stderr and (tmp_path / "run" / MODEL_FILE).read_bytes() == before
    result = cli("train", "--resume", str(tmp_path / "run"), "--lr", "0.1")
    assert result.returncode == 1 and "drop --lr" in result.stderr
    result = cli("train", "--resume", str(tmp_path / "nothing"))
    assert result.returncode == 1 and "not a run folder" in result.stderr


def test_a_new_run_will_not_overwrite_a_run_folder(tmp_path, digits):
    train_run(small_config(digits, epochs=1, warmup=0.0), tmp_path / "run", log=quiet, progress=False)
    before = tensors(tmp_path / "run" / MODEL_FILE)
    with pytest.raises(ConfigError, match="already holds a finished run; choose another --out"):  # not --resume
        train_run(small_config(digits, epochs=1, seed=9, warmup=0.0), tmp_path / "run", log=quiet, progress=False)
    assert_same_tensors(before, tensors(tmp_path / "run" / MODEL_FILE))


@pytest.mark.parametrize("files, words", [
    (["metrics.csv", "notes.txt"], "own already holds metrics.csv, which a new run would write over; choose another"),
    (["config.toml"], "own already holds config.toml, which a new run would write over; continue the run it began "
                      "with --resume"),
    (["health.csv", "report.html"], "own already holds health.csv, report.html, which a new run would write over"),
])
def test_a_new_run_will_not_write_over_files_it_did_not_make(tmp_path, digits, files, words):
    """The CLI audit: --out a folder holding someone's own metrics.csv trained and replaced it."""
    own = tmp_path / "own"
    own.mkdir()
    for name in files:
        (own / name).write_text(f"{name}: mine\n")
    with pytest.raises(ConfigError, match=words.replace("own", f"{own}.*", 1)):
        train_run(small_config(digits, epochs=1, warmup=0.0), own, log=quiet, progress=False)
    assert all((own / name).read_text() == f"{name}: mine\n" for name in files)
    assert sorted(path.name for path in own.iterdir()) == sorted(files)
    train_run(small_config(digits, epochs=1, warmup=0.0), own / "run", log=quiet, progress=False)  # a new folder


def test_divergence_stops_with_the_lr_hint_and_keeps_the_last_good_checkpoint(tmp_path, digits, monkeypatch):
    # plain SGD with a huge rate from epoch 3: epochs 1-2 are sane and checkpointed (a step "decay" of
    # 1e7, which a config refuses, so set here as the Python API's schedule)
    from scratchnn.optim.schedules import StepDecay

    monkeypatch.setattr(TrainConfig, "build_schedule",
                        lambda self, steps_per_epoch: StepDecay(0.05, step_size=2 * steps_per_epoch, gamma=1e7))
    config = small_config(digits, optimizer="sgd", lr=0.05, schedule="step", lr_step=2, warmup=0.0, dropout=0.0,
                          epochs=6)
    told = r"at epoch 3 .*try a lower learning rate \(--lr\).*last good checkpoint \(epoch 2\)"
    with pytest.raises(TrainingDiverged, match=told):
        train_run(config, tmp_path / "run", log=quiet, progress=False)
    checkpoint = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    assert checkpoint.epoch == 2
    assert all(np.isfinite(array).all() for array in checkpoint.tensors.values())
    assert not (tmp_path / "run" / MODEL_FILE).exists()


def test_cli_lr_50_exits_non_zero_with_the_divergence_message(tmp_path, digits):
    images, labels = digits
    result = cli("train", "--images", images, "--labels", labels, "--dev-size", "200", "--epochs", "3",
                 "--lr", "50", "--out", tmp_path / "run")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "loss became" in last and "try a lower learning rate (--lr)" in last and "checkpoint (epoch 0" in last, last
    checkpoint = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    assert checkpoint.epoch == 0 and all(np.isfinite(a).all() for a in checkpoint.tensors.values())
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


@pytest.mark.slow  # trains on real MNIST in subprocesses (seconds each)
def test_a_run_killed_in_its_first_epoch_resumes_from_the_initial_weights(tmp_path, digits):
    small_config(digits, epochs=2).save(tmp_path / "config.toml")
    script = KILL_MID_EPOCH.replace("(3, 4)", "(1, 2)")
    killed = cli("train", "--config", str(tmp_path / "config.toml"), "--out", str(tmp_path / "killed"),
                 script=script)
    assert killed.returncode == -signal.SIGKILL
    resumed = cli("train", "--resume", str(tmp_path / "killed"), "--quiet")
    whole = cli("train", "--config", str(tmp_path / "config.toml"), "--out", str(tmp_path / "whole"), "--quiet")
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr
    assert_same_tensors(tensors(tmp_path / "whole" / MODEL_FILE), tensors(tmp_path / "killed" / MODEL_FILE))


@pytest.mark.parametrize("held", ["metrics.csv", "health.csv", CHECKPOINT_FILE, MODEL_FILE])
def test_a_table_another_program_holds_open_is_a_note_and_the_saved_state_still_fails_loudly(
        tmp_path, digits, monkeypatch, held):
    """Windows refuses to replace a file another program has open (a spreadsheet on metrics.csv)."""
    import os

    from scratchnn import files

    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == held:
            raise PermissionError(13, "Access is denied", src)
        real_replace(src, dst)

    monkeypatch.setattr(files, "WINDOWS", True)
    monkeypatch.setattr(files, "REPLACE_WAIT", 0)
    monkeypatch.setattr(files.os, "replace", replace)
    lines = []
    config = small_config(digits, epochs=2, doctor="on")
    if held in ("metrics.csv", "health.csv"):
        result = train_run(config, tmp_path / "run", log=lines.append, progress=False)
        assert result.model_path.is_file() and (tmp_path / "run" / CHECKPOINT_FILE).is_file()
        notes = [line for line in lines if line.startswith(f"Note: {held} was not updated (another program has")]
        assert notes and "training goes on" in notes[0], lines
    else:
        with pytest.raises(RunNotSaved, match=f"{held}: .*close that program and try again; the run folder "
                                              ".* --resume "):
            train_run(config, tmp_path / "run", log=lines.append, progress=False)


@pytest.mark.parametrize("preset, words", [
    ("my/run:x", 'preset "my/run:x" cannot name a run folder'), ("..", "preset .. cannot name a run folder"),
    ("C:\\x", "cannot name a run folder"), ("my run", "or choose the folder with --out"),
])
def test_a_preset_that_cannot_name_a_folder_is_refused_before_anything_is_made(tmp_path, monkeypatch, preset, words):
    """A config file's preset ends the new run folder's name: "my/run:x" made nested folders and
    "../x" one outside runs/. It is refused before the data is read; with --out it is only a name."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")) as error:
        train_run(TrainConfig(preset=preset, csv="nowhere.csv"), log=lambda line: None, progress=False)
    assert "\n" not in str(error.value) and not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []


def test_a_dev_set_larger_than_the_data_leaves_no_run_folder(digits, tmp_path):
    """The config audit: --dev-size 20000 failed after the folder and config.toml were written, so the same --out
    was then refused ('continue it with --resume'), and that resume failed again."""
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"^--dev-size 100000: dev size must be between 0 and \d+ \(the data has"):
        train_run(small_config(digits, dev_size=100_000), out, log=lambda line: None, progress=False)
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"shift of 20 px would move a 28x28 image out of its frame; use less than "
                                          r"14 \(--augmentation shift=2, the digits' own for this size\), or train "
                                          r"without --augment"):  # the advice audit: shift=7 the doctor then named
        train_run(small_config(digits, augment=True, augmentation={"shift": 20.0}), out, log=quiet, progress=False)
    assert not out.exists()  # the augmentation audit: refused at the first batch, after the folder was made
    lines = []  # and a train size over what is left is said, not silently cut
    train_run(small_config(digits, train_size=5000, epochs=2), out, log=lines.append, progress=False)
    assert "Note: --train-size 5,000 is more than the 1,000 images left beside the dev set; training on all of them" \
        in lines


def test_a_finished_run_whose_model_file_is_damaged_gets_it_back_from_the_checkpoint(digits, tmp_path, capsys):
    """The config audit: `train --resume` of a finished run with a truncated model said 'already finished; nothing
    to train' (exit 0) while evaluate refused the file; the finished checkpoint holds the weights."""
    from scratchnn.cli.main import main

    out = tmp_path / "run"
    train_run(small_config(digits, epochs=2), out, log=quiet, progress=False)
    whole, trained = (out / MODEL_FILE).read_bytes(), read_tensors(out / MODEL_FILE)[0]
    (out / MODEL_FILE).write_bytes(whole[:len(whole) // 2])
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--no-report"]) == 0
    said = capsys.readouterr().out
    assert "The model file is damaged" in said and "writing the model from the checkpoint" in said, said
    again = read_tensors(out / MODEL_FILE)[0]
    assert again.keys() == trained.keys() and all(np.array_equal(again[k], trained[k]) for k in trained)


def test_a_resume_refuses_edits_to_what_counts_evaluations_and_to_the_data(digits, tmp_path):
    """The config audit: with a plateau schedule or patience, an eval_every edited before --resume changed the weights
    (max |d| 6.4) though resumes are bit for bit; a blanked digest let a resume go on with other data."""
    from scratchnn.training.config import CONFIG_FILE

    def interrupt(result):
        if result.epoch == 2:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        train_run(small_config(digits, patience=3), run, log=quiet, progress=False, on_evaluation=interrupt)
    text = (run / CONFIG_FILE).read_text()
    digest = text.split('images_sha256 = "')[1][:64]  # edited into another of the same form: 64 hex digits
    for edit, said in ((("eval_every = 1", "eval_every = 3"), "eval_every 1 -> 3"),
                       ((digest, "0" * 64), "images_sha256 ")):
        (run / CONFIG_FILE).write_text(text.replace(*edit))
        with pytest.raises(ConfigError, match="was edited after the run began") as info:
            resume_run(run, log=quiet, progress=False)
        assert said in str(info.value)
    (run / CONFIG_FILE).write_text(text.replace("threads = 0", "threads = 1"))  # how, not what: said so
    lines = []
    resume_run(run, log=lines.append, progress=False)
    assert "Note: threads 0 -> 1 since the run began: the same math, rounded in another order" in lines[0], lines


def test_ctrl_c_of_a_run_without_checkpoints_says_it_starts_over(digits, tmp_path):
    """The config audit: with --checkpoint-every 0, Ctrl+C said the folder 'keeps its last checkpoint'."""
    def interrupt(result):
        if result.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match=r"has no checkpoint to go on from .* starts it over"):
        train_run(small_config(digits, checkpoint_every=0), tmp_path / "run", log=quiet, progress=False,
                  on_evaluation=interrupt)


def test_a_run_folder_may_be_named_for_its_config_and_a_lost_config_comes_back_from_the_checkpoint(digits,
                                                                                                    tmp_path):
    """The config audit: `--config RUN_DIR` was refused, `--resume RUN/config.toml` said 'not a run folder (no
    config.toml)', and a run whose config.toml was deleted could not be resumed though its checkpoint records it."""
    from scratchnn.cli.main import build_parser
    from scratchnn.cli.train_cmd import resolve_config
    from scratchnn.training.config import CONFIG_FILE

    def interrupt(result):
        if result.epoch == 2:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        train_run(small_config(digits), run, log=quiet, progress=False, on_evaluation=interrupt)
    saved = TrainConfig.load(run / CONFIG_FILE)
    assert resolve_config(build_parser().parse_args(["train", "--config", str(run)]), quiet) == saved
    with pytest.raises(ConfigError, match=f"is a file; give the run folder that holds it: --resume {run}$"):
        resume_run(run / CONFIG_FILE, log=quiet, progress=False)
    (run / CONFIG_FILE).unlink()
    lines = []
    resume_run(run, log=lines.append, progress=False)
    assert "its config.toml was missing; written again from the checkpoint's record" in lines[0]
    assert TrainConfig.load(run / CONFIG_FILE) == saved and (run / MODEL_FILE).is_file()


def test_a_batch_larger_than_the_training_set_is_noted(digits, tmp_path):
    """The fuzz audit: --batch-size 2147483648 on 300 images trained full-batch without a word."""
    lines = []
    train_run(small_config(digits, epochs=1, warmup=0.0, batch_size=5000), tmp_path / "run", log=lines.append,
              progress=False)
    assert "Note: --batch-size 5,000 is more than the 1,000 training images; each step takes them all (a full " \
           "batch)" in lines, lines


def test_a_long_runs_health_is_thinned_and_a_resume_records_the_same_evaluations(tmp_path, digits, monkeypatch):
    """The long-run audit: a run's health.csv grew by the network's rows at every evaluation, past
    what its readers take. train tells the recorder how many evaluations the run plans; a run
    over HEALTH_ROWS records every k-th, says k in health.csv, and a resumed run goes on with it."""
    from scratchnn.doctor.signals import read_health_csv
    from scratchnn.training import health as health_module

    monkeypatch.setattr(health_module, "HEALTH_ROWS", 120)  # ~40 rows an evaluation, 8 planned: one in 3
    config = small_config(digits, epochs=8, schedule="constant", warmup=0.0, threads=1)
    train_run(config, tmp_path / "whole", log=quiet, progress=False)
    rows = read_health_csv(tmp_path / "whole" / "health.csv")
    every = next(int(r.value) for r in rows if r.signal == "health_every")
    assert every > 1 and sorted({r.epoch for r in rows}) == sorted({0, *range(every, 8, every), 8})

    def stop_at_5(result):
        if result.epoch == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "resumed", log=quiet, progress=False, on_evaluation=stop_at_5)
    resume_run(tmp_path / "resumed", log=quiet, progress=False)
    again = read_health_csv(tmp_path / "resumed" / "health.csv")
    assert sorted({r.epoch for r in again}) == sorted({r.epoch for r in rows})
    for table in (rows, again):  # fit records the labels' balance, once, when train passes through it
        assert [r.signal for r in table].count("label_classes") == 1


def test_a_run_of_more_evaluations_than_a_checkpoint_lists_is_refused_by_every_way_in(tmp_path, digits):
    """The scale audit: the cap on evaluations was checked where flags are resolved only; the
    Python API's train_run and a resume whose config.toml was given another eval_every went past
    it, towards a checkpoint too big to write part-way through the run."""
    words = r"--epochs 40000 with --eval-every 1 makes 40,000 evaluations, and a run keeps at most 20,000"
    with pytest.raises(ConfigError, match=words):
        train_run(small_config(digits, epochs=40_000, eval_every=1), tmp_path / "api", log=quiet, progress=False)
    assert not (tmp_path / "api").exists()  # refused before its folder

    def stop_at_1(result):
        raise KeyboardInterrupt

    config = small_config(digits, epochs=40_000, eval_every=10, schedule="constant", warmup=0.0)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "edited", log=quiet, progress=False, on_evaluation=stop_at_1)
    saved = TrainConfig.load(tmp_path / "edited" / "config.toml")
    dataclasses.replace(saved, eval_every=1).save(tmp_path / "edited" / "config.toml")
    with pytest.raises(ConfigError, match=words):
        resume_run(tmp_path / "edited", log=quiet, progress=False)


def test_past_its_first_evaluations_a_long_run_checkpoints_as_often_as_writing_allows(tmp_path, digits, monkeypatch):
    """The scale audit: a 20,000-evaluation run spent two thirds of its time rewriting its
    checkpoint and tables. Past ALWAYS_SAVED evaluations a checkpoint waits SAVE_SHARE times
    the last one's writing time; the run still resumes from the last one written, exactly."""
    from scratchnn.training import session

    config = small_config(digits, epochs=6, schedule="constant", warmup=0.0, threads=1)
    train_run(config, tmp_path / "whole", log=quiet, progress=False)
    monkeypatch.setattr(session, "ALWAYS_SAVED", 2)
    monkeypatch.setattr(session, "SAVE_SHARE", 1e9)  # no time is long enough: only the first two are written

    def stop_at_5(result):
        if result.epoch == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "held", log=quiet, progress=False, on_evaluation=stop_at_5)
    assert load_checkpoint(tmp_path / "held" / CHECKPOINT_FILE).epoch == 2
    resume_run(tmp_path / "held", log=quiet, progress=False)
    whole, held = (read_tensors(tmp_path / name / MODEL_FILE)[0] for name in ("whole", "held"))
    assert all(np.array_equal(whole[name], held[name]) for name in whole)


def test_a_checkpoint_is_written_after_the_health_rows_it_resumes_with(tmp_path, digits, monkeypatch):
    """The crash audit: SIGKILL between a checkpoint and health.csv left the checkpoint of epoch N
    beside a table ending at the checkpoint before, and the resumed run never recorded the epochs
    between. When the checkpoint of epoch N is written, the table holds epoch N's rows."""
    from scratchnn.training import session
    from scratchnn.doctor.signals import read_health_csv

    written = session.save_checkpoint
    seen = []

    def checked(path, **state):
        epoch = len(state["history"]) and state["history"][-1].epoch
        table = path.parent / "health.csv"
        seen.append((epoch, table.exists() and max((r.epoch for r in read_health_csv(table)), default=None)))
        return written(path, **state)

    monkeypatch.setattr(session, "save_checkpoint", checked)
    train_run(small_config(digits, epochs=3, threads=1), tmp_path / "run", log=quiet, progress=False)
    assert [epoch for epoch, _ in seen if epoch] == [1, 2, 3, 3]  # each evaluation, then the finished run
    assert all(last == epoch for epoch, last in seen if epoch), seen


def test_a_run_killed_before_it_saved_its_config_is_named_so_and_started_again(tmp_path, digits):
    """The crash audit: SIGKILL between making the folder (its run.lock) and writing config.toml
    left a folder whose --resume said 'not a run folder', though it was the run's own."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.lock").write_text(f"999999999 {socket.gethostname()}\n")  # a killed process of this machine
    (run / ".config.toml.ab_c1234.tmp").write_text("half")
    (run / ".trained-from-the-page").touch()  # the review: a page run's mark hid this wording
    with pytest.raises(ConfigError, match=r"a run stopped before it saved its config.toml \(the folder holds only its "
                                          r"run.lock\): nothing was trained; start it again with the same scratchnn "
                                          r"train command$"):
        resume_run(run, log=quiet, progress=False)
    train_run(small_config(digits, epochs=2), run, log=quiet, progress=False)  # the same command: it trains
