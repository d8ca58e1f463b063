"""The command line end to end, in subprocesses, as a user runs it."""
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from scratchnn.io import load


def scratchnn(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "scratchnn", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_every_command(capsys):
    from scratchnn.cli.main import main

    result = scratchnn("--help")
    assert result.returncode == 0
    for command in command_names():
        assert command in result.stdout
        # each command's own help in this process: ten more interpreters would only start up
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0 and f"usage: scratchnn {command}" in capsys.readouterr().out, command


def test_gradcheck_passes_for_every_layer():
    result = scratchnn("gradcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for name in ("Dense", "ReLU", "SoftmaxCrossEntropy", "Sequential"):
        assert name in result.stdout


@pytest.mark.slow  # train, evaluate and predict as subprocesses on real MNIST
def test_train_evaluate_predict_end_to_end(tmp_path, shared_dir):
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    run = tmp_path / "run"
    result = scratchnn("train", "--preset", "seed", "--csv", csv, "--iterations", 60, "--out", run)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("Iteration") for line in lines) == 6  # one every 10 iterations
    assert "9,000 train / 1,000 dev" in result.stdout
    assert f"Model saved to {run / 'model.safetensors'}" in result.stdout
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "config.toml", "metrics.csv", "report.html",
                                                "training_curves.png", "confusion_matrix.png", "first_layer.png"}
    assert f"Report: {run / 'report.html'}" in result.stdout
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 6  # a row per evaluation

    result = scratchnn("evaluate", run)
    assert result.returncode == 0, result.stderr
    assert "dev set of csv" in result.stdout and "(1,000 images)" in result.stdout
    assert "Confusion matrix" in result.stdout and "Per-class accuracy" in result.stdout
    assert "misread" not in result.stdout  # the list only when asked for

    result = scratchnn("evaluate", run, "--mistakes", 3)
    assert result.returncode == 0, result.stderr
    wrong = round((1 - float(re.search(r"Accuracy: ([\d.]+)", result.stdout)[1])) * 1000)
    assert f"The 3 misread images it was surest of, of {wrong:,} (index: image N of the dev set" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[-3:]]
    confidences = [float(row[3]) for row in rows]
    assert confidences == sorted(confidences, reverse=True) and all(row[1] != row[2] for row in rows)
    shown = scratchnn("predict", run, "--index", rows[0][0])  # the same image, as predict reads it
    assert f"Prediction: {rows[0][2]} (probability " in shown.stdout
    assert f"True label: {rows[0][1]}   (wrong)" in shown.stdout

    png = tmp_path / "prediction.png"
    result = scratchnn("predict", run / "model.safetensors", "--index", 5, "--save", png)
    assert result.returncode == 0, result.stderr
    assert "Prediction:" in result.stdout and "True label:" in result.stdout
    assert len(result.stdout.splitlines()) >= 28  # the digit itself
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = scratchnn("predict", run, "--index", 1000)
    assert result.returncode == 1
    assert result.stderr.strip() == ("scratchnn predict: error: --index 1000 is out of range: "
                                     "the dev set has 1,000 images (0..999)")

    result = scratchnn("train", "--config", run / "config.toml", "--out", tmp_path / "again", "--quiet", "--no-report")
    assert result.returncode == 0, result.stderr
    assert not list((tmp_path / "again").glob("*.png")) and not (tmp_path / "again" / "report.html").exists()
    first, again = load(run), load(tmp_path / "again")  # the saved config repeats the run exactly
    for name, value in first.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], value, err_msg=name)


