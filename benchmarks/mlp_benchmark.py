"""One network trained on Fashion-MNIST by scratchnn, PyTorch (CPU) and scikit-learn, side by side.

--model mlp (default): 784-256-ReLU-128-ReLU-10, by all three.
--model cnn: Conv2D(1,32,3)-ReLU-MaxPool2D(2)-Conv2D(32,64,3)-ReLU-MaxPool2D(2)-Flatten-
    Dense(1600,128)-ReLU-Dense(128,10) (no padding, Keras' "simple MNIST convnet"), by scratchnn
    and PyTorch (scikit-learn has no CNN).
--model cnn-best: the network of the `cnn-best` preset (scratchnn builds it from the preset itself,
    PyTorch from the same layers written by hand): two 3x3 padding-1 convolutions per block (32-32,
    64-64), each followed by BatchNorm2d and ReLU, 2x2 max pooling after each block, Flatten,
    Dense(3136,256)-BatchNorm1d-ReLU-Dropout(0.4)-Dense(256,10), by scratchnn and PyTorch. Only the
    network is the preset's: it trains like the others (Adam, no augmentation, no schedule), so this
    is a speed comparison of one network, not the preset's accuracy.
All train with Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), batch 128, float32, the rows
reshuffled every epoch, on the same arrays (60,000 train rows, 10,000 test rows, read by
scratchnn's own loader and scaled to [0, 1]). Each framework runs in a fresh subprocess, so its
peak RSS is its own and includes loading the data.

How to read the table:
- s/epoch is training time only (no data loading, no evaluation). Epoch 1 is a warm-up and is
  not counted; the figure is the median over epochs 2..E (the mean is printed beside it).
- peak RSS MB is the worker's ru_maxrss at the end (MB = 2**20 bytes).
- test accuracy is measured once, after the last epoch.
- scratchnn / PyTorch > 1 means scratchnn is that many times slower per epoch.
- "scratchnn" runs in the environment it is given, with the machine's OpenBLAS setting (e.g.
  OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE); "scratchnn, CPU's own kernels" is the same fast
  path in a worker started without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, so OpenBLAS detects the
  CPU and uses its own kernels. When neither is set, a line says so: both rows then run on the same
  kernels, measured separately.
- "scratchnn --textbook" trains the same network with fit(..., fast=False): the plain layers and
  optimizer, without scratchnn.fast (packing, flat Adam, memory-order products, ...).
- "scratchnn, Winograd conv2" (--frameworks ...,winograd) trains the CNN with its second
  convolution (32 -> 64) on algorithm="winograd"; the default "auto" keeps both on im2col (see
  Conv2D; the first, with one input channel, is ~7x slower on Winograd). For cnn-best it is not
  run: "auto" already puts its convolutions 2-4 on Winograd (and the first, with one input
  channel, on im2col).
- --profile adds scratchnn's time per layer (forward and backward), summed over the timed epochs.
- threads names the BLAS and its kernels (OpenBLAS picks them for the CPU unless OPENBLAS_CORETYPE
  pins them); for the MLP, a last line times scratchnn's Dense layers alone, the floor any NumPy
  loop on that BLAS meets; for a CNN, the matrix products of every layer alone (the rest of a
  step is NumPy's passes: gathers, transforms, batch norm, pooling).
- With --repeats N the frameworks take turns (the order rotates every round) and each figure is
  the median over the N rounds: the machine is shared and noisy.
The script prints figures; it asserts nothing about speed.

    python benchmarks/mlp_benchmark.py [--model mlp|cnn|cnn-best] [--epochs 5] [--repeats 1] [--limit N]
        [--frameworks scratchnn,native,textbook,winograd,torch,sklearn] [--seed 0] [--profile]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import scratchnn  # noqa: F401  before NumPy, as the CLI: OpenBLAS's idle threads sleep (host/openblas_idle.py)
import numpy as np

DATASET = "fashion-mnist"
HIDDEN = (256, 128)
NETWORKS = {  # --model -> the network, as the header names it
    "mlp": f"MLP 784-{HIDDEN[0]}-{HIDDEN[1]}-10",
    "cnn": "CNN Conv(1,32,3)-ReLU-MaxPool(2)-Conv(32,64,3)-ReLU-MaxPool(2)-Flatten-1600-128-10",
    "cnn-best": "cnn-best preset's CNN Conv(1,32,3,pad 1)-BN-ReLU-Conv(32,32,3,pad 1)-BN-ReLU-MaxPool(2)-"
                "Conv(32,64,3,pad 1)-BN-ReLU-Conv(64,64,3,pad 1)-BN-ReLU-MaxPool(2)-Flatten-3136-256-BN-ReLU-"
                "Dropout(0.4)-10 (its network only: no augmentation, no AdamW or schedule)",
}
MODELS = tuple(NETWORKS)
INPUT_SHAPES = {"mlp": (784,), "cnn": (1, 28, 28), "cnn-best": (1, 28, 28)}
EVAL_BATCH = 1000  # torch's test-set batches (scratchnn picks its own, see inference_batch_size)
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
BATCH = 128
# name -> module to find; "scratchnn" trains on its fast path (fit's default), "native" too but without
# PINS in its environment, "textbook" on the plain code, "winograd" with the CNN's second convolution on
# Conv2D(algorithm="winograd")
FRAMEWORKS = {"scratchnn": "scratchnn", "native": "scratchnn", "textbook": "scratchnn", "winograd": "scratchnn",
              "torch": "torch", "sklearn": "sklearn"}
LABELS = {"scratchnn": "scratchnn", "native": "scratchnn, CPU's own kernels (no OPENBLAS_CORETYPE/L2_SIZE)",
          "textbook": "scratchnn --textbook", "winograd": "scratchnn, Winograd conv2",
          "torch": "PyTorch (CPU)", "sklearn": "scikit-learn"}
PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # the machine's OpenBLAS setting: kernels and cache size
MB = 2 ** 20


# ---------------------------------------------------------------- workers (one per subprocess)

def load_data(limit: int | None, input_shape=(784,)):
    """(x_train, y_train, x_test, y_test): float32 x (N, *input_shape) in [0, 1], uint8 labels (N,)."""
    from scratchnn.data import load_dataset, scale_pixels
    train_images, y_train = load_dataset(DATASET, "train", progress=False)
    test_images, y_test = load_dataset(DATASET, "test", progress=False)
    if limit is not None:  # slice before scaling, so only the rows used become float32
        train_images, y_train = train_images[:limit], y_train[:limit]
    return (scale_pixels(train_images, input_shape), y_train, scale_pixels(test_images, input_shape), y_test)


def blas_threads() -> str:
    """Threads and kernels of the BLAS NumPy (and SciPy) call, as threadpoolctl sees them, e.g.
    "openblas 2, Haswell kernels (OPENBLAS_CORETYPE=Haswell)": the kernels bound the products' speed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (no threadpoolctl)"
    pools = {f"{pool['internal_api']} {pool['num_threads']}"
             + (f", {pool['architecture']} kernels" if pool.get("architecture") else "")
             for pool in threadpool_info() if pool["user_api"] == "blas"}
    if not pools:
        return "unknown"
    # set by the user or the machine: OpenBLAS then skips its detection
    pinned = " ".join(f"{var}={os.environ[var]}" for var in PINS if var in os.environ)
    return ", ".join(sorted(pools)) + (f" ({pinned})" if pinned else "")


