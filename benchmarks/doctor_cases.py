"""Misconfigured runs made with ordinary flags: does the doctor's first finding name the cause?

Each case is a `scratchnn train` command line (a preset and flags, no --fault) that a learner
could plausibly type, with the cause a person would name. The script trains each one on the
9,000/1,000 split of a CSV (default: the 10,000 shared MNIST digits) for at most 5 epochs
(100 iterations for full batch), reads only the run folder's tables (diagnose_run) and prints
the first error or warning beside the expected cause, then the score. It asserts nothing.

With ``--healthy``, runs that should train well (each preset's own recipe, and ordinary
changes a learner makes to it: another optimizer, batch size, schedule, width, activation or seed)
are trained the same way and every error or warning is printed: the doctor's false alarms.

With ``--follow``, each case is trained again with the first flags its first finding's fix names
(fitted to the run: "lower --lr from 10 to 0.1" is followed as ``--lr 0.1``), and the second run's
first finding and dev accuracy are printed: does a learner who does what the doctor says get a
healthy run?

    python benchmarks/doctor_cases.py                  # all cases
    python benchmarks/doctor_cases.py --only lr        # the cases whose name contains "lr"
    python benchmarks/doctor_cases.py --follow         # and train each again as its fix says
    python benchmarks/doctor_cases.py --healthy        # good runs: does the doctor stay quiet?
    python benchmarks/doctor_cases.py --cnn --only cnn # the same mistakes in convolutional networks
"""
from __future__ import annotations

import argparse
import csv
import gzip
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import scratchnn  # noqa: F401  (before NumPy: it asks OpenBLAS's idle threads to sleep)
import numpy as np

from scratchnn.cli.main import parse
from scratchnn.cli.train_cmd import resolve_config
from scratchnn.doctor import diagnose_run
from scratchnn.errors import DataError, TrainingDiverged
from scratchnn.training.run import train_run
from scratchnn.training.run_health import run_settings

SHARED_CSV = Path(__file__).resolve().parents[2] / "shared/datasets/mnist/t10k-kaggle.csv.gz"
MINI = "--batch-size 128 --eval-every 1 --epochs 5"

# name: (flags after `scratchnn train`, the rule that names the cause)
CASES = {
    "zero weights (seed)": ("--preset seed --init zeros --epochs 100", "symmetric-units"),
    "zero weights (mlp)": ("--preset mlp --init zeros --epochs 5", "symmetric-units"),
    "lr 100x too high (seed)": ("--preset seed --lr 10 --epochs 100", "lr-too-high"),
    "lr 500x too high (mlp)": ("--preset mlp --lr 1 --epochs 5", "lr-too-high"),
    "lr 10,000x too low (seed)": ("--preset seed --lr 1e-5 --epochs 100", "lr-too-low"),
    "lr 20,000x too low (mlp)": ("--preset mlp --lr 1e-7 --epochs 5", "lr-too-low"),
    # too low, but the loss still moves: learning at a crawl (both were called healthy before)
    "lr 1,000x too low (seed)": ("--preset seed --lr 1e-4 --epochs 100", "lr-too-low"),
    "lr 100x too low (mlp)": ("--preset mlp --lr 2e-5 --epochs 5", "lr-too-low"),
    "deep sigmoid, tutorial init": (f"--preset seed --hidden 128,128,128,128,128 --activation sigmoid {MINI}",
                                    "vanishing-gradients"),
    "deep tanh, tutorial init": (f"--preset seed --hidden 512,512,512 --activation tanh {MINI}", "saturated"),
    "tutorial init, no batch norm (mlp)": ("--preset mlp --init seed_uniform --no-batchnorm --epochs 5",
                                           "large-init"),
    "labels shuffled in the CSV": ("--preset mlp --epochs 5 --csv {shuffled}", "memorising"),
    # the doctor audit's (each called healthy, or misnamed, before)
    "lr 100x too low (seed)": ("--preset seed --lr 1e-3 --epochs 100", "lr-too-low"),
    "lr 100x too low (mlp, SGD)": ("--preset mlp --optimizer sgd --lr 1e-3 --epochs 5", "lr-too-low"),
    "dropout 0.95 (mlp)": ("--preset mlp --dropout 0.95 --epochs 5", "train-below-dev"),
    # the CSV reader refuses a file of 0/1 pixels before training (it was the doctor's [unscaled-inputs])
    "pixels stored as 0 and 1 (seed)": ("--preset seed --epochs 100 --csv {binary}", "refused"),
}
# The same mistakes in convolutional networks (--cnn: each epoch takes seconds, not a fraction of one)
CNN_CASES = {
    "zero weights (cnn)": ("--preset cnn --init zeros --epochs 2", "symmetric-units"),
    "lr 100x too high (cnn)": ("--preset cnn --lr 0.2 --epochs 2", "lr-too-high"),
    "lr 10,000x too low (lenet5, SGD)": ("--preset lenet5 --optimizer sgd --lr 1e-5 --epochs 2", "lr-too-low"),
    "unreadable augmentation (cnn)": ("--preset cnn --augmentation rotate=180,shift=8,scale=0.5 --epochs 2",
                                      "unreadable-augmentation"),
}

