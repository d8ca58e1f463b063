"""2x2 max pooling with stride 2 (the usual pool) on views of x, its passes split across threads.

``nn.pool.MaxPool2D`` copies every window into a row (im2col) and takes its argmax. For 2x2
windows that tile the image no copy is needed: a pixel-major x (see ``nn/im2col.py``) seen as
(2·OH, OW, 2, N·C) puts each window row's two pixels side by side, every pixel a run of N·C
floats, and the maximum is two elementwise maxima, of each window row's two pixels, then of
the two rows (odd H or W drop their last row/column). Going back, dy is routed to the top or
bottom row (top wins ties), then to the left or right pixel (left wins ties): the first
maximum in row-major order, as the textbook's argmax picks it, so the numbers are the same.

Output rows are independent, so each thread takes a block of them, a chunk at a time, and going
back each chunk's routed rows are a small array that stays in cache. Other windows run the
textbook's way.

A ReLU that runs right after the pool (``order.py`` puts it there) is applied by the pool as it
writes each chunk of its output, and going back its mask [y > 0] is applied to each chunk of dy
before routing: ``with_relus_applied`` drops the ReLU from the list, saving two passes over memory.
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer
from ..nn.im2col import conv_output_shape, from_pixel_major, pixel_major
from ..nn.pool import MaxPool2D
from .relu import relu_gradient
from .threads import Blocks, chunks


class BlockMaxPool2D(Layer, register=False):
    """``pool`` (a MaxPool2D), run on views of x and ``blocks``' threads when its windows are 2x2,
    stride 2; with ``relu`` (the ReLU layer that follows it), the two layers' work as one."""

    def __init__(self, pool: MaxPool2D, blocks: Blocks, relu: Layer | None = None):
        super().__init__()
        self.pool, self.blocks, self.relu = pool, blocks, relu
        self.params, self.grads = pool.params, pool.grads

    def forward(self, x, training=False):
        if not self.tiles_2x2() or x.ndim != 4 or min(x.shape[2:]) < 2:
            self._cache = ("textbook",)
            y = self.pool.forward(x, training)
            return y if self.relu is None else self.relu.forward(y, training)
        n, c, h, w = x.shape
        oh, ow = conv_output_shape(h, w, (2, 2), (2, 2))
        cols = pixel_major(x)[:2 * oh, :2 * ow].reshape(2 * oh, ow, 2, n * c)  # as the textbook's
        row_max = np.empty((2 * oh, ow, n * c), x.dtype)
        y = np.empty((oh, ow, n * c), x.dtype)
        pairs = row_max.reshape(oh, 2, ow, n * c)

        def pool(start, stop):
            for a, b in chunks(start, stop, 4 * ow * n * c):
                window_maxima(cols[2 * a:2 * b], row_max[2 * a:2 * b], y[a:b])
                if self.relu is not None:
                    np.maximum(y[a:b], 0, out=y[a:b])

        self.blocks.run(pool, oh, cols.size)
        self._cache = ("blocks", x.shape, cols, pairs, y)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "textbook":
            return self.pool.backward(dy if self.relu is None else self.relu.backward(dy), need_dx)
        if not need_dx:
            return None
        _, (n, c, h, w), cols, pairs, y = cache
        oh, ow = dy.shape[2:]
        dtype = np.result_type(dy, cols)
        dy = pixel_major(dy).reshape(oh, ow, n * c)
        dx = np.empty((h, w, n, c), dtype)
        dx[2 * oh:] = 0  # an odd last row or column was dropped: no gradient
        dx[:2 * oh, 2 * ow:] = 0
        routed = dx[:2 * oh, :2 * ow].reshape(2 * oh, ow, 2, n * c)  # a view (one axis split, N and C merged)

        def route(start, stop):
            for a, b in chunks(start, stop, 4 * ow * n * c):
                d_out = dy[a:b] if self.relu is None else relu_gradient(dy[a:b], y[a:b], np.empty(y[a:b].shape, dtype))
                route_to_maxima(d_out, cols[2 * a:2 * b], pairs[a:b], routed[2 * a:2 * b])

        self.blocks.run(route, oh, cols.size)
        return from_pixel_major(dx)

    def with_relu(self, relu: Layer) -> BlockMaxPool2D:
        return BlockMaxPool2D(self.pool, self.blocks, relu)

    def output_shape(self, input_shape):
        return self.pool.output_shape(input_shape)

    def tiles_2x2(self) -> bool:
        """Whether the pool's windows are 2x2 with stride 2, the ones pooled on views of x."""
        return self.pool.size == self.pool.stride == (2, 2)

    def work_floats(self, input_shape):
        return 0 if self.tiles_2x2() else self.pool.work_floats(input_shape)  # views, no im2col matrix

    def __repr__(self):
        relu = "" if self.relu is None else f", relu={self.relu!r}"
        return f"BlockMaxPool2D({self.pool!r}, {self.blocks!r}{relu})"


def window_maxima(cols: np.ndarray, row_max: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out (R, OW, K) = the maximum of each 2x2 window: the larger of each window row's two
    pixels (cols (2R, OW, 2, K)) into ``row_max`` (2R, OW, K), then the larger of its two rows."""
    np.maximum(cols[:, :, 0], cols[:, :, 1], out=row_max)
    pairs = row_max.reshape(len(out), 2, *out.shape[1:])
    return np.maximum(pairs[:, 0], pairs[:, 1], out=out)


def route_to_maxima(d_out: np.ndarray, cols: np.ndarray, pairs: np.ndarray, routed: np.ndarray) -> None:
    """``routed`` (2R, OW, 2, K), dx laid out as ``cols``: each window's d_out (R, OW, K) goes to
    its top or bottom row (``pairs``' row maxima; top wins ties), then to that row's left or
    right pixel (left wins ties); the window's other pixels get 0."""
    d_rows = np.empty((len(d_out), 2, *d_out.shape[1:]), routed.dtype)
    np.multiply(d_out, pairs[:, 0] >= pairs[:, 1], out=d_rows[:, 0])
    np.subtract(d_out, d_rows[:, 0], out=d_rows[:, 1])
    d_rows = d_rows.reshape(2 * len(d_out), *d_out.shape[1:])
    np.multiply(d_rows, cols[:, :, 0] >= cols[:, :, 1], out=routed[:, :, 0])
    np.subtract(d_rows, routed[:, :, 0], out=routed[:, :, 1])
