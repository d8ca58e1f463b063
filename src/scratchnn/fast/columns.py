"""Column skipping: the first Dense layer reads only the input columns that are ever nonzero.

When a pixel is 0 in every training image, its row of W adds nothing to any output and gets a
zero gradient. MNIST's blank border leaves 116 of the 784 pixels (~15%) 0 in every one of its
10,000 test digits, so training on them skips ~15% of the multiplications for the same numbers;
the more digits, the fewer such pixels. (Fashion-MNIST has no such column: there it changes
nothing.)
"""
from __future__ import annotations

import numpy as np

from ..nn.base import check_features
from ..nn.dense import Dense
from .products import DenseProducts, affine, input_gradient, sum_rows


def used_columns(x: np.ndarray) -> np.ndarray | None:
    """Indices of the columns of x (N, D) that are nonzero in some row; None if all are."""
    used = np.flatnonzero(x.any(axis=0))
    return used if len(used) < x.shape[1] else None


class DenseOnColumns(DenseProducts, register=False):
    """A Dense layer that reads only the input columns ``columns``: x (N, K) holds the K used
    columns of the full input. It shares the Dense layer's params and grads, so the optimizer
    updates the real W (rows outside ``columns`` get a zero gradient, exactly as the full
    product would give them)."""

    def __init__(self, dense: Dense, columns: np.ndarray):
        super().__init__(dense)
        self.columns = np.asarray(columns)

    def forward(self, x, training=False):
        check_features(self, x, len(self.columns))
        self._cache = x
        return affine(x, self.params["W"][self.columns], self.params["b"])

    def backward(self, dy, need_dx=True):
        x = self._take_cache()
        self.grads["W"].fill(0)
        self.grads["W"][self.columns] = x.T @ dy
        sum_rows(dy, out=self.grads["b"])
        return input_gradient(dy, self.params["W"][self.columns]) if need_dx else None

    def __repr__(self):
        return f"DenseOnColumns({self.dense!r}, {len(self.columns)} of {self.dense.in_features} columns)"
