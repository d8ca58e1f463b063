"""Helpers of the sweep tests: a small slice of real digits, the CLI in a subprocess, the study read back."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# small and quick: a 32-unit MLP for 2 epochs on 1,500 training and 500 dev digits
SMALL = ["--dev-size", "500", "--epochs", "2", "--hidden", "32"]
SPACE = "lr = {low = 3e-4, high = 1e-2, log = true}\ndropout = {low = 0.0, high = 0.5}\n"
# The CLI with Dask's Client giving up on an unreachable scheduler after 1 s: scratchnn asks for 15 s,
# and Dask retries a refused connection for all of it (45 s idle over the tests of tcp://127.0.0.1:1).
REFUSED_QUICKLY = """
import sys

import distributed

from scratchnn.cli.main import main


class Client(distributed.Client):
    def __init__(self, *args, timeout=None, **kwargs):
        super().__init__(*args, timeout="1s", **kwargs)


distributed.Client = Client
sys.exit(main(sys.argv[1:]))
"""


def write_digits(shared_dir: Path, path: Path, count: int = 2000) -> Path:
    """The first ``count`` rows of the real MNIST test set as a small Kaggle CSV."""
    with gzip.open(shared_dir / "datasets" / "mnist" / "t10k-kaggle.csv.gz", "rt") as file:
        lines = [next(file) for _ in range(count + 1)]
    path.write_text("".join(lines))
    return path


def env() -> dict:
    """This checkout's source first on the path, for the command and every Dask process it starts."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def scratchnn(*args, timeout: float = 300, threads: int | None = None, script: str | None = None,
              **kwargs) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; ``threads``: its BLAS threads (OpenBLAS and MKL read OMP_NUM_THREADS);
    ``script``: Python code that runs the CLI in its place (REFUSED_QUICKLY)."""
    pinned = {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)} if threads else {}
    command = [sys.executable, *(["-c", script] if script else ["-m", "scratchnn"]), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**env(), **pinned}, timeout=timeout,
                          **kwargs)


def study_trials(sweep_dir: Path):
    """Every trial of the sweep's study, read straight from its journal file."""
    from scratchnn.tune.study import open_study, read_sweep_folder

    folder = read_sweep_folder(sweep_dir)
    return open_study(folder.storage(), folder.seed, name=folder.study).get_trials()