def test_offline_named_dataset_fails_fast_with_where_it_looked(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "SCRATCHNN_MIRRORS": f"http://127.0.0.1:{closed_port()}/",
           "SCRATCHNN_DATA": ""}
    start = time.perf_counter()
    result = scratchnn("train", "--dataset", "mnist", "--out", tmp_path / "run", env=env)
    assert time.perf_counter() - start < 60  # a hang guard (a refused port is instant), not a speed target
    assert result.returncode == 1
    *tried, error = result.stderr.strip().splitlines()  # each download said before it is tried
    assert [line.split(" into ")[0] for line in tried] == [f"Downloading {env['SCRATCHNN_MIRRORS']}"
                                                           "train-images-idx3-ubyte.gz"], result.stderr
    assert "Looked in" in error and "train-images-idx3-ubyte.gz" in error
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--hidden", "12,x"], "expected comma-separated integers"),
    (["train", "--lr", "-1", "--csv", "x.csv"], "--lr must be in (0, 1000000], got -1"),
    (["train", "--epochs", "1" + "0" * 400, "--csv", "x.csv"], "--epochs must be in [1, 1000000], got a 401-digit"),
    (["train", "--images", "a.gz"], "labels"),
    (["train", "--csv", "missing.csv"], "missing.csv"),
    (["evaluate", "nowhere/model.safetensors"], "no such model file"),
])
def test_bad_usage_gives_one_clear_line(tmp_path, args, message):
    result = scratchnn(*args, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_folder_the_system_cannot_make_is_one_line(tmp_path, shared_dir):
    """--out under a file: the file system's refusal is the error line, not a traceback."""
    (tmp_path / "a-file").write_text("in the way\n")
    result = scratchnn("train", "--preset", "seed", "--iterations", 1, "--out", tmp_path / "a-file" / "run",
                       "--csv", shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"scratchnn train: error: {tmp_path}/a-file/run: Not a directory "
                                                      "(part of the path is a file, not a folder)")


def test_a_network_too_big_to_build_is_one_line_and_leaves_no_run_folder(tmp_path, shared_dir):
    result = scratchnn("train", "--hidden", "1000000000", "--out", tmp_path / "run",
                       "--csv", shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("scratchnn train: error: this network cannot be built: ")
    assert not (tmp_path / "run").exists()


def test_a_network_no_machine_can_train_is_one_line_and_leaves_no_run_folder(tmp_path, shared_dir):
    # a full batch of 9,000 images through 8,192 channels at 26x26: 498 GB at least
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    result = scratchnn("train", "--preset", "cnn", "--conv", "8192", "--hidden", "16", "--batch-size", "0",
                       "--out", tmp_path / "run", "--csv", csv, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert re.match(r"scratchnn train: error: training needs at least 49\d\.\d GB of memory and this machine ", line)
    assert "; try --batch-size " in line or "too big to train here" in line
    assert not (tmp_path / "run").exists()


def test_a_named_dataset_reports_its_test_accuracy(tmp_path, shared_dir):
    # "fashion-mnist" from --data-dir: 300 training and 100 test images (real MNIST digits)
    from scratchnn.data.idx import read_idx, write_idx
    from scratchnn.io import read_tensors

    mnist = shared_dir / "datasets" / "mnist"
    images, labels = read_idx(mnist / "t10k-images-idx3-ubyte.gz"), read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for split, rows in (("train", slice(0, 300)), ("t10k", slice(300, 400))):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images[rows])
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels[rows])
    result = scratchnn("train", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "data", "--preset", "seed",
                       "--epochs", 20, "--dev-size", 50, "--out", tmp_path / "run", "--quiet", "--no-report")
    assert result.returncode == 0, result.stderr
    assert ", test accuracy 0." in result.stdout, result.stdout
    _, metadata = read_tensors(tmp_path / "run" / "model.safetensors")
    assert metadata["metrics"]["test_samples"] == 100 and 0 <= metadata["metrics"]["test_accuracy"] <= 1
    # the reported figures are the saved model's, measured on the 100 test images and nothing else
    model = load(tmp_path / "run")
    probs = model.predict_proba(images[300:400].reshape(100, -1).astype(np.float32) / 255)
    accuracy, loss = np.mean(probs.argmax(axis=1) == labels[300:400]), -np.mean(np.log(probs[np.arange(100), labels[300:400]]))
    assert metadata["metrics"]["test_accuracy"] == pytest.approx(accuracy), "test_accuracy is not the test set's"
    assert metadata["metrics"]["test_loss"] == pytest.approx(loss, rel=1e-4), "test_loss is not the test set's"
    assert f", test accuracy {accuracy:.4f}" in result.stdout, result.stdout


def command_names():
    """Every subcommand, as the parser registers them from cli/main.py's COMMANDS."""
    import argparse

    from scratchnn.cli.main import COMMANDS, build_parser

    names = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(names) == len(COMMANDS) >= 7, list(names)
    return list(names)


def test_a_finished_run_says_what_to_do_next(shared_dir, tmp_path):
    run = tmp_path / "run"
    result = scratchnn("train", "--preset", "seed", "--csv", shared_dir / "datasets/mnist/t10k-kaggle.csv.gz",
                       "--iterations", 20, "--eval-every", 10, "--out", run, "--no-report")
    assert result.returncode == 0, result.stderr
    tail = result.stdout[result.stdout.index("Next:"):]
    assert f"scratchnn evaluate {run}" in tail and f"scratchnn serve {run}" in tail
    assert "report.html" not in tail  # --no-report: nothing to open


def test_print_config_shows_what_a_run_would_train_with_and_trains_nothing(tmp_path):
    import dataclasses

    from scratchnn.data.augment import DIGITS
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.presets import get_preset

    result = scratchnn("train", "--preset", "cnn-best", "--epochs", "5", "--print-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "mine.toml").write_text(result.stdout.replace("p = 0.8}", "p = 0.5}"))
    printed = TrainConfig.load(tmp_path / "mine.toml")
    assert printed.epochs == 5 and printed.conv == get_preset("cnn-best").conv
    assert printed.build_augmentation() == dataclasses.replace(DIGITS, p=0.5)
    again = scratchnn("train", "--config", tmp_path / "mine.toml", "--print-config", cwd=tmp_path)
    assert again.stdout == result.stdout.replace("p = 0.8}", "p = 0.5}")  # read back as written
    assert not (tmp_path / "runs").exists()
    resumed = scratchnn("train", "--resume", tmp_path, "--print-config", cwd=tmp_path)
    assert resumed.returncode != 0 and "drop --print-config" in resumed.stderr


