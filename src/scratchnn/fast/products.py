"""Dense layers with their matrix products in the memory order OpenBLAS is fastest at.

``DenseProducts`` computes what ``nn.Dense`` computes (it shares the layer's params and grads;
the bias gradient's sum runs in another order, so its last bits may differ), with three changes
to how:

- ``affine``: OpenBLAS is not equally fast at a product and its transpose. It computes
  yᵀ = Wᵀ·xᵀ faster for a feature-major x (Fortran order: the seed's (784, N) layout in memory,
  ~15%) and for a batch narrower than the layer (N < M: 128 images into 256 units, up to ~30%;
  never slower); y then comes out feature-major too, and the layers after it stay on that path.
  fit stores full batches feature-major.
- ``sum_rows``: the bias gradient Σₙ dy[n] as the BLAS product ones·dy, ~8x faster than
  dy.sum(axis=0) for narrow dy.
- the weight gradient is written straight into the (packed) grads array (``out=``).
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer, check_features
from ..nn.dense import Dense


def is_feature_major(a: np.ndarray) -> bool:
    """True for a 2-D array stored column by column (Fortran order), not also row by row."""
    return a.flags.f_contiguous and not a.flags.c_contiguous


def affine(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x·W + b for x (N, D), W (D, M), b (M,), computed as (Wᵀ·xᵀ)ᵀ when that is faster."""
    y = (W.T @ x.T).T if is_feature_major(x) or len(x) < W.shape[1] else x @ W
    y += b
    return y


def input_gradient(dy: np.ndarray, W: np.ndarray) -> np.ndarray:
    """dx = dy·Wᵀ (N, D), keeping dy's memory order (see ``affine``)."""
    return (W @ dy.T).T if is_feature_major(dy) else dy @ W.T


def sum_rows(dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Σₙ dy[n] (M,), as the BLAS product ones·dy."""
    return np.matmul(np.ones(len(dy), dy.dtype), dy, out=out)


class DenseProducts(Layer, register=False):
    """``dense`` (a Dense layer, x (N, D) -> y (N, M)) with the products above; never saved."""

    def __init__(self, dense: Dense):
        super().__init__()
        self.dense = dense
        self.params, self.grads = dense.params, dense.grads

    def forward(self, x, training=False):
        check_features(self, x, self.dense.in_features)
        self._cache = x
        return affine(x, self.params["W"], self.params["b"])

    def backward(self, dy, need_dx=True):
        x = self._take_cache()
        # NOTE: x.T is a view; BLAS reads it transposed, no copy
        np.matmul(x.T, dy, out=self.grads["W"])
        sum_rows(dy, out=self.grads["b"])
        return input_gradient(dy, self.params["W"]) if need_dx else None

    def output_shape(self, input_shape):
        return (self.dense.out_features,)

    def __repr__(self):
        return f"DenseProducts({self.dense!r})"
