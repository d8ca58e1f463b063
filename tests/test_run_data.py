"""Run folders that travel and data that must fit: absolute paths and SHA-256 in config.toml, older
relative configs still found, a moved or changed data file named, images of the wrong size refused,
no run folder left by a failed start."""
import gzip
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data import write_idx
from scratchnn.insight.report import FIGURE_NAMES, REPORT_FILE
from scratchnn.io import MODEL_FILE, load, read_metadata, save
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import train_run
from scratchnn.training.run_data import file_sha256

pytestmark = pytest.mark.slow  # real runs as subprocesses, from other folders (about 10 s)


def scratchnn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scratchnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def base(shared_dir, tmp_path_factory):
    """A folder holding digits.csv (500 real MNIST rows) and runs/tiny, trained with cwd = the folder
    and the CSV given by a relative path, as a user types it (augmented: its report has every figure)."""
    folder = tmp_path_factory.mktemp("travel")
    with gzip.open(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz", "rt") as f:
        (folder / "digits.csv").write_text("".join(next(f) for _ in range(501)))
    result = scratchnn("train", "--csv", "digits.csv", "--hidden", "16", "--optimizer", "adam", "--lr", "0.003",
                       "--epochs", "2", "--batch-size", "50", "--dev-size", "100", "--out", "runs/tiny", "--quiet",
                       "--augment", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_config_toml_records_absolute_paths_with_their_sha256(base):
    config = TrainConfig.load(base / "runs" / "tiny" / "config.toml")
    assert config.csv == str(base / "digits.csv")
    assert config.csv_sha256 == file_sha256(base / "digits.csv")
    assert read_metadata(base / "runs" / "tiny")["image_shape"] == [28, 28]


def test_evaluate_predict_and_report_work_from_another_directory(base, tmp_path):
    run = base / "runs" / "tiny"
    result = scratchnn("evaluate", run, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(100 images)" in result.stdout
    result = scratchnn("predict", run, "--index", "3", cwd=tmp_path)
    assert result.returncode == 0 and "True label" in result.stdout, result.stderr
    copy = shutil.copytree(run, tmp_path / "copy")
    result = scratchnn("report", copy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all((copy / f"{name}.png").exists() for name in FIGURE_NAMES)


def with_relative_paths(run, tmp_path, value="digits.csv"):
    """A copy of ``run`` as an older scratchnn saved it: csv relative to where train ran, no digest."""
    copy = shutil.copytree(run, tmp_path / "runs" / "old")
    metadata = read_metadata(copy)
    metadata["config"].update(csv=value, csv_sha256="")
    del metadata["image_shape"]
    save(load(copy), copy / MODEL_FILE, metadata={k: v for k, v in metadata.items() if k != "architecture"})
    return copy


def test_an_older_run_with_relative_paths_is_found_from_anywhere(base, tmp_path):
    old = with_relative_paths(base / "runs" / "tiny", base / "older")  # base/older/runs/old: digits.csv two up
    shutil.copy(base / "digits.csv", base / "older" / "digits.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = scratchnn("evaluate", old, cwd=elsewhere)  # not in cwd: found beside runs/
    assert result.returncode == 0, result.stderr
    assert f"csv {base / 'older' / 'digits.csv'}" in result.stdout


def test_a_moved_or_changed_data_file_is_named_as_such(base, tmp_path, capsys):
    data = tmp_path / "data.csv"
    shutil.copy(base / "digits.csv", data)
    run = tmp_path / "run"
    train_run(TrainConfig(hidden=[8], epochs=1, batch_size=50, dev_size=100, csv=str(data)), run,
              log=lambda line: None, progress=False)
    digest = file_sha256(data)
    data.write_text(data.read_text().replace(",0,", ",1,", 1))
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"the run was trained on {data} (sha256 {digest[:12]}...); that file has changed" in err
    assert len(err.splitlines()) == 1
    data.unlink()
    assert main(["evaluate", str(run)]) == 1
    assert "that file is missing" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--csv", str(base / "digits.csv")]) == 0  # other data, given explicitly


def odd_images(folder, height, width, n=120):
    rng = np.random.default_rng(0)
    write_idx(folder / f"img{height}x{width}.idx", rng.integers(0, 256, (n, height, width)).astype(np.uint8))
    write_idx(folder / "labels.idx", rng.integers(0, 10, n).astype(np.uint8))
    return folder / f"img{height}x{width}.idx", folder / "labels.idx"


@pytest.mark.parametrize("height, width", [(56, 14), (5, 5)])
@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--index", "0"], ["explain", "--index", "0"]])
def test_images_of_another_size_are_refused_naming_the_file(base, tmp_path, capsys, height, width, command):
    images, labels = odd_images(tmp_path, height, width)
    run = base / "runs" / "tiny"
    assert main([command[0], str(run), *command[1:], "--images", str(images), "--labels", str(labels)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"scratchnn {command[0]}: error: {images}: images are {height}x{width}, the model takes 28x28 "
                   "images; give images of the size it was trained on")


def test_an_older_mlp_without_image_shape_takes_28x28_only(base, tmp_path, capsys):
    old = with_relative_paths(base / "runs" / "tiny", tmp_path, value=str(base / "digits.csv"))
    assert "image_shape" not in read_metadata(old)
    images, labels = odd_images(tmp_path, 56, 14)
    assert main(["evaluate", str(old), "--images", str(images), "--labels", str(labels)]) == 1
    assert "images are 56x14, the model takes 28x28" in capsys.readouterr().err
    assert main(["evaluate", str(old)]) == 0


def test_report_keeps_a_complete_page_when_the_data_is_gone(base, tmp_path):
    run = shutil.copytree(base / "runs" / "tiny", tmp_path / "run")
    data = tmp_path / "digits.csv"
    shutil.copy(base / "digits.csv", data)
    metadata = read_metadata(run)
    metadata["config"]["csv"] = str(data)
    save(load(run), run / MODEL_FILE, metadata={k: v for k, v in metadata.items() if k != "architecture"})
    assert scratchnn("report", run, cwd=tmp_path).returncode == 0
    page = (run / REPORT_FILE).read_bytes()
    data.unlink()
    result = scratchnn("report", run, cwd=tmp_path)
    assert result.returncode == 1 and "left as it was" in result.stderr and "that file is missing" in result.stderr
    assert (run / REPORT_FILE).read_bytes() == page and all((run / f"{n}.png").exists() for n in FIGURE_NAMES)
    assert "give the data explicitly with --csv" in result.stderr  # which report takes: the file moved
    shutil.copy(base / "digits.csv", tmp_path / "moved.csv")
    assert scratchnn("report", run, "--csv", "moved.csv", cwd=tmp_path).returncode == 0
    assert "moved.csv" in (run / REPORT_FILE).read_text() and all((run / f"{n}.png").exists() for n in FIGURE_NAMES)


@pytest.mark.parametrize("args, message", [
    (["--csv", "missing.csv"], "missing.csv: no such file"),
    (["--images", "images.idx"], "--images needs --labels"),
    (["--dataset", "mnist", "--data-dir", "empty"], "Looked in"),
], ids=["missing csv", "images without labels", "offline dataset"])
def test_a_failed_train_leaves_no_run_folder(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    with socket.socket() as s:  # a port nothing listens on: the mirrors are unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env_free = {"SCRATCHNN_MIRRORS": f"http://127.0.0.1:{port}/", "XDG_CACHE_HOME": str(tmp_path / "cache"),
                "SCRATCHNN_DATA": ""}
    result = subprocess.run([sys.executable, "-m", "scratchnn", "train", *args, "--epochs", "3"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, **env_free})
    *said, error = result.stderr.strip().splitlines()  # each download said before it is tried, then the error
    assert result.returncode == 1 and all(line.startswith("Downloading ") for line in said), result.stderr
    assert message in error
    assert not (tmp_path / "runs").exists()
    result = subprocess.run([sys.executable, "-m", "scratchnn", "train", *args, "--epochs", "3", "--out", "mine"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, **env_free})
    assert result.returncode == 1 and not (tmp_path / "mine").exists()


def test_evaluate_on_an_unfinished_run_says_resume(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"")
    assert main(["evaluate", str(tmp_path / "run")]) == 1
    assert f"complete it with 'scratchnn train --resume {tmp_path / 'run'}'" in capsys.readouterr().err


def test_a_model_saved_from_python_is_evaluated_on_data_the_user_names(tmp_path, capsys, shared_dir):
    """The engineer's audit: such a model records no training data, and evaluate tried three MNIST
    download mirrors, unasked."""
    from scratchnn import Dense, Sequential

    path = tmp_path / "mine.safetensors"
    save(Sequential([Dense(784, 10, rng=0)]), path)
    for command in (["evaluate", str(path)], ["predict", str(path), "--index", "3"],
                    ["explain", str(path), "--index", "3"]):
        assert main(command) == 1
        assert "records no training data (a model saved from Python" in capsys.readouterr().err
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    assert main(["evaluate", str(path), "--csv", str(csv), "--set", "all"]) == 0
    assert "Accuracy:" in capsys.readouterr().out


def test_a_home_folder_in_a_config_files_data_path_is_expanded(tmp_path, monkeypatch):
    """The CLI audit: csv = "~/digits.csv" in a config file became <current folder>/~/digits.csv."""
    from scratchnn.training.run_data import locate_data

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    located = locate_data(TrainConfig(csv="~/digits.csv", data_dir="~/data"), tmp_path / "runs" / "x")
    assert located.csv == str(tmp_path / "home" / "digits.csv")
    assert located.data_dir == str(tmp_path / "home" / "data")
    assert locate_data(TrainConfig(csv="digits.csv"), tmp_path).csv == str(tmp_path / "digits.csv")  # unchanged
