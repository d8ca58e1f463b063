"""The fast path: how ``fit(..., fast=True)`` (the default) trains faster than the textbook code.

The layers in ``nn/``, the optimizers in ``optim/`` and ``Sequential`` are written as the math
reads; they know nothing of this package. ``prepare`` wraps them for one training run, changing
how the work is laid out, never what is computed (tests/test_fast.py trains every preset both
ways and compares the weights):

    allocator.py   glibc keeps freed activation memory for the next step (fewer page faults)
    packing.py     the parameters in one flat array, the gradients in another
    flat_optim.py  the optimizer's state packed the same way; each update rule as a few
                   in-place NumPy calls over all parameters at once, a block per thread
    loss.py        softmax cross-entropy on the transposed logits (``fast_loss``), ~5x faster sums
    batchnorm_rows.py  batch norm's sums along wide views of memory, its evaluation in two passes
    products.py    Dense with its products in the memory order OpenBLAS is fastest at
    columns.py     the first Dense reads only the input columns that are nonzero somewhere
    order.py       a ReLU followed by a MaxPool2D runs after it, on 4x fewer numbers; a ReLU
                   after a 2x2 max pool or a threaded batch norm is applied by that layer as it writes;
                   a threaded batch norm and the pool after it run as one layer, pooling first;
                   the first convolution and its batch norm as one product
    avgpool.py     average pooling whose windows tile the image, on views of x (no im2col)
    threads.py     elementwise passes cut into blocks of rows, one per core (NumPy uses one):
    batchnorm.py   BatchNorm2d's training passes, with the ReLU that follows it applied as it writes,
    relu.py        ReLU's,
    maxpool.py     2x2 max pooling's, on views of x (no im2col), with the ReLU that follows it
                   applied as it writes (on one thread too),
    batchnorm_pool.py  a batch norm then a 2x2 max pool, pooling first (4x fewer numbers),
    conv_batchnorm.py  the first convolution with the batch norm after it folded into its product, and
    winograd.py    the Winograd layers, as per-thread pipelines over pieces of the batch

The threads share the cores with OpenBLAS's, which scratchnn asks to sleep when idle
(host/openblas_idle.py); ``prepare`` warns when NumPy was imported too early for that.

``inference_net`` runs a trained model's evaluation-mode forward on the same layers (the products,
the reordering, the pools on views, batch norm in two passes and the Winograd pipelines; ReLU
evaluates the textbook's way): ``Ensemble``, and with it evaluate, predict and serve, predicts through it.

``scratchnn train --textbook`` (or ``fit(..., fast=False)``) trains on the textbook path;
``scratchnn evaluate``, ``predict`` and ``serve`` with ``--textbook`` (or ``load_ensemble(...,
fast=False)``) predict on it.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PerformanceWarning
from ..host.resources import inference_memory
from ..model import Sequential, rows_that_fit
from ..nn.activations import ReLU
from ..nn.batchnorm import BatchNorm1d, BatchNorm2d
from ..nn.conv import Conv2D
from ..nn.dense import Dense
from ..nn.pool import AvgPool2D, MaxPool2D
from .allocator import keep_freed_memory
from .avgpool import TiledAvgPool2D
from .batchnorm import BlockBatchNorm2d
from .batchnorm_rows import RowBatchNorm
from .columns import DenseOnColumns, used_columns
from .flat_optim import FlatStep
from .loss import fast_loss
from .maxpool import BlockMaxPool2D
from .order import run_order, with_first_conv_folded, with_pools_first, with_relus_applied
from .packing import pack_parameters
from .products import DenseProducts
from .relu import BlockReLU
from .threads import Blocks, blas_thread_count, openblas_spins
from .winograd import FAST_RULE, BlockConv2D

__all__ = ["FastTraining", "fast_loss", "inference_net", "prepare"]

SPINNING = ("NumPy was imported before scratchnn, so OpenBLAS keeps its idle threads spinning for ~0.1 s after "
            "each product, on the cores this network's threaded passes need (a 2-core cnn-best epoch took ~25% "
            "longer). Import scratchnn before numpy, or set OPENBLAS_THREAD_TIMEOUT=4 before Python starts.")
_WARNED: list[bool] = []


@dataclass
class FastTraining:
    """What fit runs instead of the textbook objects; every layer shares the model's arrays."""

    net: Sequential        # the training passes: fast Dense layers, ReLU after pooling, maybe fewer columns
    evaluator: Sequential  # the same without column skipping, for the dev set
    x: np.ndarray          # the training inputs as ``net`` reads them
    step: Callable[[list], None]  # the optimizer's step(named_parameters)