# name: flags of a run that should train well (at most 5 epochs, 100 full-batch iterations)
HEALTHY = {
    "seed, the tutorial's 500 iterations": "--preset seed",
    "seed, 1 hidden layer of 64": "--preset seed --hidden 64 --epochs 100",
    "seed, he_normal init": "--preset seed --init he_normal --epochs 100",
    "seed, --lr 0.5 (ends better than 0.1)": "--preset seed --lr 0.5",
    "seed, mini-batches of 128": f"--preset seed {MINI}",
    "mlp": "--preset mlp --epochs 5",
    "mlp, seed 1": "--preset mlp --epochs 5 --seed 1",
    "mlp, batch 32": "--preset mlp --epochs 5 --batch-size 32",
    "mlp, batch 512": "--preset mlp --epochs 5 --batch-size 512",
    "mlp, SGD momentum 0.9 lr 0.05": "--preset mlp --epochs 5 --optimizer sgd --momentum 0.9 --lr 0.05",
    "mlp, SGD lr 0.1": "--preset mlp --epochs 5 --optimizer sgd --lr 0.1",
    "mlp, Adam lr 1e-3": "--preset mlp --epochs 5 --optimizer adam --lr 1e-3",
    "mlp, RMSprop lr 1e-3": "--preset mlp --epochs 5 --optimizer rmsprop --lr 1e-3",
    "mlp, one-cycle": "--preset mlp --epochs 5 --schedule one-cycle",
    "mlp, constant rate": "--preset mlp --epochs 5 --schedule constant --warmup 0",
    "mlp, no batch norm": "--preset mlp --epochs 5 --no-batchnorm",
    "mlp, tanh, glorot": "--preset mlp --epochs 5 --activation tanh --init glorot_uniform",
    "mlp, leaky-relu": "--preset mlp --epochs 5 --activation leaky-relu",
    "mlp, no dropout": "--preset mlp --epochs 5 --dropout 0 --input-dropout 0",
    "mlp, 3,000 images": "--preset mlp --epochs 5 --train-size 3000",
    "deep-mlp": "--preset deep-mlp --epochs 5",
    "lenet5": "--preset lenet5 --epochs 3",
    "cnn": "--preset cnn --epochs 2",
}


def shuffled_labels_csv(source: Path, folder: Path, seed: int = 0) -> Path:
    """The same images with their labels permuted: labels that carry no signal."""
    with gzip.open(source, "rt") as lines:
        header, *rows = lines.read().splitlines()
    labels = [row.split(",", 1)[0] for row in rows]
    labels = [labels[i] for i in np.random.default_rng(seed).permutation(len(labels))]
    path = folder / "shuffled-labels.csv"
    path.write_text("\n".join([header, *(f"{label},{row.split(',', 1)[1]}" for label, row in zip(labels, rows))]) + "\n")
    return path


def binary_pixels_csv(source: Path, folder: Path) -> Path:
    """The same digits with each pixel stored as 0 or 1 (ink where it was above 127): read as
    0..255 and divided by 255, they reach the network as 0 and 0.004."""
    with gzip.open(source, "rt") as lines:
        header, *rows = lines.read().splitlines()
    path = folder / "binary-pixels.csv"
    path.write_text("\n".join([header, *(",".join([label, *("1" if int(v) > 127 else "0" for v in pixels)])
                                         for label, *pixels in (row.split(",") for row in rows))]) + "\n")
    return path


def fix_flags(fix: str) -> list[str]:
    """The flags of a fix's first choice: 'lower --lr from 10 to 0.1, ...' -> ['--lr', '0.1'];
    '--init he_normal (now zeros), --batchnorm ...' -> ['--init', 'he_normal']; [] if it names none."""
    first = re.split(r", | or |; | \(", fix)[0]
    moved = re.search(r"(--[a-z-]+) from \S+ to (\S+)", first)
    if moved:
        return [moved[1], moved[2]]
    return " ".join(re.findall(r"--[a-z-]+(?: (?!--)[\w.,=]+)?", first)).split()  # each flag, and its value


