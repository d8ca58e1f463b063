"""Flatten: images (N, C, H, W) to feature rows (N, C·H·W), for the Dense layers after a CNN."""
from __future__ import annotations

import math

from ..errors import ShapeError
from .base import Layer
from .im2col import from_pixel_major, pixel_major


class Flatten(Layer):
    """x (N, C, H, W) -> y (N, C·H·W), each row in (c, h, w) order (NumPy's C order, as PyTorch).

    Any x (N, ...) works the same way. Backward reshapes dy (N, C·H·W) back to (N, C, H, W).
    NOTE: y is a view of x when x is C-contiguous; a channels-last x (what Conv2D and the pools
    return) is copied into (c, h, w) order, so the Dense weights after it mean the same thing
    whatever the memory layout was. Backward copies dx back into x's pixel-major memory then,
    so the layers before read their gradient in the order they wrote x (a ReLU's dy·[y > 0] over
    two arrays in different orders took ~10x as long as over two in the same order).

    >>> import numpy as np
    >>> Flatten().forward(np.arange(24).reshape(2, 3, 2, 2))[1, :5]  # sample 1: channel 0, then channel 1
    array([12, 13, 14, 15, 16])
    >>> Flatten().output_shape((64, 5, 5))  # C·H·W: what the Dense layer after a CNN takes in
    (1600,)
    """

    def forward(self, x, training=False):
        if x.ndim < 2:
            raise ShapeError(f"Flatten expects a batch (N, ...) of at least 2 dimensions, got shape {x.shape}")
        self._cache = x.shape, x.ndim == 4 and _is_pixel_major(x)
        return x.reshape(len(x), -1)

    def backward(self, dy, need_dx=True):
        x_shape, was_pixel_major = self._take_cache()
        if not need_dx:
            return None
        if dy.shape != (x_shape[0], math.prod(x_shape[1:])):
            raise ShapeError(f"Flatten.backward expects dy of shape {(x_shape[0], math.prod(x_shape[1:]))}, "
                             f"got {dy.shape}")
        dx = dy.reshape(x_shape)
        return from_pixel_major(pixel_major(dx)) if was_pixel_major else dx

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    @classmethod
    def config_shapes(cls, args, shape, where):
        return (math.prod(shape),), {}

    @classmethod
    def gradcheck_cases(cls, rng):
        # as numbers are stored, and pixel-major (H, W, N, C), as a convolution passes them
        return [(cls(), rng.standard_normal((3, 2, 3, 4))),
                (cls(), rng.standard_normal((3, 4, 3, 2)).transpose(2, 3, 0, 1))]


def _is_pixel_major(x) -> bool:
    """Whether images x (N, C, H, W) are stored (H, W, N, C), as the convolution layers pass them."""
    return x.transpose(2, 3, 0, 1).flags.c_contiguous and not x.flags.c_contiguous