def prepare(model: Sequential, optimizer, x_train: np.ndarray, *, full_batch: bool,
            fixed_inputs: bool = True, blocks: Blocks | None = None) -> FastTraining:
    """Set ``model`` and ``optimizer`` up for fast training on ``x_train`` (N, *input_shape).

    Packs the model's parameters (see packing: arrays taken from ``layer.params`` earlier are no
    longer the model's) and the optimizer's state, and asks glibc to keep freed memory for the
    whole process (see allocator). ``fixed_inputs`` False (augmented batches) keeps every input
    column; ``full_batch`` stores the inputs feature-major (see products.affine). ``blocks``
    (default: as many threads as BLAS uses now) runs the batch-norm and Winograd passes.
    """
    keep_freed_memory()
    packed = pack_parameters(model)
    blocks = blocks or Blocks(blas_thread_count())
    flat = FlatStep.for_model(optimizer, model, packed, blocks)
    layers = [_fast_layer(layer, blocks) for layer in model.layers]
    if any(isinstance(layer, (BlockBatchNorm2d, BlockConv2D)) for layer in layers) and openblas_spins() \
            and not _WARNED:
        _WARNED.append(True)  # once a process: every later fit would say the same
        warnings.warn(SPINNING, PerformanceWarning, stacklevel=3)
    evaluator = _InferenceNet(layers, model)
    net, x = evaluator, x_train
    if fixed_inputs and x.ndim == 2 and type(model.layers[0]) is Dense:
        columns = used_columns(x)
        if columns is not None:
            # NOTE: np.take keeps rows contiguous; x[:, columns] is laid out column by column, and a
            # batch's rows then gather from all over it (128 of 20,000 rows: 551 µs against 10 µs)
            layers[0], x = DenseOnColumns(model.layers[0], columns), np.take(x, columns, axis=1)
            net = _reordered(layers, (len(columns),), model)
    if fixed_inputs and full_batch and x.ndim == 2:
        x = np.asfortranarray(x)
    return FastTraining(net, evaluator, x, flat.step if flat is not None else optimizer.step)


def inference_net(model: Sequential, blocks: Blocks | None = None) -> Sequential:
    """``model`` in evaluation mode on the fast layers: the same outputs (up to float rounding:
    products in another memory order, Winograd on threads), sooner.

    The layers wrap the model's own arrays (no copy, no packing) and ``model`` is left as it was,
    to be used on its own too; nothing process-wide is set (no allocator setting: that is for a
    training's repeated steps). It shares the layers' caches with ``model`` and any other net
    of it, so its predictions take turns with theirs (``prediction_lock``). It predicts in the model's batches
    (``inference_batch_size``); ``blocks`` (default: as many threads as BLAS uses now) runs the
    Winograd layers.
    """
    blocks = blocks or Blocks(blas_thread_count())
    return _InferenceNet([_fast_layer(layer, blocks) for layer in model.layers], model)


# Below this many rows a net with threaded convolutions runs a batch on the textbook layers:
# handing small pieces to threads costs more than it saves (measured on 2 cores, forward passes of
# cnn-best, textbook / fast: 8 rows 5.0 / 6.5 ms, 16 rows 8.1 / 8.5 ms, 32 rows 13.6 / 12.6 ms,
# 64 rows 32.7 / 21.7 ms; cnn crosses at the same place; an MLP's fast products cost nothing
# extra at any size). A drawing in the web page is one row, or one per TTA view.
SMALL_BATCH = 32


class _InferenceNet(Sequential):
    """``model``'s fast ``layers`` (one for each of its layers, as ``_fast_layer`` makes them), run
    reordered and fused. It predicts in batches sized by the layers before fusing, whose estimate
    counts every layer's output (fused layers count fewer: their estimate would be too small) and
    no pool's im2col matrix (their pools make none). With threaded convolutions, a batch of fewer
    than SMALL_BATCH rows goes through ``model`` itself."""

    def __init__(self, layers: list, model: Sequential):
        super().__init__(_in_run_order(layers, model), model.input_shape, model.rng)
        self.model, self.unfused = model, list(layers)
        self.threaded = any(isinstance(layer, BlockConv2D) for layer in layers)  # Winograd pieces on threads

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.threaded and not training and len(x) < SMALL_BATCH:
            return self.model.forward(x)
        return super().forward(x, training)

    def inference_batch_size(self, memory: int | None = None, largest: int = 4096) -> int:
        memory = inference_memory() if memory is None else memory
        return rows_that_fit(self.unfused, self.input_shape, self.model.dtype, memory, largest)

    @property
    def layers_owner(self) -> Sequential:
        return self.model

    def release_caches(self) -> None:
        super().release_caches()
        self.model.release_caches()  # small batches went through the textbook layers


def _fast_layer(layer, blocks: Blocks):
    """The layer as the fast path runs it (the layer itself when nothing is faster)."""
    if type(layer) is Dense:
        return DenseProducts(layer)
    if blocks.workers > 1 and type(layer) is BatchNorm2d:
        return BlockBatchNorm2d(layer, blocks)
    if type(layer) in (BatchNorm1d, BatchNorm2d):
        return RowBatchNorm(layer)
    if blocks.workers > 1 and type(layer) is ReLU:
        return BlockReLU(layer, blocks)
    if type(layer) is MaxPool2D:
        return BlockMaxPool2D(layer, blocks)
    if type(layer) is AvgPool2D:
        return TiledAvgPool2D(layer)
    if blocks.workers > 1 and type(layer) is Conv2D and layer.may_use_winograd(FAST_RULE):
        return BlockConv2D(layer, blocks)
    return layer


def _reordered(layers, input_shape, model: Sequential) -> Sequential:
    """``layers`` (the model's, as the fast path runs them) in the order to run them."""
    return Sequential(_in_run_order(layers, model), input_shape, model.rng)


def _in_run_order(layers, model: Sequential) -> list:
    """``layers`` reordered and fused as they run (see order.py)."""
    ordered = with_relus_applied([layers[i] for i in run_order(model.layers)])
    return with_first_conv_folded(with_pools_first(ordered))
