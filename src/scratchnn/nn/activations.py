"""Elementwise activations (no parameters), and softmax for inference.

Each maps x (N, ...) to y of the same shape; backward multiplies dy by the local derivative.
They share the ``Activation`` base, which is how ``explain`` and the web page know whose output
is a hidden layer's activations.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Layer
from .gradcheck_inputs import away_from_zero
from .schema import fraction


class Activation(Layer, register=False):
    """An elementwise nonlinearity without parameters: its output is what a hidden unit "fires"."""


class ReLU(Activation):
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

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(), away_from_zero(rng, (5, 7)))]


class LeakyReLU(Activation):
    """y = x if x > 0 else α·x;  dx = dy · (1 if x > 0 else α).

    NOTE: the slope at 0 is taken as α, as ReLU'(0) is taken as 0; gradient checks keep inputs
    away from 0.
    """

    optional_keywords = {"alpha": fraction}  # what a model file may say (see nn/schema.py)

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not 0 <= alpha < 1:
            raise ConfigError(f"LeakyReLU alpha must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x, training=False):
        y = np.maximum(x, self.alpha * x)  # for 0 ≤ α < 1 the larger of the two is the right one
        self._cache = y  # y > 0 exactly where x > 0
        return y

    def backward(self, dy, need_dx=True):
        y = self._take_cache()
        # max([y > 0], α) is exactly 1 or α. NOTE: np.where with a random mask is ~10x slower.
        return dy * np.maximum(y > 0, y.dtype.type(self.alpha))

    def config(self):
        return {"alpha": self.alpha}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(0.1), away_from_zero(rng, (5, 7)))]


class Sigmoid(Activation):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  dx = dy · y·(1 − y).

    Stable for any x: with z = e^(−|x|), which never overflows, σ(x) = 1/(1 + z) for x ≥ 0 and
    z/(1 + z) for x < 0 (no cancellation in 1 − σ(|x|), so tiny outputs keep their precision).
    """

    def forward(self, x, training=False):
        z = np.abs(x)
        np.negative(z, out=z)
        with np.errstate(under="ignore"):  # e^(−1000) rounding to 0 is the right answer
            np.exp(z, out=z)
        y = np.maximum(z, x >= 0)  # the numerator: 1 where x ≥ 0 (as z ≤ 1), else z
        z += 1
        y /= z
        self._cache = y
        return y

    def backward(self, dy, need_dx=True):
        y = self._take_cache()
        return dy * (y * (1 - y))

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(), 3 * rng.standard_normal((5, 7)))]


class Tanh(Activation):
    """y = tanh(x);  dx = dy · (1 − y²)."""

    def forward(self, x, training=False):
        y = np.tanh(x)
        self._cache = y
        return y

    def backward(self, dy, need_dx=True):
        y = self._take_cache()
        return dy * (1 - y * y)

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(), 2 * rng.standard_normal((5, 7)))]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax p_i = exp(z_i − max z) / Σ_j exp(z_j − max z), stable for any logits.

    For reading probabilities only: training uses the fused SoftmaxCrossEntropy.
    logits (N, C) -> probabilities (N, C), each row summing to 1.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
