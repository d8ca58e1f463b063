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