def dense_seconds_per_epoch(model, batches: int, repeats: int = 5) -> float:
    """Seconds an epoch of ``batches`` steps spends in the model's Dense layers alone: forward
    and backward (their matrix products and bias sums) on random batches, as in fit, with no
    activation, loss, optimizer or batch slicing. No loop built on this BLAS can train faster."""
    from scratchnn.fast.products import DenseProducts
    from scratchnn.model import Sequential
    from scratchnn.nn import Dense

    dense = Sequential([DenseProducts(layer) for layer in model.layers if isinstance(layer, Dense)], model.input_shape)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *model.input_shape), dtype=np.float32)
    dlogits = rng.standard_normal((BATCH, model.num_classes), dtype=np.float32)

    def step():
        dense.forward(x, training=True)
        dense.backward(dlogits)  # like fit's: no input gradient for the first layer

    return epoch_seconds(step, batches, repeats, warmup=20)


def epoch_seconds(step, batches: int, repeats: int, warmup: int = 1) -> float:
    """Median over ``repeats`` of the seconds ``batches`` calls of ``step()`` take, after
    ``warmup`` calls."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def products_seconds_per_epoch(model, batches: int, repeats: int = 5) -> float:
    """Seconds an epoch of ``batches`` steps spends in the matrix products alone of a CNN's
    training step: each Conv2D's (im2col: [cols 1]·[Wm; b], [cols 1]ᵀ·dY and dY·Wmᵀ; Winograd:
    its (m+2)² tile products, 16 to 81, forward, for the kernel gradient and for the input
    gradient, in the tiling the fast path picks, run as its pipelines run them: piece by piece,
    one BLAS thread per worker) and each Dense layer's, on random arrays of the shapes a batch
    gives, nothing else (no gathers, transforms, batch norm, pooling, loss or Adam). The first
    layer makes no input gradient."""
    from scratchnn.fast.threads import Blocks, blas_thread_count
    from scratchnn.fast.winograd import FAST_RULE
    from scratchnn.nn import Conv2D, Dense

    rng = np.random.default_rng(0)
    rand = lambda *shape: rng.random(shape, dtype=np.float32)  # noqa: E731
    blocks = Blocks(blas_thread_count())
    products, shape = [], model.input_shape
    for k, layer in enumerate(model.layers):
        first = k == 0
        # the tiling the fast path trains this layer with (its own "auto" rule, on 2+ threads)
        scheme = layer.winograd_scheme(*shape[1:], rule=FAST_RULE) if isinstance(layer, Conv2D) else None
        if scheme is not None and blocks.workers > 1:
            products.append(_pipeline_products(scheme, layer, shape, blocks, rand, input_gradient=not first))
        elif scheme is not None:
            _, _, th, tw = scheme.tiles(*shape[1:], layer.padding)
            slots = (scheme.TILE + 2) ** 2
            V, U = rand(slots, th * tw * BATCH, shape[0]), rand(slots, shape[0], layer.out_channels)
            dM = rand(slots, th * tw * BATCH, layer.out_channels)
            products += [lambda V=V, U=U: V @ U, lambda V=V, dM=dM: dM.transpose(0, 2, 1) @ V]
            products += [] if first else [lambda U=U, dM=dM: dM @ U.transpose(0, 2, 1)]
        elif isinstance(layer, Conv2D):
            _, oh, ow = layer.output_shape(shape)
            rows, width = oh * ow * BATCH, layer.kernel_size[0] * layer.kernel_size[1] * shape[0] + 1
            cols = rand(rows, width) if shape[0] >= ow else np.asfortranarray(rand(rows, width))
            wm, dy = rand(width, layer.out_channels), rand(rows, layer.out_channels)
            products += [lambda c=cols, w=wm: c @ w, lambda c=cols, d=dy: c.T @ d]
            products += [] if first else [lambda d=dy, w=wm: d @ w[:-1].T]
        elif isinstance(layer, Dense):
            x, W, dy = rand(BATCH, layer.in_features), rand(layer.in_features, layer.out_features), \
                rand(BATCH, layer.out_features)
            products += [lambda x=x, W=W: x @ W, lambda x=x, dy=dy: x.T @ dy]
            products += [] if first else [lambda dy=dy, W=W: dy @ W.T]
        shape = layer.output_shape(shape)
    return epoch_seconds(lambda: [product() for product in products], batches, repeats)


def _pipeline_products(scheme, layer, shape, blocks, rand, input_gradient: bool):
    """A call running a Winograd layer's batch of tile products as ``fast.winograd``'s pipelines
    do: the batch cut into the same pieces, each worker taking its share on one BLAS thread, per
    piece M = V·U, dU += dMᵀ·V and dV = dM·Uᵀ (the products in cache, as in training)."""
    from scratchnn.fast.threads import one_blas_thread
    from scratchnn.fast.winograd import PIECE_FLOATS, _pieces

    c, f = shape[0], layer.out_channels
    _, _, th, tw = scheme.tiles(*shape[1:], layer.padding)
    side = scheme.TILE + 2
    groups, rows_most, images_most = _pieces(th, BATCH, side * side * tw * max(c, f), blocks.workers,
                                             PIECE_FLOATS[scheme.TILE])
    tiles_most = rows_most * tw * images_most
    U = rand(side * side, c, f)
    work = [(rand(side * side, tiles_most, c), rand(side * side, tiles_most, f), np.empty((side * side, tiles_most, f),
             np.float32), np.empty((side * side, tiles_most, c), np.float32)) for _ in range(blocks.workers)]

    def pipeline(worker, share):
        V, dM, M, dV = work[worker]
        dU = np.zeros((side * side, f, c), np.float32)
        for a, z, i, j in (piece for group in share for piece in group):
            n = (z - a) * tw * (j - i)
            np.matmul(V[:, :n], U, out=M[:, :n])
            dU += np.matmul(dM[:, :n].transpose(0, 2, 1), V[:, :n])
            if input_gradient:
                np.matmul(dM[:, :n], U.transpose(0, 2, 1), out=dV[:, :n])

    def run():
        with one_blas_thread():
            blocks.deal(pipeline, groups)
    return run


def scratchnn_model(model: str, seed: int, conv_algorithm: str = "auto"):
    from scratchnn.model import Sequential
    from scratchnn.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    rng = np.random.default_rng([seed, 1])  # its own stream: init and shuffling draw different numbers
    if model == "cnn-best":  # from the preset itself, so this times the network `run` trains
        from scratchnn.training.presets import get_preset
        return get_preset("cnn-best").build_model(rng, layer_rng=np.random.default_rng([seed, 2]))
    if model == "cnn":
        return Sequential([Conv2D(1, 32, 3, rng=rng), ReLU(), MaxPool2D(2),
                           Conv2D(32, 64, 3, algorithm=conv_algorithm, rng=rng), ReLU(),
                           MaxPool2D(2), Flatten(), Dense(1600, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng)],
                          input_shape=INPUT_SHAPES["cnn"])
    widths = (784, *HIDDEN, 10)
    layers = []
    for d, m in zip(widths[:-1], widths[1:]):
        layers += [Dense(d, m, init="he_normal", bias_init="zeros", rng=rng), ReLU()]
    return Sequential(layers[:-1])


def layer_label(layer) -> str:
    """The textbook layer's name, and for the fast path's wrappers (scratchnn.fast) how it runs."""
    wrapped = {"BlockConv2D": ("conv", "Winograd pipelines"), "BlockBatchNorm2d": ("bn", "threads"),
               "BlockReLU": ("relu", "threads"), "BlockMaxPool2D": ("pool", "threads"), "DenseProducts": ("dense", ""),
               "DenseOnColumns": ("dense", "used input columns")}
    name = type(layer).__name__
    if name == "ConvBatchNorm":  # the first convolution with its batch norm (and ReLU) folded in
        return f"Conv2D+BatchNorm2d (folded{', then ReLU' if layer.relu is not None else ''})"
    if name == "BlockBatchNormPool":  # one row for the batch norm, the pool and maybe the ReLU after it
        relu = ", then ReLU" if layer.relu is not None else ""
        return f"BatchNorm2d+MaxPool2D (pooled first{relu})"
    if name not in wrapped:
        return name
    attribute, how = wrapped[name]
    inner = type(getattr(layer, attribute)).__name__
    if name in ("BlockMaxPool2D", "BlockBatchNorm2d") and layer.relu is not None:
        how += ", then ReLU"  # the pool or batch norm applies the ReLU after it: one row for both
    return f"{inner} ({how})" if how else inner


def time_layers(model, counting: list[bool]) -> dict[str, list[float]]:
    """Wrap every layer's forward and backward with a timer: {"0 Conv2D": [forward s, backward s]},
    adding up only while ``counting[0]`` is true."""
    totals = {}
    for i, layer in enumerate(model.layers):
        key = f"{i} {layer_label(layer)}"
        totals[key] = [0.0, 0.0]
        for slot, name in enumerate(("forward", "backward")):
            def timed(*args, _method=getattr(layer, name), _slot=slot, _key=key, **kwargs):
                start = time.perf_counter()
                out = _method(*args, **kwargs)
                if counting[0]:
                    totals[_key][_slot] += time.perf_counter() - start
                return out
            setattr(layer, name, timed)  # an instance attribute: Sequential's calls find it first
    return totals


def train_scratchnn(model_name, x, y, x_test, y_test, epochs: int, seed: int, profile: bool = False,
                    fast: bool = True, conv_algorithm: str = "auto"):
    """Per-epoch training seconds and test accuracy; the train loop is a plain user ``fit`` call."""
    import scratchnn.fast
    from scratchnn.optim import Adam  # NOTE: no fallback on purpose; a missing Adam must fail here
    from scratchnn.training.fit import evaluate, fit

    model = scratchnn_model(model_name, seed, conv_algorithm)
    optimizer = Adam(lr=LR, beta1=BETAS[0], beta2=BETAS[1], eps=EPS)
    counting = [False]  # the layer timers count training steps only: not the warm-up epoch, not evaluations
    layer_seconds = time_layers(model, counting) if profile and not fast else None
    if profile and fast:  # time the layers the fast path trains (its Dense wrappers, in its order)
        layer_seconds, prepare = {}, scratchnn.fast.prepare
        def prepare_timed(*args, **kwargs):
            run = prepare(*args, **kwargs)
            return layer_seconds.update(time_layers(run.net, counting)) or run
        scratchnn.fast.prepare = prepare_timed

    # The epoch's training time runs from the end of the previous evaluation (or the fit call)
    # to the last step of the epoch, so fit's per-epoch dev evaluation is not counted. The run
    # CLI passes both callbacks too, so this is the loop users get.
    resumed, ended = [time.perf_counter()], []

    def on_batch_end(epoch, batch, batches, *metrics):  # *metrics: the batch's loss (and accuracy)
        if batch == batches:
            ended.append(time.perf_counter())
            counting[0] = False

    def on_epoch_end(result):
        resumed.append(time.perf_counter())
        counting[0] = True

    fit(model, optimizer, x, y, epochs=epochs, batch_size=BATCH, x_dev=x_test, y_dev=y_test,
        rng=np.random.default_rng(seed), on_batch_end=on_batch_end, on_epoch_end=on_epoch_end, fast=fast)
    seconds = [end - start for start, end in zip(resumed, ended)]
    counting[0] = False
    _, accuracy = evaluate(model, x_test, y_test)  # in batches of model.inference_batch_size()
    return seconds, accuracy, blas_threads(), layer_seconds


def torch_model(model: str):
    """The --model network in torch layers, with torch's default init."""
    from torch import nn

    if model == "cnn-best":
        def conv(c, f):  # 3x3 'same' convolution -> BatchNorm2d -> ReLU, as the preset builds it
            return [nn.Conv2d(c, f, 3, padding=1), nn.BatchNorm2d(f), nn.ReLU()]
        return nn.Sequential(*conv(1, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 256), nn.BatchNorm1d(256), nn.ReLU(),
                             nn.Dropout(0.4), nn.Linear(256, 10))
    if model == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    widths = (784, *HIDDEN, 10)
    layers = []
    for d, m in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(d, m), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def train_torch(model_name, x, y, x_test, y_test, epochs: int, seed: int, profile: bool = False):
    """The fastest fair torch loop: one pre-made tensor, x[idx] per batch, no DataLoader."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))  # from_numpy shares, no copy
    model = torch_model(model_name)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    shuffle = torch.Generator().manual_seed(seed)
    seconds = []
    model.train()
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x_t), generator=shuffle)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(torch.from_numpy(x_test[i:i + EVAL_BATCH])).argmax(dim=1)
                               for i in range(0, len(x_test), EVAL_BATCH)]).numpy()
    kernels = torch.backends.cpu.get_cpu_capability()  # the widest SIMD its kernels use, e.g. AVX512
    return seconds, float(np.mean(predicted == y_test)), f"torch {torch.get_num_threads()}, {kernels} kernels", None


def train_sklearn(model_name, x, y, x_test, y_test, epochs: int, seed: int, profile: bool = False):
    """MLPClassifier, one fit() running every epoch (no early stopping, no tolerance stop)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=epochs is the point
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam", alpha=0.0,
                        batch_size=BATCH, learning_rate_init=LR, beta_1=BETAS[0], beta_2=BETAS[1],
                        epsilon=EPS, max_iter=epochs, shuffle=True, tol=0.0, n_iter_no_change=10 ** 6,
                        early_stopping=False, random_state=seed)
    # alpha=0: the others train without an L2 penalty, sklearn's default would add one (1e-4).
    # NOTE: sklearn has no per-epoch hook; its loop calls _update_no_improvement_count once at the
    # end of every epoch, so timestamps taken there split one fit() into epochs (private API: if
    # it goes away, the fit time is spread evenly and the warm-up cannot be left out).
    stamps = [time.perf_counter()]
    original = getattr(clf, "_update_no_improvement_count", None)
    if original is not None:
        def stamped(*args, **kwargs):
            stamps.append(time.perf_counter())
            return original(*args, **kwargs)
        clf._update_no_improvement_count = stamped
    clf.fit(x, y)
    if len(stamps) == epochs + 1:
        seconds = list(np.diff(stamps))
    else:
        seconds = [(time.perf_counter() - stamps[0]) / epochs] * epochs
    accuracy = float(np.mean(clf.predict(x_test) == y_test))
    return seconds, accuracy, blas_threads(), None


