"""Dense (fully connected, affine) layer."""
from __future__ import annotations

import numpy as np

from .base import Layer, check_features, generator, whole_units
from .init import get_initializer
from .schema import features_in, initializer, units


class Dense(Layer):
    """y = x·W + b, with x (N, D), W (D, M), b (M,), y (N, M).

    Backward, for upstream dy = ∂L/∂y (N, M):
        dW = xᵀ·dy (D, M)     db = Σₙ dy (M,)     dx = dy·Wᵀ (N, D)

    The seed tutorial writes Z = W·X + b with X as (784, N) and W as (10, 784); we keep the batch
    first (x is (N, 784), W is (784, 10)): the same math, transposed.

    Args:
        in_features, out_features: D and M.
        init, bias_init: initialiser names from ``scratchnn.nn.init``.
        rng: ``np.random.Generator`` (or an int seed) that draws the initial values.
    """

    required_keywords = {"in_features": units, "out_features": units}  # see nn/schema.py
    optional_keywords = {"init": initializer, "bias_init": initializer}

    def __init__(self, in_features: int, out_features: int, *, init: str = "he_normal",
                 bias_init: str = "zeros", rng: np.random.Generator | int | None = None):
        super().__init__()
        self.in_features = whole_units(in_features, "Dense in_features (the inputs)")
        self.out_features = whole_units(out_features, "Dense out_features (the units)")
        self.init, self.bias_init = init, bias_init
        rng = generator(rng)
        d, m = self.in_features, self.out_features
        self.params["W"] = get_initializer(init)(rng, (d, m), d, m)
        self.params["b"] = get_initializer(bias_init)(rng, (m,), d, m)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, training=False):
        check_features(self, x, self.in_features)
        self._cache = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dy, need_dx=True):
        x = self._take_cache()
        self.grads["W"][...] = x.T @ dy         # (D, M)
        self.grads["b"][...] = dy.sum(axis=0)   # (M,)
        return dy @ self.params["W"].T if need_dx else None

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init, "bias_init": self.bias_init}

    def output_shape(self, input_shape):
        return (self.out_features,)

    @classmethod
    def config_shapes(cls, args, shape, where):
        d, m = args["in_features"], args["out_features"]
        features_in(shape, d, where)
        return (m,), {"W": (d, m), "b": (m,)}

    @classmethod
    def gradcheck_cases(cls, rng):
        layer = cls(6, 4, init="glorot_uniform", bias_init="glorot_uniform", rng=rng)  # a nonzero b
        return [(layer, rng.standard_normal((5, 6)))]

