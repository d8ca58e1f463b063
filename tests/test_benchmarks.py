"""Every benchmark script still starts: its imports resolve and ``--help`` works (they assert
nothing about speed and are run by hand, so a moved function would otherwise go unnoticed)."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=[path.stem for path in BENCHMARKS])
def test_the_benchmark_starts(script):
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout.lower()


def test_the_products_floor_runs_the_winograd_products_as_the_pipelines_do(monkeypatch):
    """mlp_benchmark's "products alone" line: on 2 threads each Winograd layer's products run
    piece by piece, every tile of the batch once per product (dU's sum over pieces counts them)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS[0].parent))
    monkeypatch.setattr("scratchnn.fast.threads.blas_thread_count", lambda: 2)
    import mlp_benchmark
    import numpy as np

    model = mlp_benchmark.scratchnn_model("cnn-best", 0)
    counted = []
    matmul = np.matmul

    def counting(a, b, **kwargs):
        if a.ndim == 3 and a.shape[0] == 81 and "out" in kwargs:  # a piece's M = V·U or dV = dM·Uᵀ
            counted.append(a.shape[1])
        return matmul(a, b, **kwargs)

    monkeypatch.setattr(np, "matmul", counting)
    seconds = mlp_benchmark.products_seconds_per_epoch(model, batches=1, repeats=1)
    assert seconds > 0
    tiles = {28: 4 * 4, 14: 2 * 2}  # F(7x7, 3x3) tiles per image at 28x28 and 14x14
    per_step = sum(counted) / 2  # the warm-up step and the timed one
    assert per_step == 2 * mlp_benchmark.BATCH * (tiles[28] + 2 * tiles[14])  # M and dV, three layers


def test_dev_splits_trains_each_split_once_and_scores_it_on_its_own_dev_set(shared_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS[0].parent))
    import dev_splits

    from scratchnn.io import read_metadata

    assert dev_splits.seed_list("0-2,5,1") == [0, 1, 2, 5]
    argv = ["--preset", "seed", "--epochs", "30", "--seeds", "0,1", "--tta", "2", "--csv",
            str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), "--out", str(tmp_path), "--line", "0.3"]
    assert dev_splits.main(argv) == 0
    first = capsys.readouterr().out
    assert "seed 0: trained" in first and "seed 1: trained" in first
    rows = {line.split()[0]: line.split()[1:] for line in first.splitlines() if line[:1].isdigit()}
    for seed in ("0", "1"):  # the plain column is the run's own final dev accuracy
        metrics = read_metadata(tmp_path / f"seed-{seed}" / "model.safetensors")["metrics"]
        assert float(rows[seed][0]) == pytest.approx(metrics["dev_accuracy"], abs=5e-5)
    assert rows["0"] != rows["1"]  # two seeds, two splits
    assert ">=0.3" in first and "2/2" in first
    wrong = next(line.split()[1:] for line in first.splitlines() if line.startswith("wrong"))
    assert int(wrong[0]) == sum(round((1 - float(rows[seed][0])) * 1000) for seed in ("0", "1"))
    assert dev_splits.main(argv) == 0  # finished runs are reused, not trained again
    again = capsys.readouterr().out
    assert "trained" not in again
    assert again.strip() == first[first.index("\n\n"):].strip()
    with pytest.raises(SystemExit):  # the script sets these itself, per run
        dev_splits.main(argv + ["--train-args", "--seed 4"])
    assert "give --seed with this script's own flags" in capsys.readouterr().err


def test_dev_splits_resumes_an_interrupted_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS[0].parent))
    import argparse

    import dev_splits

    from scratchnn.training.checkpoint import CHECKPOINT_FILE

    folder = tmp_path / "seed-3"
    args = argparse.Namespace(preset="cnn-best", csv=tmp_path / "d.csv", epochs=0, workers=2, split_seed=-1,
                              train_args="")
    assert dev_splits.train_command(args, 3, folder)[3:] == [
        "train", "--preset", "cnn-best", "--csv", str(tmp_path / "d.csv"), "--seed", "3", "--out", str(folder),
        "--no-report", "--threads", "1"]  # side by side: one BLAS thread each
    variant = argparse.Namespace(**{**vars(args), "split_seed": 0, "train_args": "--label-smoothing 0.1"})
    assert dev_splits.train_command(variant, 3, folder)[-6:] == [
        "--split-seed", "0", "--label-smoothing", "0.1", "--threads", "1"]  # every run on split 0, with the variant's flags
    folder.mkdir()
    (folder / CHECKPOINT_FILE).write_bytes(b"")
    assert dev_splits.train_command(args, 3, folder)[3:] == ["train", "--resume", str(folder), "--no-report"]


def test_memory_bound_measures_a_network_in_a_process_of_its_own(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS[0].parent))
    import memory_bound

    figures = memory_bound.measure("mlp", {"hidden": [64], "epochs": 1}, 256, fast=True)
    assert 0 < figures["bound"] <= figures["traced"] and figures["grown"] >= 0
