"""Look at and time scratchnn.data.augment: a PNG grid of real digits and augmented copies.

Row k shows the first test digit of class k: the original in the first column (framed), then
augmented copies, each from the next draws of one generator. The timing augments a batch of
real test digits (default 128, as in training) again and again and prints the median, the
fastest and the 90th percentile per batch, for the whole preset and for its affine and elastic
parts alone, plus what that adds to an epoch of 60,000 images. The machine is usually shared:
the load average is printed beside the figures, compare runs made at the same time.

    python benchmarks/augment_preview.py [--out augment_preview.png] [--seed 0] [--columns 10]
        [--batch 128] [--repeats 300] [--shift 2 --rotate 12 --scale 0.1 --shear 8
        --alpha 30 --sigma 4 --p 1]         # strengths default to augment.DIGITS
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

import numpy as np

from scratchnn.data import read_idx
from scratchnn.data.augment import DIGITS, Augmentation

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
EPOCH = 60_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=MNIST / "t10k-images-idx3-ubyte.gz")
    parser.add_argument("--labels", type=Path, default=MNIST / "t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--out", type=Path, default=Path("augment_preview.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=10, help="augmented copies per digit")
    parser.add_argument("--batch", type=int, default=128, help="batch size for the timing")
    parser.add_argument("--repeats", type=int, default=300, help="timed batches per setting")
    for name, flag in (("shift", "--shift"), ("rotate", "--rotate"), ("scale", "--scale"), ("shear", "--shear"),
                       ("elastic_alpha", "--alpha"), ("elastic_sigma", "--sigma"), ("p", "--p")):
        parser.add_argument(flag, dest=name, type=float, default=getattr(DIGITS, name),
                            help=f"default {getattr(DIGITS, name):g} (DIGITS)")
    return parser.parse_args(argv)


def save_grid(path: Path, images: np.ndarray, labels: np.ndarray, aug: Augmentation, columns: int,
              rng: np.random.Generator) -> None:
    """One row per class: original, then ``columns`` augmented copies; images (N, 28, 28) in [0, 1]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [int(np.flatnonzero(labels == digit)[0]) for digit in range(10)]
    originals = images[rows]
    copies = [aug(originals, rng) for _ in range(columns)]  # (10, 28, 28) each
    fig, axes = plt.subplots(10, columns + 1, figsize=(0.75 * (columns + 1), 7.8))
    for r in range(10):
        for c in range(columns + 1):
            ax = axes[r, c]
            ax.imshow(originals[r] if c == 0 else copies[c - 1][r], cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:  # frame the originals so they stand out
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:orange")
                    spine.set_linewidth(2)
            else:
                ax.axis("off")
    axes[0, 0].set_title("original", fontsize=8)
    settings = ", ".join(f"{k}={v:g}" for k, v in aug.to_dict().items())
    fig.suptitle(f"Augmentation({settings})", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def time_batches(aug: Augmentation, x: np.ndarray, repeats: int, seed: int) -> list[float]:
    """Seconds per call of aug(x, rng), after two warm-up calls (caches, first allocations)."""
    rng = np.random.default_rng(seed)
    aug(x, rng), aug(x, rng)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        aug(x, rng)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in ("shift", "rotate", "scale", "shear", "elastic_alpha",
                                               "elastic_sigma", "p")}
    aug = Augmentation(**settings)
    images = read_idx(args.images).astype(np.float32) / np.float32(255)  # (N, 28, 28) in [0, 1]
    labels = read_idx(args.labels)
    save_grid(args.out, images, labels, aug, args.columns, np.random.default_rng(args.seed))
    print(f"wrote {args.out} ({args.columns} augmented copies of one digit per class)")

    x = images[:args.batch].reshape(args.batch, -1)  # flat (N, 784), as an MLP trains on
    variants = {"all": aug, "affine only": dataclasses.replace(aug, elastic_alpha=0.0),
                "elastic only": Augmentation(elastic_alpha=aug.elastic_alpha, elastic_sigma=aug.elastic_sigma)}
    print(f"batch {args.batch} x 784 float32, {args.repeats} batches each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'setting':<14}{'median ms':>11}{'min ms':>9}{'p90 ms':>9}{'s/epoch':>9}")
    for name, variant in variants.items():
        if variant.is_identity:
            continue
        times = sorted(time_batches(variant, x, args.repeats, args.seed))
        median = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        per_epoch = median * EPOCH / args.batch  # s added to an epoch of 60,000 images
        print(f"{name:<14}{median * 1e3:>11.2f}{times[0] * 1e3:>9.2f}{p90 * 1e3:>9.2f}{per_epoch:>9.2f}")


if __name__ == "__main__":
    main()