def test_print_config_keeps_its_notes_out_of_the_toml(tmp_path):
    """`--print-config > mine.toml` must give a file train can read: the notes go to stderr (the
    warm-up note went to stdout and made the file invalid TOML)."""
    from scratchnn.training.config import TrainConfig

    result = scratchnn("train", "--preset", "mlp", "--epochs", "1", "--kernel-size", "5", "--print-config",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Note:" not in result.stdout
    assert "Note: the mlp recipe's 1-epoch warm-up is as long as --epochs 1" in result.stderr
    assert ("Note: --kernel-size 5 does nothing here; it applies only to networks with convolutions (--conv)"
            in result.stderr)
    (tmp_path / "mine.toml").write_text(result.stdout)
    assert TrainConfig.load(tmp_path / "mine.toml").epochs == 1
    quiet = scratchnn("train", "--preset", "mlp", "--epochs", "1", "--kernel-size", "5", "--print-config", "--quiet",
                      cwd=tmp_path)
    assert quiet.stderr == "" and quiet.stdout == result.stdout


def test_a_path_after_an_option_joins_the_commands_list_of_paths():
    """Two audits: 'predict RUN --tta 8 photo.png' and 'predict RUN --digits single photo.png' said
    'unrecognized arguments: photo.png' (argparse takes a positional list in one piece)."""
    from scratchnn.cli.main import parse

    args = parse(["predict", "RUN", "--tta", "8", "a.png", "b.png"])
    assert args.paths == ["RUN", "a.png", "b.png"] and args.tta == 8
    assert parse(["evaluate", "A", "--tta", "4", "B"]).models == ["A", "B"]
    for argv in (["predict", "RUN", "--bogus", "a.png"], ["train", "--preset", "seed", "extra"]):
        with pytest.raises(SystemExit):  # a flag it does not know, or a word where no list is: refused as before
            parse(argv)


def test_a_home_folder_the_shell_left_unexpanded_is_the_home_folder(tmp_path, monkeypatch, capsys):
    """The CLI audit: `--out=~/runs/a` (bash expands no ~ after a flag's =) and a quoted '~/runs/a'
    made a folder named ~ in the current folder."""
    from scratchnn.cli.main import main, parse

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = parse(["train", "--out=~/runs/a", "--config", "~/mine.toml", "--seeds=0,1"])
    assert (args.out, args.config, args.seeds) == (tmp_path / "runs/a", tmp_path / "mine.toml", [0, 1])
    assert parse(["predict", "~/r", "~/p.png", "--save=x~.png"]).paths == [f"{tmp_path}/r", f"{tmp_path}/p.png"]
    assert main(["doctor", "~/gone"]) == 1
    assert f"{tmp_path / 'gone'}: no such folder" in capsys.readouterr().err and not (tmp_path / "~").exists()


def test_output_that_is_not_utf8_gets_the_math_in_ascii_instead_of_a_crash(tmp_path):
    """Windows' redirected output is cp1252: explain's Σ, ∂L/∂W and ‖grad‖ raised UnicodeEncodeError."""
    from PIL import Image

    from scratchnn.io import save
    from scratchnn.model import Sequential
    from scratchnn.nn import Dense, ReLU

    save(Sequential([Dense(784, 8, rng=0), ReLU(), Dense(8, 10, rng=1)]), tmp_path / "model.safetensors")
    one = np.zeros((28, 28), np.uint8)
    one[5:23, 12:16] = 255
    Image.fromarray(one).save(tmp_path / "one.png")
    result = subprocess.run([sys.executable, "-m", "scratchnn", "explain", str(tmp_path / "model.safetensors"),
                             "--image", str(tmp_path / "one.png"), "--label", "1"], capture_output=True,
                            env={**os.environ, "PYTHONIOENCODING": "cp1252"}, timeout=300)
    assert result.returncode == 0, result.stderr.decode("cp1252")
    out = result.stdout.decode("cp1252")
    assert "dL/dlogits = p - onehot(1)" in out and "log sum exp(shifted)" in out and "||grad||" in out, out


@pytest.mark.skipif(os.name != "posix", reason="a shell's >&-")
@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_a_command_started_with_its_output_closed_does_its_work(tmp_path, closed):
    """`cmd >&-` starts Python with sys.stdout None: explain died on sys.stdout.encoding, train on
    isatty() before its first epoch, evaluate's progress bar on a None stderr (the locale audit)."""
    from PIL import Image

    from scratchnn.io import save
    from scratchnn.model import Sequential
    from scratchnn.nn import Dense, ReLU

    save(Sequential([Dense(784, 8, rng=0), ReLU(), Dense(8, 10, rng=1)]), tmp_path / "model.safetensors")
    one = np.zeros((28, 28), np.uint8)
    one[5:23, 12:16] = 255
    Image.fromarray(one).save(tmp_path / "one.png")
    command = shlex.join([sys.executable, "-m", "scratchnn", "explain", str(tmp_path / "model.safetensors"),
                          "--image", str(tmp_path / "one.png"), "--label", "1"])
    result = subprocess.run(["bash", "-c", f"{command} {closed}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert ("as the model sees it" in result.stdout) == (closed == "2>&-")


def test_plain_output_leaves_streams_with_their_own_error_handling_alone():
    """A C locale's stdout (ASCII, surrogateescape) was left alone too: `explain`, `doctor --rules`
    and every augmented train ("shifts ±2 px") died there (the locale audit); it writes plain
    ASCII now, and a file name's undecodable bytes as they were."""
    import io

    from scratchnn.cli.console import plain_output

    cp1252, utf8 = (io.TextIOWrapper(io.BytesIO(), encoding=name) for name in ("cp1252", "utf-8"))
    escaping = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="surrogateescape")  # a C locale's stdout
    own = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="backslashreplace")
    plain_output(cp1252, utf8, escaping, own, None)
    assert (cp1252.errors, utf8.errors, escaping.errors, own.errors) == (
        "scratchnn-plain", "surrogateescape", "scratchnn-plain", "backslashreplace")
    cp1252.write("γ·x̂ + β ≤ ‖W‖ é")
    cp1252.flush()
    assert cp1252.buffer.getvalue().decode("cp1252") == "gamma·x^ + beta <= ||W|| é"
    escaping.write("shifts ±2 px, turns ±12°, 2×2 · zéro in d\udcff/")
    escaping.flush()
    assert escaping.buffer.getvalue() == b"shifts +-2 px, turns +-12 deg, 2x2 * zero in d\xff/"


@pytest.mark.skipif(os.name != "posix", reason="a pipe closed by its reader")
def test_training_into_a_closed_pipe_says_why_it_stopped(tmp_path, shared_dir):
    """The CLI audit: `train ... | head -3` ended training at epoch 1 with exit 1 and not a word."""
    reader_gone = subprocess.Popen([sys.executable, "-m", "scratchnn", "train", "--preset", "mlp", "--epochs", "200",
                                    "--csv", str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), "--train-size",
                                    "500", "--out", str(tmp_path / "run"), "--no-report"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader_gone.stdout.readline()  # the first line, as head -1 would, then the reader quits
    reader_gone.stdout.close()
    _, err = reader_gone.communicate(timeout=300)
    assert reader_gone.returncode == 1
    assert "scratchnn train: stopped: its output was closed (piped into a program that quit" in err, err
    # and what Ctrl+C says: what the run keeps and how to go on (the locale audit: no word of it)
    resume = f"'scratchnn train --resume {tmp_path / 'run'} --no-report'"
    assert f"the run folder {tmp_path / 'run'} " in err and resume in err, err
    printed = subprocess.run(["bash", "-c", shlex.join([sys.executable, "-m", "scratchnn", "train", "--print-config"])
                              + " | true"], capture_output=True, text=True, timeout=300)
    assert "stopped" not in printed.stderr, printed.stderr  # nothing was training


def test_next_steps_quote_a_run_folder_a_shell_would_split():
    """The plots audit: a run folder named with a space or '<' printed commands that cannot be pasted."""
    from pathlib import Path

    from scratchnn.cli.train_cmd import next_steps

    lines = next_steps(Path("runs/my run<1>"), report=True)
    assert "open 'runs/my run<1>/report.html'" in lines and "scratchnn evaluate 'runs/my run<1>'" in lines
    assert "scratchnn serve runs/plain" in next_steps(Path("runs/plain"), report=False)
