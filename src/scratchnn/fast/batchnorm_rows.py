"""BatchNorm1d and BatchNorm2d with their sums along wide views of memory and a two-pass evaluation.

The math is ``nn.batchnorm``'s, on the same matrix of rows (M, C), with three changes of layout:

- The rows come as an array (P, Q, C) with M = P·Q: BatchNorm1d's x (N, D) as (N, 1, D),
  BatchNorm2d's pixel-major memory as (H·W, N, C). A sum over the rows (μ, v, Σdy, Σdy·x̂) runs
  along the long (P, Q·C) view first, then over Q rows of C (``row_sums``). NOTE: NumPy sums down
  the columns of a matrix one row at a time, and rows of C = 32 numbers make that ~5x slower than
  rows of Q·C = 4,096 (and, fewer numbers in a row of additions, a little more accurate).
- Training's dx = γ/σ · (dy − (Σdy + x̂·Σ(dy·x̂))/M) is written in place, in one array.
- Evaluation, with μ and σ constants, computes y = x·(γ/σ) + (β − μ·γ/σ): two passes over x
  instead of four (PyTorch's CPU kernel computes it so too), and caches x, not x̂ (only a backward
  needs x̂, and makes it). NOTE: in float32 the two terms cancel where |μ| is large against σ:
  relative error 3e-6 at |μ|/σ = 30, 7e-4 at 1e4 (the textbook layer: 1e-7, numerics audit);
  trained networks' activations sit far below such ratios.

The fast path runs every BatchNorm1d on it, and BatchNorm2d on one thread (two or more: batchnorm.py,
which hands it evaluation).
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer, check_features
from ..nn.batchnorm import BatchNorm2d
from ..nn.im2col import from_pixel_major, pixel_major


class RowBatchNorm(Layer, register=False):
    """``bn`` (a BatchNorm1d or BatchNorm2d) on (P, Q, C) views of its rows; shares its params,
    grads and buffers. x and y as ``bn`` takes and gives them."""

    def __init__(self, bn: Layer):
        super().__init__()
        self.bn, self.images = bn, isinstance(bn, BatchNorm2d)
        self.params, self.grads, self.buffers = bn.params, bn.grads, bn.buffers

    def forward(self, x, training=False):
        if not self.images:
            check_features(self.bn, x, self.bn.size)
            return self._normalise(x[:, None], training)[:, 0]
        if x.ndim != 4 or x.shape[1] != self.bn.size:
            return self.bn.forward(x, training)  # its error
        n, c, h, w = x.shape
        y = self._normalise(pixel_major(x).reshape(h * w, n, c), training)
        return from_pixel_major(y.reshape(h, w, n, c))

    def backward(self, dy, need_dx=True):
        if not self.images:
            dx = self._backward_rows(dy[:, None], need_dx)
            return None if dx is None else dx[:, 0]
        self._take_cache()  # the clear error when forward has not run, before dy's shape is read
        n, c, h, w = dy.shape
        dx = self._backward_rows(pixel_major(dy).reshape(h * w, n, c), need_dx)
        return None if dx is None else from_pixel_major(dx.reshape(h, w, n, c))

    def _normalise(self, x, training):
        """y (P, Q, C) for rows x (P, Q, C); caches what ``_backward_rows`` needs."""
        bn, gamma, beta = self.bn, self.params["gamma"], self.params["beta"]
        if not training:  # μ and σ are constants: y = x·(γ/σ) + (β − μ·γ/σ)
            inv_std = 1 / np.sqrt(self.buffers["running_var"] + bn.eps)
            scale = gamma * inv_std
            self._cache = (x, inv_std, training)
            y = x * scale
            y += beta - self.buffers["running_mean"] * scale
            return y
        m = x.shape[0] * x.shape[1]
        bn.check_rows(m)
        mean = row_sums(x) / m
        x_hat = x - mean
        var = row_sums(x_hat, x_hat) / m  # Σₘ (x − μ)²
        inv_std = 1 / np.sqrt(var + bn.eps)
        x_hat *= inv_std
        bn.update_running_statistics(mean, var, m)
        self._cache = (x_hat, inv_std, training)
        y = x_hat * gamma
        y += beta
        return y

    def _backward_rows(self, dy, need_dx):
        """dx (P, Q, C) for dy (P, Q, C), or None; fills grads."""
        cached, inv_std, training = self._take_cache()
        x_hat = cached if training else (cached - self.buffers["running_mean"]) * inv_std
        dbeta = row_sums(dy)
        dgamma = row_sums(dy, x_hat)
        self.grads["beta"][...] = dbeta
        self.grads["gamma"][...] = dgamma
        if not need_dx:
            return None
        scale = self.params["gamma"] * inv_std  # γ/σ (C,)
        if not training:
            return dy * scale
        # γ/σ · (dy − (Σdy + x̂·Σ(dy·x̂))/M), in place
        m = dy.shape[0] * dy.shape[1]
        dx = x_hat * (dgamma / m)
        dx += dbeta / m
        np.subtract(dy, dx, out=dx)
        dx *= scale
        return dx

    def output_shape(self, input_shape):
        return self.bn.output_shape(input_shape)

    def __repr__(self):
        return f"RowBatchNorm({self.bn!r})"


def row_sums(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Σ a (or Σ a·b) over the rows of (P, Q, C) arrays: (C,), along the (P, Q·C) view first."""
    p, q, c = a.shape
    wide = a.reshape(p, q * c)
    sums = wide.sum(axis=0) if b is None else np.einsum("pk,pk->k", wide, b.reshape(p, q * c))
    return sums.reshape(q, c).sum(axis=0)
