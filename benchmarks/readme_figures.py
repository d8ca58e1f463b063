"""The README's training-recipes table, measured: each preset trained as the README says.

MNIST column: the preset on the 9,000/1,000 split of ../shared's t10k-kaggle.csv.gz (seed 0),
final dev accuracy. Fashion-MNIST column (``--fashion``; 3.5 min for mlp, ~14 min for cnn on 2
cores): the preset on Fashion-MNIST's 59,000/1,000 split, accuracy on its 10,000 test images
(found like ``--dataset fashion-mnist`` finds it: --data-dir, /usr/share/datasets, the cache).
Prints the README's figure beside each measured one, in the table's own format.

    python benchmarks/readme_figures.py                        # seed, mlp, deep-mlp, lenet5, cnn on MNIST
    python benchmarks/readme_figures.py --presets deep-mlp,lenet5
    python benchmarks/readme_figures.py --presets mlp,cnn --fashion
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from scratchnn.training.presets import PRESETS, get_preset
from scratchnn.training.run import train_run

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared/datasets/mnist/t10k-kaggle.csv.gz"
# The README's table: preset -> (MNIST 9,000/1,000 dev accuracy, Fashion-MNIST test accuracy or None)
README = {"seed": (0.847, None), "mlp": (0.969, 0.906), "deep-mlp": (0.974, None), "cnn": (0.990, 0.926),
          "lenet5": (0.991, None)}


def measure(preset: str, *, fashion: bool, csv: Path, data_dir: str, seed: int) -> tuple[float, float]:
    """(accuracy, seconds): dev accuracy on the CSV's split, or Fashion-MNIST test accuracy."""
    config = get_preset(preset)
    config.seed = seed
    if fashion:
        config.dataset, config.data_dir = "fashion-mnist", data_dir
    else:
        config.csv = str(csv)
    with tempfile.TemporaryDirectory() as out:
        result = train_run(config, Path(out), log=lambda line: None, progress=False)
    return result.metrics["test_accuracy" if fashion else "dev_accuracy"], result.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="seed,mlp,deep-mlp,lenet5,cnn",
                        help=f"comma-separated, of {', '.join(PRESETS)}")
    parser.add_argument("--fashion", action="store_true", help="also the Fashion-MNIST column (slow)")
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--data-dir", default="", help="where fashion-mnist/ is, if not in the usual places")
    parser.add_argument("--seed", type=int, default=0, help="the README's figures are seed 0")
    args = parser.parse_args()
    print("| preset | MNIST 9,000/1,000 dev (README) | Fashion-MNIST test (README) | time (2-core CPU) |")
    print("|---|---|---|---|")
    for preset in args.presets.split(","):
        quoted_dev, quoted_fashion = README.get(preset, (None, None))
        dev, seconds = measure(preset, fashion=False, csv=args.csv, data_dir=args.data_dir, seed=args.seed)
        fashion_cell = "–"
        if args.fashion and quoted_fashion is not None:
            test, fashion_seconds = measure(preset, fashion=True, csv=args.csv, data_dir=args.data_dir, seed=args.seed)
            fashion_cell = f"{test:.3f} ({quoted_fashion:.3f})"
            seconds_cell = f"{seconds:.0f} s; {fashion_seconds / 60:.1f} min on Fashion-MNIST"
        else:
            seconds_cell = f"{seconds:.0f} s"
        quoted = f"{quoted_dev:.3f}" if quoted_dev is not None else "not quoted"
        print(f"| `{preset}` | {dev:.3f} ({quoted}) | {fashion_cell} | {seconds_cell} |", flush=True)


if __name__ == "__main__":
    main()