@dataclass(frozen=True)
class Refused:
    """A case refused before training, naming the mistake: as good as a first finding."""
    message: str
    id: str = "refused"
    fix: str = ""


def train_case(argv_: list[str], run_dir: Path):
    """Train one case; (its first error or warning, a Refused, or None; its last dev accuracy; seconds)."""
    start = time.perf_counter()
    try:
        train_run(resolve_config(parse([*argv_, "--out", str(run_dir)])), run_dir, log=lambda line: None,
                  progress=False)
    except TrainingDiverged:
        pass
    except DataError as error:  # the data was refused before any training: the 0/1 pixels' case only
        if "every pixel is 0 or 1" not in str(error):
            raise
        return Refused(str(error).split(": ", 1)[-1]), float("nan"), time.perf_counter() - start
    findings = [f for f in diagnose_run(run_dir, run_settings(run_dir)) if f.severity in ("error", "warning")]
    with open(run_dir / "metrics.csv") as table:
        rows = list(csv.DictReader(table))
    dev = float(rows[-1]["dev_accuracy"]) if rows else float("nan")
    return (findings[0] if findings else None), dev, time.perf_counter() - start


def healthy(args) -> int:
    """Train the HEALTHY runs; print each one's errors and warnings (false alarms) and its dev accuracy."""
    quiet, total = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'run':38} {'dev':>6} {'s':>6}  errors and warnings")
        for number, (name, flags) in enumerate(HEALTHY.items()):
            if args.only not in name:
                continue
            run_dir = Path(tmp) / f"run{number}"
            start = time.perf_counter()
            train_run(resolve_config(parse(["train", *shlex.split(flags), "--no-report", "--csv", str(args.csv),
                                            "--out", str(run_dir)])), run_dir, log=lambda line: None, progress=False)
            found = [f for f in diagnose_run(run_dir, run_settings(run_dir)) if f.severity in ("error", "warning")]
            with open(run_dir / "metrics.csv") as table:
                dev = float(list(csv.DictReader(table))[-1]["dev_accuracy"])
            total += 1
            quiet += not found
            alarms = "; ".join(f"[{f.id}] {f.message}" for f in found) or "none"
            print(f"{name:38} {dev:6.3f} {time.perf_counter() - start:6.1f}  {alarms}", flush=True)
    print(f"\n{quiet} of {total} runs that should be healthy have no error or warning.")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=SHARED_CSV, help="digits to train on (Kaggle CSV)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    parser.add_argument("--follow", action="store_true", help="train each case again as its first fix says")
    parser.add_argument("--healthy", action="store_true", help="train runs that should be healthy instead")
    parser.add_argument("--cnn", action="store_true", help="the convolutional cases too (a few minutes more)")
    args = parser.parse_args(argv)
    if args.healthy:
        return healthy(args)
    hits, total, cured = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shuffled, binary = shuffled_labels_csv(args.csv, tmp), binary_pixels_csv(args.csv, tmp)
        print(f"{'case':38} {'expected':22} {'first finding':22} {'s':>6}  message")
        for number, (name, (flags, expected)) in enumerate({**CASES, **(CNN_CASES if args.cnn else {})}.items()):
            if args.only not in name:
                continue
            flags = flags.format(shuffled=shuffled, binary=binary)
            argv_ = ["train", *shlex.split(flags), "--no-report"]
            if "--csv" not in flags:
                argv_ += ["--csv", str(args.csv)]
            first, dev, seconds = train_case(argv_, tmp / f"run{number}")
            total += 1
            hits += bool(first and first.id == expected)
            print(f"{name:38} {expected:22} {first.id if first else '(none)':22} {seconds:6.1f}  "
                  f"{first.message if first else ''}", flush=True)
            if args.follow and first:
                followed = fix_flags(first.fix)
                if not followed:
                    print(f"{'':38} fix names no flag: {first.fix}")
                    continue
                after, dev_after, seconds = train_case(argv_ + followed, tmp / f"run{number}-fixed")
                cured += after is None
                print(f"{'':38} {'then ' + ' '.join(followed):45} {seconds:6.1f}  "
                      f"{'now: [' + after.id + '] ' + after.message if after else 'no error or warning'}; "
                      f"dev {dev:.3f} -> {dev_after:.3f}", flush=True)
    print(f"\nThe first finding names the cause in {hits} of {total} cases.")
    if args.follow:
        print(f"Following its fix's first flags gave a run with no error or warning in {cured} of {total} cases.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
