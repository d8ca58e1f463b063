"""A preset's dev accuracy over several train/dev splits, with and without TTA, and their mean.

On 1,000 dev digits one digit is 0.1 point, and which 1,000 digits are held out moves a run more
than most changes to a recipe do (the README's "What 1,000 dev digits can tell"). This trains the
preset once per seed S, each on its own split (S draws the weights and the split, as `scratchnn
train --seed S` does), into OUT/seed-S, reusing a finished run and resuming an interrupted one;
then it scores every model on its own dev set, plain and with TTA, and prints one row per split,
the mean with its standard error, and how many splits reach --line. It asserts nothing.

    python benchmarks/dev_splits.py                                 # cnn-best, seeds 0-8, TTA x8 and x16
    python benchmarks/dev_splits.py --seeds 0-4 --workers 2         # two runs at a time, one BLAS thread each
    python benchmarks/dev_splits.py --preset cnn --epochs 2 --seeds 0-2 --out /tmp/splits   # a quick look

To compare a variant of the recipe, give its `train` flags and a folder of its own (finished runs
in --out are reused whatever their flags); --split-seed N keeps every run on split N (the seeds
then draw only the weights, order and augmentation), to see how one dev set moves:

    python benchmarks/dev_splits.py --workers 2 --train-args "--label-smoothing 0.1" --out /tmp/ls
    python benchmarks/dev_splits.py --workers 2 --split-seed 0 --seeds 0,3,4 --out /tmp/split0
"""
from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import scratchnn  # noqa: F401  before NumPy, as the CLI: OpenBLAS's idle threads sleep (host/openblas_idle.py)
import numpy as np

from scratchnn.data import scale_pixels
from scratchnn.data.tta import check_tta
from scratchnn.ensemble import load_ensemble
from scratchnn.io import MODEL_FILE
from scratchnn.training.checkpoint import CHECKPOINT_FILE
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import PRESETS
from scratchnn.training.run_data import load_set

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared/datasets/mnist/t10k-kaggle.csv.gz"


OWN_FLAGS = {"--preset", "--csv", "--seed", "--seeds", "--split-seed", "--out", "--resume", "--epochs", "--threads"}


def seed_list(text: str) -> list[int]:
    """"0-8" or "0,3,4" (or both: "0-2,5") as a sorted list of distinct seeds."""
    seeds = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            seeds.update(range(int(first), int(last or first) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"seeds are like 0-8 or 0,3,4; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, like 0-8; got {text!r}")
    return sorted(seeds)


def train_command(args, seed: int, folder: Path) -> list[str]:
    """`scratchnn train` for one split, or `--resume` when an interrupted run left its checkpoint."""
    if (folder / CHECKPOINT_FILE).exists():
        return [sys.executable, "-m", "scratchnn", "train", "--resume", str(folder), "--no-report"]
    command = [sys.executable, "-m", "scratchnn", "train", "--preset", args.preset, "--csv", str(args.csv),
               "--seed", str(seed), "--out", str(folder), "--no-report"]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    if args.split_seed >= 0:
        command += ["--split-seed", str(args.split_seed)]
    command += shlex.split(args.train_args)
    if args.workers > 1:  # side by side, each on one BLAS thread (two all-core runs slow each other ~3x)
        command += ["--threads", "1"]
    return command


def train(args, seed: int) -> Path:
    folder = args.out / f"seed-{seed}"
    if (folder / MODEL_FILE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(folder.parent / f"seed-{seed}.log", "a") as log:
        done = subprocess.run(train_command(args, seed, folder), stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"seed {seed}: training failed (exit {done.returncode}); see {folder.parent}/seed-{seed}.log")
    print(f"seed {seed}: trained in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def score(folder: Path, tta: list[int]) -> tuple[int, list[float]]:
    """(dev size, [plain accuracy, then one per TTA count]) of the run in ``folder`` on its own dev set."""
    member = load_ensemble([folder]).members[0]
    config = TrainConfig.from_dict(member.metadata["config"])
    images, labels, _, _ = load_set(config, "dev", model=member.model, metadata=member.metadata)
    x, labels = scale_pixels(images, member.model.input_shape), labels.astype(np.intp)
    return len(labels), [float(np.mean(member.model.predict(x, tta=n, views=member.views) == labels))
                         for n in [1, *tta]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cnn-best")
    parser.add_argument("--csv", type=Path, default=CSV, help="the labelled digits (default: ../shared's MNIST CSV)")
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-8"), help="e.g. 0-8 or 0,3,4 (default 0-8)")
    parser.add_argument("--tta", default="8,16", help="TTA view counts to score beside the plain one (default 8,16)")
    parser.add_argument("--epochs", type=int, default=0, help="override the preset's epochs (0: keep them)")
    parser.add_argument("--workers", type=int, default=1, help="runs trained at a time (each on 1 BLAS thread if > 1)")
    parser.add_argument("--line", type=float, default=0.994, help="the accuracy to count splits against (0.994)")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default runs/splits/PRESET)")
    parser.add_argument("--split-seed", type=int, default=-1,
                        help="train every run on this one split (default -1: each seed its own split)")
    parser.add_argument("--train-args", default="", help='more `scratchnn train` flags, e.g. "--label-smoothing 0.1"')
    args = parser.parse_args(argv)
    tta = [check_tta(int(n)) for n in args.tta.split(",") if n.strip()] if args.tta.strip() else []
    args.out = args.out or Path("runs/splits") / args.preset
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        flags = shlex.split(args.train_args)
    except ValueError as error:
        parser.error(f"--train-args: {error}")
    taken = sorted(set(flags) & OWN_FLAGS)
    if taken:
        parser.error(f"--train-args: give {', '.join(taken)} with this script's own flags (it sets them per run)")
    with ThreadPoolExecutor(args.workers) as pool:
        folders = list(pool.map(lambda seed: train(args, seed), args.seeds))
    columns = ["dev"] + [f"TTA x{n}" for n in tta]
    scores = [score(folder, tta) for folder in folders]
    size, rows = scores[0][0], [accuracies for _, accuracies in scores]
    where = "its own split" if args.split_seed < 0 else f"split {args.split_seed}"
    print(f"\n{args.preset}{' ' + args.train_args if args.train_args else ''}: dev accuracy of each run on "
          f"{where} ({size:,} dev digits; one digit = {100 / size:.2g} point)")
    print("seed   " + "".join(f"{name:>10}" for name in columns))
    for seed, accuracies in zip(args.seeds, rows):
        print(f"{seed:<7}" + "".join(f"{a:>10.4f}" for a in accuracies))
    table = np.array(rows)
    mean = table.mean(axis=0)
    print("mean   " + "".join(f"{m:>10.4f}" for m in mean))
    if len(rows) > 1:  # the standard error of the mean over splits: the run-to-run spread / sqrt(runs)
        print("s.e.   " + "".join(f"{s:>10.4f}" for s in table.std(axis=0, ddof=1) / math.sqrt(len(rows))))
    mistakes = np.rint((1 - table) * size).sum(axis=0).astype(int)  # all runs' mistakes, the figure to compare
    print("wrong  " + "".join(f"{n:>10}" for n in mistakes))
    reached = (table >= args.line - 1e-9).sum(axis=0)  # (a tolerance: 994/1000 is 0.994 in any rounding)
    print(f"{f'>={args.line:g}':<7}" + "".join(f"{f'{n}/{len(rows)}':>10}" for n in reached))
    return 0


if __name__ == "__main__":
    sys.exit(main())
