"""How far a training step's real memory is above the bound ``train`` checks before it starts.

``training/memory.py`` works out on paper the least memory a step needs (every layer's output
for the batch, weights + gradients + optimizer state, the images as float32) and refuses a run
above what the machine has available. This trains each network one epoch on random images in a
process of its own and prints, beside the bound, what NumPy held at most (tracemalloc, from
before the network was built) and how much the process grew (peak resident memory, ru_maxrss,
over a process that imported everything and made the images): the ratios the module's
docstring quotes, and LIKELY's and HEADROOM's evidence. It asserts nothing.

    python benchmarks/memory_bound.py                  # the presets and a few variants, 2,000 images
    python benchmarks/memory_bound.py --images 9000 --textbook
    python benchmarks/memory_bound.py --threads 1      # the fast path's Winograd on the whole batch
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

NETWORKS = {  # name: (preset, changes)
    "seed (full batch)": ("seed", {}),
    "mlp": ("mlp", {}),
    "mlp 2048x2 batch 1024": ("mlp", {"hidden": [2048, 2048], "batch_size": 1024}),
    "cnn": ("cnn", {}),
    "cnn (full batch)": ("cnn", {"batch_size": 0}),
    "cnn 128 ch. batch 512": ("cnn", {"conv": [128], "batch_size": 512}),
    "cnn 5x5 sgd momentum": ("cnn", {"kernel_size": 5, "padding": [2, 2], "optimizer": "sgd", "momentum": 0.9}),
    "lenet5": ("lenet5", {}),
    "cnn-best": ("cnn-best", {}),
}

# One network in a fresh process: prints {"bound": ..., "traced": ..., "grown": ...} as JSON.
CHILD = r"""
import json, resource, sys, tracemalloc
import scratchnn
import numpy as np
from scratchnn.training.blas_threads import blas_threads
from scratchnn.training.fit import fit
from scratchnn.training.memory import step_memory
from scratchnn.training.presets import get_preset

preset, changes, images, fast = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "fast"
config = get_preset(preset)
for name, value in changes.items():
    setattr(config, name, value)
config.textbook, config.threads = not fast, int(sys.argv[5])
rng = np.random.default_rng(0)
x = rng.random((images, 1, 28, 28) if config.conv else (images, 784), dtype=np.float32)
y = np.arange(images) % 10
bound = step_memory(config).of(config.batch_size or images)
augment = config.build_augmentation()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
held = tracemalloc.get_traced_memory()[0]
model = config.build_model(np.random.default_rng(0))
with blas_threads(config.threads):
    fit(model, config.build_optimizer(), x, y, epochs=1, batch_size=config.batch_size, rng=rng, fast=fast,
        augment=augment, augment_rng=rng if augment else None)
traced = tracemalloc.get_traced_memory()[1] - held
tracemalloc.stop()
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(json.dumps({"bound": bound, "traced": traced, "grown": grown}))
"""


def measure(preset: str, changes: dict, images: int, fast: bool, threads: int = 0) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, preset, json.dumps(changes), str(images),
                           "fast" if fast else "textbook", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="random training images (default 2,000)")
    parser.add_argument("--textbook", action="store_true", help="also measure the textbook path (fast=False)")
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (default 0: the library's, every core)")
    args = parser.parse_args(argv)
    paths = ["fast", "textbook"] if args.textbook else ["fast"]
    print(f"One epoch on {args.images:,} random images; MB = 10^6 bytes; ratios are measured / bound.\n")
    print(f"{'network':<24} {'path':<9} {'bound MB':>9} {'traced MB':>10} {'ratio':>6} {'grown MB':>9} {'ratio':>6}")
    for name, (preset, changes) in NETWORKS.items():
        for path in paths:
            m = measure(preset, changes, args.images, path == "fast", args.threads)
            print(f"{name:<24} {path:<9} {m['bound'] / 1e6:>9.1f} {m['traced'] / 1e6:>10.1f} "
                  f"{m['traced'] / m['bound']:>6.2f} {m['grown'] / 1e6:>9.1f} {m['grown'] / m['bound']:>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
