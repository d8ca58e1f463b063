"""Conv2D forward + backward, im2col against Winograd F(2x2, 3x3) and F(m x m, 3x3) for m = 4, 5, 7, per shape, in one run.

Shapes: the `cnn` benchmark network's two convolutions (N=128, 1->32 on 28x28 and 32->64 on
13x13, 3x3, no padding) and padded 3x3 'same' convolutions as a record preset stacks them
(32->32 on 28x28, 32->64 and 64->64 on 14x14), plus --grid: C, F in 8..64 on the three sizes,
the measurements behind Conv2D's "auto" rule. Each figure is the minimum over --repeats calls
(the algorithms take turns), in ms; backward computes dx except for a first layer (C = 1).

--cpu-time measures the process's CPU time instead of the wall clock: on a shared, oversubscribed
machine that is the stable figure (with OPENBLAS_NUM_THREADS=1 it is the work done; with more
BLAS threads it also counts their spinning). --fast times the layers as training's fast path runs
them: the Winograd ones as per-thread pipelines on every BLAS thread (``fast/winograd.py``), wall
clock. The script prints figures; it asserts nothing.

    OPENBLAS_NUM_THREADS=1 python benchmarks/conv_benchmark.py --cpu-time [--grid] [--repeats 9]
    python benchmarks/conv_benchmark.py --fast [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import time

import scratchnn  # noqa: F401  before NumPy, as the CLI: OpenBLAS's idle threads sleep (host/openblas_idle.py)
import numpy as np

from scratchnn.fast.threads import Blocks, blas_thread_count
from scratchnn.fast.winograd import BlockConv2D
from scratchnn.nn import Conv2D
from scratchnn.nn.im2col import from_pixel_major

BATCH = 128
ALGORITHMS = ("im2col", "winograd", "winograd4", "winograd5", "winograd7")
WINOGRADS = ALGORITHMS[1:]
SHAPES = [  # (label, C, F, H = W, padding)
    ("cnn conv1 1->32 28x28", 1, 32, 28, 0), ("cnn conv2 32->64 13x13", 32, 64, 13, 0),
    ("same 32->32 28x28", 32, 32, 28, 1), ("same 32->64 14x14", 32, 64, 14, 1), ("same 64->64 14x14", 64, 64, 14, 1),
]


def pixel_major_random(rng, shape) -> np.ndarray:
    """A float32 (N, C, H, W) array stored (H, W, N, C), as the convolution layers pass them."""
    n, c, h, w = shape
    return from_pixel_major(rng.standard_normal((h, w, n, c), dtype=np.float32))


def time_shape(c: int, f: int, size: int, padding: int, repeats: int, clock,
               fast: bool = False) -> dict[str, tuple[float, float]]:
    """{algorithm: (forward ms, backward ms)}, the minimum over ``repeats`` turns each; ``fast``:
    the Winograd layers as the fast path's pipelines."""
    rng = np.random.default_rng(0)
    x = pixel_major_random(rng, (BATCH, c, size, size))
    layers = {a: Conv2D(c, f, 3, padding=padding, algorithm=a, rng=0) for a in ALGORITHMS}
    dy = pixel_major_random(rng, layers["im2col"].forward(x).shape)
    if fast and blas_thread_count() > 1:
        blocks = Blocks(blas_thread_count())
        layers.update({a: BlockConv2D(layers[a], blocks) for a in WINOGRADS})
    times = {a: ([], []) for a in layers}
    for _ in range(repeats):
        for name, layer in layers.items():
            start = clock()
            layer.forward(x, training=True)
            middle = clock()
            layer.backward(dy, need_dx=c > 1)
            times[name][0].append(middle - start)
            times[name][1].append(clock() - middle)
    return {a: (min(fw) * 1e3, min(bw) * 1e3) for a, (fw, bw) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cpu-time", action="store_true", help="time the process's CPU, not the wall clock")
    parser.add_argument("--grid", action="store_true", help="also C, F in 8..64 on 13x13, 14x14 'same', 28x28 'same'")
    parser.add_argument("--fast", action="store_true", help="Winograd as the fast path's per-thread pipelines")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    shapes = list(SHAPES)
    if args.grid:
        shapes += [(f"grid {c}->{f} {s}x{s} p{p}", c, f, s, p) for s, p in ((13, 0), (14, 1), (28, 1))
                   for c in (8, 16, 32, 64) for f in (8, 16, 32, 64)]
    print(f"N={BATCH}, float32, {'CPU' if args.cpu_time else 'wall'} time, min of {args.repeats}, "
          f"{'fast path, ' if args.fast else ''}"
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    print(f"{'shape':28s}" + "".join(f" {a + ' fwd+bwd ms':>22s}" for a in ALGORITHMS)
          + "".join(f" {a + '/im2col':>16s}" for a in WINOGRADS))
    for label, c, f, size, padding in shapes:
        t = time_shape(c, f, size, padding, args.repeats, clock, args.fast)
        im2col = sum(t["im2col"])
        print(f"{label:28s}" + "".join(f"     {t[a][0]:7.1f} + {t[a][1]:7.1f}" for a in ALGORITHMS)
              + "".join(f" {sum(t[a]) / im2col:16.2f}" for a in WINOGRADS), flush=True)


if __name__ == "__main__":
    main()
