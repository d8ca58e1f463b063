"""The seed preset against the seed tutorial's own code, side by side in one run.

Both train 784-10-10 for 500 full-batch iterations on the same 9,000/1,000 split sizes of the
same CSV. Runs alternate (reference, scratchnn, reference, ...) so machine noise hits both;
the script prints each time, the medians and the ratio scratchnn / reference.

    python benchmarks/seed_vs_reference.py [--csv FILE] [--repeats 3]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=SHARED / "datasets/mnist/t10k-kaggle.csv.gz")
    parser.add_argument("--reference", type=Path, default=SHARED / "reference/seed_reference.py")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {"reference": [], "scratchnn": []}
    for i in range(args.repeats):
        for name, runner in (("reference", lambda: run_reference(args.reference, args.csv)),
                             ("scratchnn", lambda: run_scratchnn(args.csv))):
            seconds, dev = runner()
            times[name].append(seconds)
            print(f"run {i + 1}  {name:<9}  train {seconds:6.2f} s  dev accuracy {dev:.4f}", flush=True)
    ref, ours = statistics.median(times["reference"]), statistics.median(times["scratchnn"])
    print(f"\nmedian train time: seed reference {ref:.2f} s, scratchnn --preset seed {ours:.2f} s")
    print(f"ratio scratchnn / reference: {ours / ref:.2f} (target <= 0.50)")


if __name__ == "__main__":
    main()
