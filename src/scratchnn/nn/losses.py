"""Losses: ``forward(outputs, targets) -> float`` (batch mean) and ``backward() -> d outputs``."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError


class SoftmaxCrossEntropy:
    """Softmax followed by cross-entropy, fused, averaged over the batch.

    For logits z (N, C) and integer labels y (N,):
        log pᵢ = zᵢ − max z − log Σⱼ exp(zⱼ − max z)      (log-sum-exp: stable for any z)
        L = −(1/N) Σₙ log p[n, yₙ]
        ∂L/∂z = (p − onehot(y)) / N

    The seed computes softmax and its gradient A2 − onehot(Y) separately and divides by m in
    each weight gradient; fusing gives the same numbers without overflow in exp.

    Equal logits give p = 1/C for every class, so L = ln C (ln 10 ≈ 2.3026: the loss an untrained
    network should start near), and the gradient is (1/C − onehot)/N:

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss.forward(np.zeros((2, 10)), np.array([3, 7])), 4), round(float(np.log(10)), 4)
    (2.3026, 2.3026)
    >>> loss.backward()[0, [0, 3]]  # (0.1 − 0) / 2 and (0.1 − 1) / 2
    array([ 0.05, -0.45])

    Label smoothing ε (Szegedy et al. 2016) trains towards q = (1 − ε)·onehot(y) + ε/C instead of
    the one-hot target: L = −(1/N) Σₙ Σⱼ qₙⱼ log pₙⱼ and ∂L/∂z = (p − q) / N. The loss no longer
    reaches 0 by pushing the true logit to infinity, so the network stays less over-confident
    (the best it can do is p = q). ε = 0 is plain cross-entropy:

    >>> SoftmaxCrossEntropy(label_smoothing=0.1).forward(np.array([[0.0, 0.0]]), np.array([0]))  # ln 2 still
    0.6931471805599453

    ``fast/loss.py`` computes the same on logitsᵀ, the layout the fast path trains faster with.
    """

    def __init__(self, label_smoothing: float = 0.0):
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1) (0.1 is usual), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        self._cache = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        n, labels = self._checked(logits, labels)
        z = logits - logits.max(axis=1, keepdims=True)  # a new array: the caller's logits are never changed
        exp = np.exp(z)
        sums = exp.sum(axis=1, keepdims=True)
        log_p = z - np.log(sums)  # (N, C)
        log_p_true = log_p[np.arange(n), labels]  # log p[n, yₙ]
        eps = self.label_smoothing
        if eps:  # Σⱼ qⱼ log pⱼ = (1 − ε) log p_y + ε · mean_j(log pⱼ)
            log_p_true = (1 - eps) * log_p_true + eps * log_p.mean(axis=1)
        self._cache = (exp / sums, labels)  # p, for backward
        return -float(log_p_true.mean(dtype=np.float64))

    def backward(self) -> np.ndarray:
        probs, labels = self._taken()
        n, num_classes = probs.shape
        eps = self.label_smoothing
        dlogits = probs.copy()  # p − q, with q = (1 − ε)·onehot(y) + ε/C
        if eps:
            dlogits -= eps / num_classes
        dlogits[np.arange(n), labels] -= 1 - eps
        dlogits /= n
        return dlogits

    @staticmethod
    def _checked(logits: np.ndarray, labels: np.ndarray) -> tuple[int, np.ndarray]:
        """(N, the labels as an array) for logits (N, C); a ShapeError for anything else."""
        if logits.ndim != 2:
            raise ShapeError(f"logits must be (N, C), got shape {logits.shape}")
        return len(logits), check_labels(labels, *logits.shape)

    def _taken(self):
        """What forward kept for backward; a clear error if forward has not run."""
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        return self._cache


def check_labels(labels: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """Labels must be ``count`` integers in [0, num_classes); returns them as an array. A refusal
    names the usual slip's fix (one-hot rows, digits read as text or floats, labels from 1)."""
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ShapeError(f"expected {count} labels, shape ({count},), got shape {labels.shape}"
                         + label_shape_hint(labels.shape, num_classes))
    if not np.issubdtype(labels.dtype, np.integer):
        raise ShapeError(f"labels must be integers, got dtype {labels.dtype}" + _dtype_hint(labels))
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        low, high = labels.min(), labels.max()
        from_one = "; numbered from 1 by the look of it: labels - 1" if (low, high) == (1, num_classes) else ""
        raise ShapeError(f"labels must lie in 0..{num_classes - 1}, got {low}..{high}{from_one}")
    return labels


def label_shape_hint(shape: tuple[int, ...], num_classes: int) -> str:
    """How labels in another layout become (N,) ('' when there is no telling)."""
    if len(shape) != 2:
        return ""
    if shape[1] == num_classes:
        return ": one-hot rows, a column per class, by the look of it; pass labels.argmax(1)"
    if shape[0] == num_classes:
        return ": one-hot columns (C, N), as the tutorial's one_hot_Y; pass labels.argmax(0)"
    if 1 in shape:
        return ": a column (or row) of labels; pass labels.ravel()"
    return ""


def _dtype_hint(labels: np.ndarray) -> str:
    """The cast that makes these labels class indices, or what keeps them from being any."""
    if labels.dtype.kind == "b":
        return "; True and False as classes 1 and 0: labels.astype(int)"
    if labels.dtype.kind in "US":
        try:
            labels.astype(np.int64)
        except ValueError:
            return "; names, not class indices: number them: classes, labels = np.unique(labels, return_inverse=True)"
        return "; digits read as text: labels.astype(int)"
    if labels.dtype.kind == "f":
        bad = np.count_nonzero(~np.isfinite(labels))
        if bad:
            return f"; {bad:,} of them NaN or infinite: every image needs its class"
        split = labels[labels != np.round(labels)]
        if split.size:
            return f"; {split[0]:g} is no class index: a label is the whole number of an image's class"
        return "; whole numbers stored as floats: labels.astype(int)"
    return ""
