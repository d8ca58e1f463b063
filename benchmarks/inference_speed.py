"""Inference on the textbook layers against the fast path's (``scratchnn.fast.inference_net``).

Predicts the first N digits of the shared MNIST CSV with a preset's network (freshly initialised,
or a trained run with --model) through ``Sequential.predict_proba``, plain and with TTA, once on
the textbook layers and once on the fast net, taking turns (textbook, fast, then fast, textbook,
...) after one untimed pass each, and prints the median seconds of each, their ratio fast /
textbook, and how far the two answers are apart. A last row times one digit at a time, as
``serve`` predicts a drawing (on a busy machine a small product that BLAS hands to a second
thread waits for that thread to get a core: that row moves most with the load). The two paths
run on two copies of the model, so neither finds the other's work arrays. On a shared machine
compare the ratios of one run; the load average is printed with them. Asserts nothing.

    python benchmarks/inference_speed.py                            # cnn-best, 2,000 digits, TTA x8
    python benchmarks/inference_speed.py --preset cnn,mlp --digits 1000 --repeats 5
    python benchmarks/inference_speed.py --model runs/X --tta 16
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import scratchnn  # noqa: F401  before NumPy, as the CLI: OpenBLAS's idle threads sleep (host/openblas_idle.py)
import numpy as np

from scratchnn.data import read_kaggle_csv, scale_pixels
from scratchnn.fast import inference_net
from scratchnn.fast.threads import blas_thread_count
from scratchnn.io import load
from scratchnn.model import Sequential
from scratchnn.training.presets import PRESETS, get_preset

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared/datasets/mnist/t10k-kaggle.csv.gz"


def copy_of(model: Sequential) -> Sequential:
    """Another model with the same layers and numbers (its own arrays and work arrays)."""
    twin = Sequential.from_config(model.config())
    twin.load_state_dict(model.state_dict())
    return twin


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, model: Sequential, images: np.ndarray, tta: int, repeats: int, singles: int) -> None:
    """Print the rows for one model: N digits plain and with TTA, then one digit at a time."""
    textbook, fast = model, inference_net(copy_of(model))
    x = scale_pixels(images, model.input_shape)
    answers = {path: net.predict_proba(x[:64], tta=tta) for path, net in (("textbook", textbook), ("fast", fast))}
    gap = float(np.abs(answers["fast"] - answers["textbook"]).max())
    print(f"\n{name}: {model.widths()}, batches of {model.inference_batch_size()} rows; "
          f"max |p_fast - p_textbook| on 64 digits (TTA x{tta}): {gap:.1e}")
    rows = [(f"{len(x):,} digits", x, 1, repeats), (f"{len(x):,} digits, TTA x{tta}", x, tta, repeats),
            (f"1 digit x{singles}, TTA x{tta}", x[:1], tta, singles)]
    for label, data, views, count in rows:
        seconds = {"textbook": [], "fast": []}
        for net in (textbook, fast):  # untimed: work arrays allocated at this row's batch shapes
            net.predict_proba(data, tta=views)
        for turn in range(count):
            for path in ("textbook", "fast") if turn % 2 == 0 else ("fast", "textbook"):
                net = textbook if path == "textbook" else fast
                seconds[path].append(timed(lambda: net.predict_proba(data, tta=views)))
        plain, quick = statistics.median(seconds["textbook"]), statistics.median(seconds["fast"])
        unit = 1000 if len(data) == 1 else 1
        print(f"  {label:<26} textbook {plain * unit:8.3f} {'ms' if unit > 1 else 's '}   fast {quick * unit:8.3f} "
              f"{'ms' if unit > 1 else 's '}   fast/textbook {quick / plain:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cnn-best",
                        help=f"comma-separated presets, freshly initialised (default: cnn-best; {', '.join(PRESETS)})")
    parser.add_argument("--model", metavar="RUN", help="a trained model file or run folder instead of --preset")
    parser.add_argument("--digits", type=int, default=2000, help="how many digits of the CSV (default: 2000)")
    parser.add_argument("--tta", type=int, default=8, help="views for the TTA rows (default: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each path (default: 3)")
    parser.add_argument("--singles", type=int, default=40, help="one-digit predictions timed (default: 40)")
    parser.add_argument("--csv", type=Path, default=CSV, help="a Kaggle-style CSV of digits (default: the shared one)")
    args = parser.parse_args(argv)
    images = read_kaggle_csv(args.csv)[0][:args.digits]
    print(f"{os.cpu_count()} cores, BLAS on {blas_thread_count()} threads; load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())} (1 / 5 / 15 min) at the start")
    if args.model:
        compare(args.model, load(args.model), images, args.tta, args.repeats, args.singles)
    for name in [] if args.model else args.preset.split(","):
        compare(name, get_preset(name).build_model(np.random.default_rng(0)), images, args.tta, args.repeats,
                args.singles)
    print(f"\nload average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