TRAINERS = {"scratchnn": train_scratchnn, "native": train_scratchnn,
            "textbook": functools.partial(train_scratchnn, fast=False),
            "winograd": functools.partial(train_scratchnn, conv_algorithm="winograd"),
            "torch": train_torch, "sklearn": train_sklearn}


def worker(name: str, model: str, epochs: int, seed: int, limit: int | None, profile: bool) -> None:
    """Load the data, train, and print one JSON line of figures."""
    x, y, x_test, y_test = load_data(limit, INPUT_SHAPES[model])
    seconds, accuracy, threads, layer_seconds = TRAINERS[name](model, x, y, x_test, y_test, epochs, seed, profile)
    timed = seconds[1:]  # epoch 1 is the warm-up
    floor = {}
    if name == "scratchnn" and model == "mlp":
        floor["dense_s"] = dense_seconds_per_epoch(scratchnn_model(model, seed), -(-len(x) // BATCH))
    elif name == "scratchnn":  # a CNN's products sit inside Conv2D, between its gathers and transforms
        floor["products_s"] = products_seconds_per_epoch(scratchnn_model(model, seed), -(-len(x) // BATCH), repeats=2)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(json.dumps({
        "framework": name, "epoch_seconds": seconds, "timed_epochs": len(timed),
        "median_s": statistics.median(timed), "mean_s": statistics.fmean(timed),
        "test_accuracy": accuracy, "peak_rss_mb": peak_kb * 1024 / MB, "threads": threads,
        "train_rows": len(x), "train_array_mb": x.nbytes / MB, "layer_seconds": layer_seconds, **floor,
    }), flush=True)


# ---------------------------------------------------------------- parent: run workers, print the table

def skip_reason(name: str, model: str) -> str | None:
    """What the table says instead of figures when a framework has no run for this network, else None."""
    if name == "sklearn" and model != "mlp":
        return "no CNN"
    if name == "winograd" and model == "mlp":
        return "no convolution"
    if name == "winograd" and model == "cnn-best":  # "auto" already runs Winograd where it was measured faster
        return "same as scratchnn (auto: Winograd on convs 2-4)"
    return None


def run_worker(name: str, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--model", args.model,
               "--epochs", str(args.epochs), "--seed", str(args.seed)]
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    if args.profile:
        command.append("--profile")
    env = {var: value for var, value in os.environ.items() if var not in PINS} if name == "native" else None
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {name} worker failed (exit code {done.returncode}); its stderr is above")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="mlp", help="the network to train (default mlp)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run, >= 2 (epoch 1 is not timed)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated, from: " + ", ".join(FRAMEWORKS))
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the whole comparison; medians printed")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N rows only (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="print scratchnn's time per layer")
    parser.add_argument("--worker", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2 (epoch 1 is a warm-up, not timed), got {args.epochs}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.limit is not None and args.limit < BATCH:
        parser.error(f"--limit must be >= {BATCH} (one batch), got {args.limit}")
    if args.worker:
        worker(args.worker, args.model, args.epochs, args.seed, args.limit, args.profile)
        return

    names = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    unknown = [name for name in names if name not in FRAMEWORKS]
    if unknown or not names:
        parser.error(f"unknown framework(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(FRAMEWORKS)}")
    missing = [name for name in names if importlib.util.find_spec(FRAMEWORKS[name]) is None]
    skipped = {name: reason for name in names if (reason := skip_reason(name, args.model))}
    names = [name for name in names if name not in missing and name not in skipped]

    rows = f"first {args.limit:,}" if args.limit else "all"
    print(f"{DATASET}: {rows} train rows, 10,000 test rows; {NETWORKS[args.model]}, Adam lr {LR:g}, "
          f"batch {BATCH}, float32, {args.epochs} epochs, seed {args.seed}", flush=True)
    if "native" in names and not any(var in os.environ for var in PINS):
        print("neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE is set here: scratchnn and scratchnn with the "
              "CPU's own kernels run on the same kernels (measured separately)", flush=True)
    # the machine is shared: other processes' load slows multi-threaded BLAS by far more than their share
    print("load average (1 min) before: {:.2f}".format(os.getloadavg()[0]), flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for i in range(args.repeats):
        shift = i % len(names) if names else 0
        for name in names[shift:] + names[:shift]:  # rotate, so no framework always runs first
            result = run_worker(name, args)
            runs[name].append(result)
            epochs = " ".join(f"{s:.2f}" for s in result["epoch_seconds"])
            print(f"run {i + 1}  {name:<9}  epochs [{epochs}] s  median {result['median_s']:.3f} s/epoch  "
                  f"peak {result['peak_rss_mb']:.0f} MB  test accuracy {result['test_accuracy']:.4f}", flush=True)

    def median(name, key):
        return statistics.median(run[key] for run in runs[name])

    print("load average (1 min) after: {:.2f}".format(os.getloadavg()[0]))
    print(f"\ns/epoch = median over epochs 2..{args.epochs} (epoch 1 is a warm-up, not timed), training only; "
          f"each figure is the median of {args.repeats} run(s)\n")
    header = ("framework", "s/epoch (median)", "peak RSS MB", "test accuracy", "s/epoch (mean)", "threads")
    table = [header]
    for name in FRAMEWORKS:
        if name in runs:
            table.append((LABELS[name], f"{median(name, 'median_s'):.3f}", f"{median(name, 'peak_rss_mb'):.0f}",
                          f"{median(name, 'test_accuracy'):.4f}", f"{median(name, 'mean_s'):.3f}",
                          runs[name][-1]["threads"]))
        elif name in missing:
            table.append((LABELS[name], "not installed", "", "", "", ""))
        elif name in skipped:
            table.append((LABELS[name], skipped[name], "", "", "", ""))
    widths = [max(len(row[col]) for row in table) for col in range(len(header))]
    for k, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if k == 0:
            print("-|-".join("-" * width for width in widths))

    print()
    for name, label in (("scratchnn", "scratchnn"), ("native", "scratchnn (CPU's own kernels)"),
                        ("winograd", "scratchnn with Winograd conv2")):
        if name in runs and "torch" in runs:
            ratio = median(name, "median_s") / median("torch", "median_s")
            print(f"ratio {label} / PyTorch s/epoch: {ratio:.2f}")
    if "scratchnn" in runs and "textbook" in runs:
        ratio = median("textbook", "median_s") / median("scratchnn", "median_s")
        print(f"ratio scratchnn --textbook / scratchnn s/epoch: {ratio:.2f}")
    if "scratchnn" in runs and args.model == "mlp":
        dense = median("scratchnn", "dense_s")
        versus = f" = {dense / median('torch', 'median_s'):.2f} of PyTorch's epoch" if "torch" in runs else ""
        print(f"scratchnn's Dense layers alone (their products and bias sums; no activation, loss, Adam or "
              f"slicing): {dense:.3f} s/epoch{versus}: every step makes these products, so no NumPy loop on "
              f"this BLAS trains faster")
        x_mb, peak = runs["scratchnn"][0]["train_array_mb"], median("scratchnn", "peak_rss_mb")
        print(f"float32 training array = {x_mb:.0f} MB; budget 2X + 150 MB = {2 * x_mb + 150:.0f} MB; "
              f"scratchnn peak = {peak:.0f} MB")
    if "scratchnn" in runs and args.model != "mlp":
        products = median("scratchnn", "products_s")
        versus = f" = {products / median('torch', 'median_s'):.2f} of PyTorch's epoch" if "torch" in runs else ""
        print(f"scratchnn's matrix products alone (every Conv2D's and Dense layer's, the Winograd layers' piece "
              f"by piece as their pipelines run them, on random arrays; no gather, transform, batch norm, pooling, "
              f"loss or Adam): {products:.3f} s/epoch{versus}")
    for name in ("scratchnn", "native", "winograd"):
        if args.profile and name in runs:
            print_layer_split(runs[name][-1], args.epochs - 1, LABELS[name])


def print_layer_split(run: dict, timed_epochs: int, label: str = "scratchnn") -> None:
    """scratchnn's forward/backward seconds per layer and epoch, and each layer's share of the total."""
    split = run["layer_seconds"]
    total = sum(f + b for f, b in split.values())
    print(f"\n{label} time per layer, per epoch (mean of epochs 2..{timed_epochs + 1}, last run); the rest of "
          f"the {run['mean_s']:.2f} s epoch is the loss, Adam and batch slicing")
    width = max(map(len, split))
    for key, (forward, backward) in split.items():
        print(f"  {key:<{width}} forward {forward / timed_epochs:6.2f} s  backward {backward / timed_epochs:6.2f} s  "
              f"{100 * (forward + backward) / total:5.1f} %")
    print(f"  {'layers':<{width}} {total / timed_epochs:.2f} s")


if __name__ == "__main__":
    main()
