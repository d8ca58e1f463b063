"""Average pooling whose windows tile the image (stride = size, the usual case) on views of x.

``nn.pool.AvgPool2D`` copies every window into a row (im2col) and averages it. Windows that
tile need no copy: a pixel-major x (see ``nn/im2col.py``) seen as (OH, KH, OW, KW, N·C) blocks
is summed over KH and KW and scaled by 1/(KH·KW) (odd H or W drop their last rows/columns);
backward copies dy / (KH·KW) into every pixel of its block. The sums run in another order than
the mean of im2col's rows, so the two agree to float rounding. Overlapping or gapped windows
run the textbook's way.
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer
from ..nn.im2col import conv_output_shape, from_pixel_major, pixel_major
from ..nn.pool import AvgPool2D


class TiledAvgPool2D(Layer, register=False):
    """``pool`` (an AvgPool2D), run on views of x when its windows tile the image."""

    def __init__(self, pool: AvgPool2D):
        super().__init__()
        self.pool = pool
        self.params, self.grads = pool.params, pool.grads

    def tiles(self) -> bool:
        """Whether the windows tile the image (stride = size), the ones pooled on views of x."""
        return self.pool.stride == self.pool.size

    def forward(self, x, training=False):
        if not self.tiles() or x.ndim != 4:
            self._cache = ("textbook",)
            return self.pool.forward(x, training)
        n, c, h, w = x.shape
        oh, ow = conv_output_shape(h, w, self.pool.size, self.pool.stride)
        (kh, kw), area = self.pool.size, self.pool.size[0] * self.pool.size[1]
        blocks = pixel_major(x)[:kh * oh, :kw * ow].reshape(oh, kh, ow, kw, n * c)
        y = blocks.sum(axis=(1, 3)) * np.asarray(1 / area, x.dtype)
        self._cache = ("tiled", x.shape)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "textbook":
            return self.pool.backward(dy, need_dx)
        if not need_dx:
            return None
        x_shape = cache[1]
        n, c, oh, ow = dy.shape
        (kh, kw), area = self.pool.size, self.pool.size[0] * self.pool.size[1]
        share = pixel_major(dy) / np.asarray(area, dy.dtype)  # (OH, OW, N, C)
        dx = np.empty((x_shape[2], x_shape[3], n, c), share.dtype)
        dx[kh * oh:] = 0  # rows and columns past the last window get no gradient
        dx[:kh * oh, kw * ow:] = 0
        blocks = dx[:kh * oh, :kw * ow].reshape(oh, kh, ow, kw, n, c)  # a view: kh·oh rows of dx
        blocks[...] = share[:, None, :, None]
        return from_pixel_major(dx)

    def output_shape(self, input_shape):
        return self.pool.output_shape(input_shape)

    def work_floats(self, input_shape):
        return 0 if self.tiles() else self.pool.work_floats(input_shape)  # views, no im2col matrix

    def __repr__(self):
        return f"TiledAvgPool2D({self.pool!r})"
