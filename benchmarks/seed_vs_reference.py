"""The seed preset against the seed tutorial's own code, side by side in one run.

Both train 784-10-10 for 500 full-batch iterations on the same 9,000/1,000 split sizes of the
same CSV. Runs alternate (reference, scratchnn, reference, ...) so machine noise hits both;
the script prints each time, the medians and the ratio scratchnn / reference.

The two sides do not do the same work, so three scratchnn figures are printed:
- ``scratchnn train --preset seed`` as a user runs it: float32, and its time ("Done in X s")
  includes measuring train and dev accuracy every 10 iterations (50 evaluations) and writing a
  checkpoint every 100 iterations (5) plus metrics.csv;
- the same 500 updates alone (``fit`` with no dev set, one evaluation at the end), float32;
- the same, with the model and data cast to float64: the reference's dtype and work.
The reference times its 500 float64 updates alone (its ``train_seconds``).

    python benchmarks/seed_vs_reference.py [--csv FILE] [--repeats 3]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scratchnn.data import DataSource, scale_pixels, train_dev_split
from scratchnn.metrics import accuracy
from scratchnn.training.fit import fit
from scratchnn.training.presets import get_preset
from scratchnn.data import seeded_generators

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def run_reference(script: Path, csv: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, str(script), str(csv), "500", "0.1", "0"],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"train_seconds=([\d.]+)", out)[1]), float(re.search(r"dev_acc=([\d.]+)", out)[1])


def run_scratchnn(csv: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out_dir:
        out = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--preset", "seed", "--csv", str(csv),
                              "--out", out_dir, "--quiet"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"in ([\d.]+) s", out)[1]), float(re.search(r"dev accuracy ([\d.]+)", out)[1])


def run_updates_only(csv: Path, dtype) -> tuple[float, float]:
    """The seed preset's 500 updates in ``dtype``, timed alone: no dev evaluations, no files."""
    config = get_preset("seed")
    data = DataSource(csv=str(csv)).load("train", progress=False)
    gens = seeded_generators(config.seed)
    train_images, y_train, dev_images, y_dev = train_dev_split(data.images, data.labels, config.dev_size, gens["split"])
    model = config.build_model(gens["init"]).astype(dtype)
    x_train, x_dev = scale_pixels(train_images).astype(dtype), scale_pixels(dev_images).astype(dtype)
    start = time.perf_counter()
    fit(model, config.build_optimizer(), x_train, y_train, epochs=config.epochs, batch_size=0, rng=gens["order"],
        eval_every=config.epochs)
    return time.perf_counter() - start, accuracy(model.predict(x_dev), y_dev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=SHARED / "datasets/mnist/t10k-kaggle.csv.gz")
    parser.add_argument("--reference", type=Path, default=SHARED / "reference/seed_reference.py")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runners = {"reference": lambda: run_reference(args.reference, args.csv),
               "scratchnn": lambda: run_scratchnn(args.csv),
               "float32 updates": lambda: run_updates_only(args.csv, np.float32),
               "float64 updates": lambda: run_updates_only(args.csv, np.float64)}
    times = {name: [] for name in runners}
    for i in range(args.repeats):
        for name, runner in runners.items():
            seconds, dev = runner()
            times[name].append(seconds)
            print(f"run {i + 1}  {name:<15}  train {seconds:6.2f} s  dev accuracy {dev:.4f}", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    ref = median["reference"]
    print(f"\nmedian train time: seed reference {ref:.2f} s (float64, its 500 updates alone)")
    floor = median["float32 updates"]
    ours = median["scratchnn"]
    print(f"ratio scratchnn --preset seed / reference: {ours / ref:.2f} ({ours / floor:.2f}x its own float32 updates "
          "alone, the floor); ours also measures the dev set 50 times and writes 5 checkpoints")
    print(f"ratio scratchnn updates alone, float32 / reference: {median['float32 updates'] / ref:.2f}")
    print(f"ratio scratchnn updates alone, float64 / reference: {median['float64 updates'] / ref:.2f} "
          "(the same dtype and the same work as the reference)")


if __name__ == "__main__":
    main()
