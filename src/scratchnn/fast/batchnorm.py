"""BatchNorm2d in training with its passes over the pixels split across threads (see threads.py).

The math is ``nn.batchnorm``'s, on the same matrix of pixel rows (H·W, N·C) of a pixel-major x.
Every pass is cut into blocks of pixel rows, one per thread. A pass that sums over rows (μ, v,
Σdy, Σdy·x̂) sums its block, and the blocks' sums are added (C numbers each); a pass that writes
rows (x − μ, y, dx) writes its block. A thread runs passes that follow one another chunk by chunk
(threads.chunks), so the second finds the numbers still in cache.

A ReLU right after the layer (a conv block's BatchNorm2d -> ReLU) is applied by it as it writes
each chunk of y, and going back its mask [y > 0] is applied to each chunk of dy in the pass that
sums it: ``with_relus_applied`` drops the ReLU from the list, saving a pass over memory each way.
Evaluation, and a batch the blocks do not take, run on one thread (``RowBatchNorm``).

The layer keeps x − μ, not x̂ = (x − μ)/σ: y = (x − μ)·(γ/σ) + β is then two passes, not three,
and backward folds 1/σ into its C-number factors (BatchNorm2d forward, batch 128, 32 channels at
28x28 on 2 threads: 3.6 -> 3.2 ms). Elementwise passes cost by their count here: a variant that
kept x and recomputed x − μ in cache where needed wrote less memory and was slower (more passes).
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer
from ..nn.batchnorm import BatchNorm2d
from ..nn.im2col import from_pixel_major, pixel_major
from .batchnorm_rows import RowBatchNorm
from .relu import relu_gradient
from .threads import Blocks, chunks


class BlockBatchNorm2d(Layer, register=False):
    """``bn`` (a BatchNorm2d), trained on ``blocks``' threads; shares its params, grads and buffers.
    With ``relu`` (the ReLU layer that follows it), the two layers' work as one."""

    def __init__(self, bn: BatchNorm2d, blocks: Blocks, relu: Layer | None = None):
        super().__init__()
        self.bn, self.blocks, self.relu = bn, blocks, relu
        self.one_thread = RowBatchNorm(bn)  # evaluation, and batches too small to cut
        self.params, self.grads, self.buffers = bn.params, bn.grads, bn.buffers

    def forward(self, x, training=False):
        n = len(x) if x.ndim == 4 else 0
        if not training or x.ndim != 4 or x.shape[1] != self.bn.size or n * x.shape[2] * x.shape[3] < 2:
            self._cache = ("one thread",)
            y = self.one_thread.forward(x, training)  # evaluation; or the layer's error
            return y if self.relu is None else self.relu.forward(y, training)
        n, c, h, w = x.shape
        rows = pixel_major(x).reshape(h * w, n * c)
        m = h * w * n
        mean = channel_sums(self.blocks, lambda a, b: rows[a:b].sum(axis=0), rows, n, c) / m
        wide_mean = np.tile(mean, n)  # μ for each of the N·C columns
        centred = np.empty_like(rows)

        def centre(start, stop):  # x − μ and its squares' sum, chunk by chunk
            total = np.zeros(rows.shape[1], rows.dtype)
            for a, b in chunks(start, stop, rows.shape[1]):
                np.subtract(rows[a:b], wide_mean, out=centred[a:b])
                total += np.einsum("pk,pk->k", centred[a:b], centred[a:b])
            return total

        var = channel_sums(self.blocks, centre, rows, n, c) / m
        inv_std = 1 / np.sqrt(var + self.bn.eps)
        self.bn.update_running_statistics(mean, var, m)
        wide_scale, wide_beta = np.tile(self.params["gamma"] * inv_std, n), np.tile(self.params["beta"], n)
        y = np.empty_like(rows)

        def scale_shift(start, stop):  # y = (x − μ)·γ/σ + β, then max(y, 0) with a ReLU
            for a, b in chunks(start, stop, rows.shape[1]):
                np.multiply(centred[a:b], wide_scale, out=y[a:b])
                y[a:b] += wide_beta
                if self.relu is not None:
                    np.maximum(y[a:b], 0, out=y[a:b])

        self.blocks.run(scale_shift, len(rows), rows.size)
        self._cache = ("blocks", centred, inv_std, n, y)
        return from_pixel_major(y.reshape(h, w, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "one thread":
            return self.one_thread.backward(dy if self.relu is None else self.relu.backward(dy), need_dx)
        _, centred, inv_std, n, y = cache
        _, c, h, w = dy.shape
        rows = pixel_major(dy).reshape(h * w, n * c)
        dx = np.empty_like(centred)
        if self.relu is not None:  # the ReLU's dy·[y > 0] goes to dx, which later passes read as dy
            rows, dy_relu = dx, rows

        def sums(start, stop):  # Σdy and Σdy·(x − μ) of a block, side by side
            total = np.zeros(2 * rows.shape[1], np.result_type(rows, centred))
            for a, b in chunks(start, stop, rows.shape[1]):
                if self.relu is not None:
                    relu_gradient(dy_relu[a:b], y[a:b], rows[a:b])
                total[:rows.shape[1]] += rows[a:b].sum(axis=0)
                total[rows.shape[1]:] += np.einsum("pk,pk->k", rows[a:b], centred[a:b])
            return total

        dbeta, dgamma = parameter_gradients(self, sums, rows, n, c, inv_std)
        if not need_dx:
            return None
        m = h * w * n
        scale = np.tile(self.params["gamma"] * inv_std, n)  # γ/σ
        wide_dgamma, wide_dbeta = np.tile(inv_std * dgamma / m, n), np.tile(dbeta / m, n)

        def input_gradient(start, stop):  # γ/σ · (dy − (Σdy + x̂·Σ(dy·x̂))/M), x̂ = (x − μ)/σ
            for a, b in chunks(start, stop, rows.shape[1]):  # (x − μ is not needed after this)
                centred[a:b] *= wide_dgamma
                centred[a:b] += wide_dbeta
                np.subtract(rows[a:b], centred[a:b], out=dx[a:b])  # rows may be dx itself
                dx[a:b] *= scale

        self.blocks.run(input_gradient, len(rows), rows.size)
        return from_pixel_major(dx.reshape(h, w, n, c))

    def with_relu(self, relu: Layer) -> BlockBatchNorm2d:
        return BlockBatchNorm2d(self.bn, self.blocks, relu)

    def output_shape(self, input_shape):
        return self.bn.output_shape(input_shape)

    def __repr__(self):
        relu = "" if self.relu is None else f", relu={self.relu!r}"
        return f"BlockBatchNorm2d({self.bn!r}, {self.blocks!r}{relu})"


def channel_sums(blocks: Blocks, fn, rows: np.ndarray, n: int, c: int) -> np.ndarray:
    """Σ over ``blocks`` of the rows of ``rows`` of fn(start, stop), sums per column (k·N·C,),
    each run of N·C columns folded to the C channels: (k·C,)."""
    total = np.sum(blocks.run(fn, len(rows), rows.size), axis=0)
    return total.reshape(-1, n, c).sum(axis=1).ravel()


def parameter_gradients(layer: Layer, sums, rows: np.ndarray, n: int, c: int, inv_std: np.ndarray):
    """dβ = Σdy and dγ = Σdy·x̂ = Σdy·(x − μ)/σ (C,) each, into ``layer.grads``, from ``sums``
    (start, stop) -> a block's per-column Σdy and Σdy·(x − μ) side by side (2·N·C,)."""
    dbeta, centred_sum = channel_sums(layer.blocks, sums, rows, n, c).reshape(2, c)
    dgamma = centred_sum * inv_std
    layer.grads["beta"][...] = dbeta
    layer.grads["gamma"][...] = dgamma
    return dbeta, dgamma
