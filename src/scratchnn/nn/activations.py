"""Elementwise activations (no parameters), and softmax for inference.

Each maps x (N, ...) to y of the same shape; backward multiplies dy by the local derivative.
"""
from __future__ import annotations

import numpy as np

from .base import Layer


class ReLU(Layer):
    """y = max(x, 0);  dx = dy · [x > 0].

    NOTE: ReLU'(0) is taken as 0 (the kink has no derivative; any value in [0, 1] is a valid
    subgradient). Gradient checks keep inputs away from 0 for that reason.
    """

    def forward(self, x, training=False):
        y = np.maximum(x, 0)
        self._cache = y  # y > 0 exactly where x > 0
        return y

    def backward(self, dy, need_dx=True):
        y = self._take_cache()
        return dy * (y > 0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax p_i = exp(z_i − max z) / Σ_j exp(z_j − max z), stable for any logits.

    For reading probabilities only: training uses the fused SoftmaxCrossEntropy.
    logits (N, C) -> probabilities (N, C), each row summing to 1.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
