"""Misconfigured runs made with ordinary flags: does the doctor's first finding name the cause?

Each case is a `scratchnn train` command line (a preset and flags, no --fault) that a learner
could plausibly type, with the cause a person would name. The script trains each one on the
9,000/1,000 split of a CSV (default: the 10,000 shared MNIST digits) for at most 5 epochs
(100 iterations for full batch), reads only the run folder's tables (diagnose_run) and prints
the first error or warning beside the expected cause, then the score. It asserts nothing.

With ``--follow``, each case is trained again with the first flags its first finding's fix names
(fitted to the run: "lower --lr from 10 to 0.1" is followed as ``--lr 0.1``), and the second run's
first finding and dev accuracy are printed: does a learner who does what the doctor says get a
healthy run?

    python benchmarks/doctor_cases.py                  # all cases
    python benchmarks/doctor_cases.py --only lr        # the cases whose name contains "lr"
    python benchmarks/doctor_cases.py --follow         # and train each again as its fix says
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
from pathlib import Path

import numpy as np

from scratchnn.cli.main import parse
from scratchnn.cli.train_cmd import resolve_config
from scratchnn.doctor import diagnose_run
from scratchnn.errors import TrainingDiverged
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
    "deep sigmoid, tutorial init": (f"--preset seed --hidden 128,128,128,128,128 --activation sigmoid {MINI}",
                                    "vanishing-gradients"),
    "deep tanh, tutorial init": (f"--preset seed --hidden 512,512,512 --activation tanh {MINI}", "saturated"),
    "tutorial init, no batch norm (mlp)": ("--preset mlp --init seed_uniform --no-batchnorm --epochs 5",
                                           "large-init"),
    "labels shuffled in the CSV": ("--preset mlp --epochs 5 --csv {shuffled}", "memorising"),
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


def fix_flags(fix: str) -> list[str]:
    """The flags of a fix's first choice: 'lower --lr from 10 to 0.1, ...' -> ['--lr', '0.1'];
    '--init he_normal (now zeros), --batchnorm ...' -> ['--init', 'he_normal']; [] if it names none."""
    first = re.split(r", | or |; | \(", fix)[0]
    moved = re.search(r"(--[a-z-]+) from \S+ to (\S+)", first)
    if moved:
        return [moved[1], moved[2]]
    return " ".join(re.findall(r"--[a-z-]+(?: (?!--)[\w.,]+)?", first)).split()  # each flag, and its value


def train_case(argv_: list[str], run_dir: Path):
    """Train one case; (its first error or warning or None, its last dev accuracy, seconds)."""
    start = time.perf_counter()
    try:
        train_run(resolve_config(parse([*argv_, "--out", str(run_dir)])), run_dir, log=lambda line: None,
                  progress=False)
    except TrainingDiverged:
        pass
    findings = [f for f in diagnose_run(run_dir, run_settings(run_dir)) if f.severity in ("error", "warning")]
    with open(run_dir / "metrics.csv") as table:
        rows = list(csv.DictReader(table))
    dev = float(rows[-1]["dev_accuracy"]) if rows else float("nan")
    return (findings[0] if findings else None), dev, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=SHARED_CSV, help="digits to train on (Kaggle CSV)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    parser.add_argument("--follow", action="store_true", help="train each case again as its first fix says")
    args = parser.parse_args(argv)
    hits, total, cured = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shuffled = shuffled_labels_csv(args.csv, tmp)
        print(f"{'case':38} {'expected':22} {'first finding':22} {'s':>6}  message")
        for number, (name, (flags, expected)) in enumerate(CASES.items()):
            if args.only not in name:
                continue
            flags = flags.format(shuffled=shuffled)
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
