"""BatchNorm2d then 2x2 max pooling (then a ReLU) in training, pooling first: on 4x fewer numbers.

NOTE: for a channel whose γ > 0, batch norm's affine y = (x − μ)·γ/σ + β never reorders numbers,
so max-pooling commutes with it: pool(bn(x)) = bn(pool(x)), and the maximum of a window is the
affine of the window's largest x (float rounding is monotone too, so the two are the same bits).
The layer therefore computes μ and σ over every pixel (two passes over x, as batch norm must),
pools x, and normalises only the pooled quarter. Going back, the batch-norm gradient

    dx = γ/σ · (dy_bn − Σdy_bn/M − x̂·Σ(dy_bn·x̂)/M),   x̂ = (x − μ)/σ,

has a dy_bn that is zero except at each window's largest pixel, where it is the pooled dy; so
both sums are sums over the pooled quarter, γ/σ·dy is routed as the pool routes it, and each
pixel adds its share of the mean terms, (x − μ)·a + b with a = −γ/σ²·Σ(dy_bn·x̂)/M and
b = −γ/σ·Σdy_bn/M. Batch norm's (x − μ) and y are never written out at full size: ~12 passes
over the pixels each way become ~8.

A batch with some γ <= 0 runs the two layers one after the other (γ < 0 turns maxima into
minima; γ = 0 makes a window's pixels tie, and the textbook then routes to its first pixel, not
the largest x), as do odd image sides and evaluation. Where float32 rounds two different x of a
window to one batch-norm output, the textbook routes dy to the first of them and this layer to
the larger: both are gradients of the same function (a tie's subgradient), not the same bits.
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer
from ..nn.im2col import from_pixel_major, pixel_major
from .batchnorm import BlockBatchNorm2d, channel_sums, parameter_gradients
from .maxpool import BlockMaxPool2D, route_to_maxima, window_maxima
from .relu import relu_gradient
from .threads import chunks


class BlockBatchNormPool(Layer, register=False):
    """``norm`` (a BlockBatchNorm2d applying no ReLU) then ``pool`` (a 2x2 BlockMaxPool2D, maybe
    applying the ReLU after it) as one layer; shares their params, grads and buffers.

    x (N, C, H, W) -> y (N, C, H/2, W/2).
    """

    def __init__(self, norm: BlockBatchNorm2d, pool: BlockMaxPool2D):
        super().__init__()
        if norm.relu is not None:
            raise ValueError("the batch norm before a pool applies no ReLU (a ReLU runs after the pool)")
        self.norm, self.pool = norm, pool
        self.bn, self.blocks, self.relu = norm.bn, norm.blocks, pool.relu
        self.params, self.grads, self.buffers = norm.params, norm.grads, norm.buffers

    def forward(self, x, training=False):
        if not self._pools_first(x, training):
            self._cache = ("layers",)
            return self.pool.forward(self.norm.forward(x, training), training)
        n, c, h, w = x.shape
        oh, ow, k = h // 2, w // 2, n * c
        image = pixel_major(x)
        rows = image.reshape(h * w, k)
        m = h * w * n
        mean = channel_sums(self.blocks, lambda a, b: rows[a:b].sum(axis=0), rows, n, c) / m
        wide_mean = np.tile(mean, n)  # μ for each of the N·C columns
        cols = image.reshape(2 * oh, ow, 2, k)  # a window row's two pixels side by side
        row_max = np.empty((2 * oh, ow, k), x.dtype)
        pairs = row_max.reshape(oh, 2, ow, k)  # a window's two row maxima
        pooled = np.empty((oh, ow, k), x.dtype)

        def pool_and_spread(start, stop):  # the pool's maxima of x, and Σ(x − μ)², chunk by chunk
            total, centred = np.zeros(k, rows.dtype), None
            for a, b in chunks(start, stop, 4 * ow * k):
                window_maxima(cols[2 * a:2 * b], row_max[2 * a:2 * b], pooled[a:b])
                part = rows[2 * a * w:2 * b * w]
                if centred is None:
                    centred = np.empty_like(part)  # the first chunk is the largest
                np.subtract(part, wide_mean, out=centred[:len(part)])
                total += np.einsum("pk,pk->k", centred[:len(part)], centred[:len(part)])
            return total

        var = channel_sums(self.blocks, pool_and_spread, pairs, n, c) / m
        inv_std = 1 / np.sqrt(var + self.bn.eps)
        self.bn.update_running_statistics(mean, var, m)
        wide_scale, wide_beta = np.tile(self.params["gamma"] * inv_std, n), np.tile(self.params["beta"], n)
        y = np.empty_like(pooled)

        def scale_shift(start, stop):  # y = (pool(x) − μ)·γ/σ + β, then max(y, 0) with a ReLU
            for a, b in chunks(start, stop, ow * k):
                np.subtract(pooled[a:b], wide_mean, out=y[a:b])
                y[a:b] *= wide_scale
                y[a:b] += wide_beta
                if self.relu is not None:
                    np.maximum(y[a:b], 0, out=y[a:b])

        self.blocks.run(scale_shift, oh, y.size)
        self._cache = ("pooled first", rows, cols, pairs, pooled, y, wide_mean, inv_std, x.shape)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "layers":
            return self.norm.backward(self.pool.backward(dy), need_dx)
        _, rows, cols, pairs, pooled, y, wide_mean, inv_std, (n, c, h, w) = cache
        oh, ow, k = h // 2, w // 2, n * c
        dy = pixel_major(dy).reshape(oh, ow, k)
        # the pool's dy, after the ReLU's mask (without a ReLU, dy itself)
        d_pool = dy if self.relu is None else np.empty(y.shape, np.result_type(dy, y))

        def sums(start, stop):  # Σdy_bn and Σdy_bn·(x − μ), over the windows' largest pixels
            total = np.zeros(2 * k, np.result_type(dy, y))
            for a, b in chunks(start, stop, ow * k):
                if self.relu is not None:
                    relu_gradient(dy[a:b], y[a:b], d_pool[a:b])
                total[:k] += d_pool[a:b].sum(axis=(0, 1))
                total[k:] += np.einsum("ijk,ijk->k", d_pool[a:b], pooled[a:b] - wide_mean)
            return total

        dbeta, dgamma = parameter_gradients(self, sums, d_pool, n, c, inv_std)  # Σ dy_bn, Σ dy_bn·x̂
        if not need_dx:
            return None
        m = h * w * n
        gamma = self.params["gamma"]
        scale = np.tile(gamma * inv_std, n)  # γ/σ
        slope = np.tile(-gamma * inv_std * inv_std * dgamma / m, n)  # a
        shift = np.tile(-gamma * inv_std * dbeta / m, n)  # b
        dx = np.empty((h, w, n, c), np.result_type(dy, y))
        dx_rows, routed = dx.reshape(h * w, k), dx.reshape(2 * oh, ow, 2, k)

        def route(start, stop):  # γ/σ·dy to each window's largest pixel, then every pixel's (x − μ)·a + b
            share = None
            for a, b in chunks(start, stop, 4 * ow * k):
                route_to_maxima(d_pool[a:b] * scale, cols[2 * a:2 * b], pairs[a:b], routed[2 * a:2 * b])
                part = rows[2 * a * w:2 * b * w]
                if share is None:
                    share = np.empty(part.shape, dx.dtype)  # the first chunk is the largest
                np.subtract(part, wide_mean, out=share[:len(part)])
                share[:len(part)] *= slope
                share[:len(part)] += shift
                dx_rows[2 * a * w:2 * b * w] += share[:len(part)]

        self.blocks.run(route, oh, rows.size)
        return from_pixel_major(dx)

    def _pools_first(self, x, training: bool) -> bool:
        """Whether this batch can pool before normalising (see the module's note)."""
        pool = self.pool.pool
        return (training and x.ndim == 4 and x.shape[1] == self.bn.size and pool.size == pool.stride == (2, 2)
                and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 and bool(np.all(self.params["gamma"] > 0)))

    def output_shape(self, input_shape):
        return self.pool.output_shape(self.norm.output_shape(input_shape))

    def __repr__(self):
        return f"BlockBatchNormPool({self.norm!r}, {self.pool!r})"
