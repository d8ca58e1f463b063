"""Flatten: images (N, C, H, W) to feature rows (N, C·H·W), for the Dense layers after a CNN."""
from __future__ import annotations

import math

from ..errors import ShapeError
from .base import Layer


class Flatten(Layer):
    """x (N, C, H, W) -> y (N, C·H·W), each row in (c, h, w) order (NumPy's C order, as PyTorch).

    Any x (N, ...) works the same way. Backward reshapes dy (N, C·H·W) back to (N, C, H, W).
    NOTE: y is a view of x when x is C-contiguous; a channels-last x (what Conv2D and the pools
    return) is copied into (c, h, w) order, so the Dense weights after it mean the same thing
    whatever the memory layout was.

    >>> import numpy as np
    >>> Flatten().forward(np.arange(24).reshape(2, 3, 2, 2))[1, :5]  # sample 1: channel 0, then channel 1
    array([12, 13, 14, 15, 16])
    >>> Flatten().output_shape((64, 5, 5))  # C·H·W: what the Dense layer after a CNN takes in
    (1600,)
    """

    def forward(self, x, training=False):
        if x.ndim < 2:
            raise ShapeError(f"Flatten expects a batch (N, ...) of at least 2 dimensions, got shape {x.shape}")
        self._cache = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy, need_dx=True):
        x_shape = self._take_cache()
        if not need_dx:
            return None
        if dy.shape != (x_shape[0], math.prod(x_shape[1:])):
            raise ShapeError(f"Flatten.backward expects dy of shape {(x_shape[0], math.prod(x_shape[1:]))}, "
                             f"got {dy.shape}")
        return dy.reshape(x_shape)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    @classmethod
    def config_shapes(cls, args, shape, where):
        return (math.prod(shape),), {}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(), rng.standard_normal((3, 2, 3, 4)))]
