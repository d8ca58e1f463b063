"""The record preset on a full-size dataset: test accuracy alone, with TTA, and as an ensemble.

For users who are online: MNIST's 60,000 training digits (downloaded and cached by scratchnn's
data sources) minus a 1,000-digit dev set, then the official 10,000 test digits. Offline, the
full-size check is Fashion-MNIST (`apt-get install dataset-fashion-mnist`: 60,000 + 10,000 in
/usr/share/datasets/fashion-mnist). Each member is an ordinary run folder (seeds 0, 1, 2...,
one shared dev split, like `scratchnn train --seeds`); the script prints every member's test
accuracy without and with test-time augmentation, then the ensemble's. It asserts nothing.

    python benchmarks/full_mnist.py                                   # cnn-best on MNIST, 1 member
    python benchmarks/full_mnist.py --dataset fashion-mnist --members 3 --tta 8
    python benchmarks/full_mnist.py --preset cnn --epochs 2 --out /tmp/full   # a quick look
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import scratchnn  # noqa: F401  before NumPy, as the CLI: OpenBLAS's idle threads sleep (host/openblas_idle.py)
import numpy as np

from scratchnn.data import scale_pixels
from scratchnn.ensemble import load_ensemble
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import PRESETS, get_preset
from scratchnn.training.run import train_run
from scratchnn.training.run_data import data_source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cnn-best")
    parser.add_argument("--epochs", type=int, default=0, help="override the preset's epochs (0: keep them)")
    parser.add_argument("--members", type=int, default=1, help="ensemble members, seeds 0..N-1")
    parser.add_argument("--tta", type=int, default=8, help="test-time augmentation views")
    parser.add_argument("--out", type=Path, default=Path("runs/full"), help="where the member runs go")
    args = parser.parse_args(argv)
    folders = []
    for seed in range(args.members):
        config = get_preset(args.preset)
        config.dataset, config.seed, config.split_seed = args.dataset, seed, 0
        if args.epochs:
            config.epochs = args.epochs
        folder = args.out / f"{args.dataset}-{args.preset}" / f"seed-{seed}"
        if not (folder / "model.safetensors").exists():
            start = time.perf_counter()
            result = train_run(config, folder, log=lambda line: None)
            print(f"seed {seed}: trained {result.metrics['epochs']} epochs in {time.perf_counter() - start:.0f} s "
                  f"({result.train_seconds / max(result.metrics['epochs'], 1):.1f} s/epoch)", flush=True)
        folders.append(folder)
    test = data_source(TrainConfig(dataset=args.dataset)).load("test")
    ensemble = load_ensemble(folders)
    x = scale_pixels(test.images, ensemble.members[0].model.input_shape)
    labels = test.labels.astype(np.intp)
    print(f"\n{args.preset} on {args.dataset}: test accuracy of {len(labels):,} images")
    for folder, member in zip(folders, ensemble.members):
        plain = (member.model.predict(x) == labels).mean()
        tta = (member.model.predict(x, tta=args.tta, views=member.views) == labels).mean()
        print(f"  {folder.name:12} {plain:.4f}   with TTA x{args.tta}: {tta:.4f}")
    if len(ensemble.members) > 1:
        print(f"  {'ensemble':12} {(ensemble.predict(x) == labels).mean():.4f}   with TTA x{args.tta}: "
              f"{(ensemble.predict(x, tta=args.tta) == labels).mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
