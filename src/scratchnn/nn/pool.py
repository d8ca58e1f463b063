"""Pooling over images x (N, C, H, W): MaxPool2D, AvgPool2D.

Both map (N, C, H, W) to (N, C, OH, OW), one KH×KW window per output pixel and channel, with
    OH = (H − KH) // stride + 1,   OW = (W − KW) // stride + 1      (no padding)
Arrays are pixel-major in memory, as in ``conv.py`` (see ``im2col``).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from .base import Layer
from .check_inputs import distinct_values
from .im2col import as_pair, col2im, conv_output_shape, from_pixel_major, im2col, pixel_major
from .image_shapes import check_images, check_sample, unpair, window_sides
from .schema import MAX_SAMPLE, optional, window


class _Pool2D(Layer, register=False):
    """What the pooling layers share: a KH×KW window moved by a stride (default: the window size)."""

    optional_keywords = {"size": window(1), "stride": optional(window(1))}  # see nn/schema.py

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size = as_pair(size, "size")
        self.stride = self.size if stride is None else as_pair(stride, "stride")

    def config(self):
        return {"size": unpair(self.size), "stride": unpair(self.stride)}

    def output_shape(self, input_shape):
        c, h, w = check_sample(self, input_shape)
        return (c, *conv_output_shape(h, w, self.size, self.stride))

    def uses_im2col(self) -> bool:
        """Whether forward lays every window out as a row (im2col); the other paths use views of x."""
        raise NotImplementedError

    def work_floats(self, input_shape):
        """The im2col matrix per sample, when forward makes one."""
        c, oh, ow = self.output_shape(input_shape)
        return _im2col_floats(c, (oh, ow), self.size) if self.uses_im2col() else 0

    @classmethod
    def config_shapes(cls, args, shape, where):
        size = args.get("size", (2, 2))  # __init__'s default
        stride = args.get("stride") or size
        sides = window_sides(shape, shape[0], size, stride, (0, 0), where)
        # The im2col matrix (and backward's gradient of it); windows that tile hold at most the input.
        work = _im2col_floats(shape[0], sides, size)
        if work > MAX_SAMPLE:
            raise ModelFileError(f"{where} would need a work matrix of {work:,} numbers a sample "
                                 f"(at most {MAX_SAMPLE:,})")
        return (shape[0], *sides), {}


def _im2col_floats(channels: int, sides, size) -> int:
    """Numbers in one sample's im2col matrix: OH·OW rows of KH·KW·C."""
    return sides[0] * sides[1] * size[0] * size[1] * channels


class MaxPool2D(_Pool2D):
    """Maximum of each KH×KW window, per channel: x (N, C, H, W) -> y (N, C, OH, OW).

        OH = (H − KH) // stride + 1, OW likewise; stride defaults to the window size (windows tile
        the image; leftover rows and columns are dropped, as in PyTorch).

    Backward routes each dy to the argmax of its window, the rest of dx is 0; where windows
    overlap, the routed gradients add. NOTE: on ties the first maximum in row-major window order
    wins alone (an all-zero window after a ReLU has 4 tied maxima; the gradient goes to one).

    2×2 windows with stride 2 (the usual case) take a fast path: reshapes and two elementwise
    maxima (of each window row's two pixels, then of the two rows). Other windows use im2col.
    """

    def uses_im2col(self) -> bool:
        return not self.size == self.stride == (2, 2)

    def forward(self, x, training=False):
        n, c, h, w = check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        if not self.uses_im2col():
            return self._forward_2x2(x, oh, ow)
        cols = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c)  # (M, KH·KW, C)
        winner = cols.argmax(axis=1)[:, None]  # (M, 1, C): the first maximum of each window
        y = np.take_along_axis(cols, winner, axis=1)
        self._cache = ("windows", x.shape, winner)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if not need_dx:
            return None
        if cache[0] == "2x2":
            return self._backward_2x2(dy, *cache[1:])
        _, x_shape, winner = cache
        n, c, oh, ow = dy.shape
        dcols = np.zeros((oh * ow * n, self.size[0] * self.size[1], c), dy.dtype)
        np.put_along_axis(dcols, winner, pixel_major(dy).reshape(oh * ow * n, 1, c), axis=1)
        return col2im(dcols, x_shape, self.size, self.stride)

    def _forward_2x2(self, x, oh, ow):
        n, c = x.shape[:2]
        # (2·OH, OW, 2, N·C): the two pixels of each window row side by side, every pixel a run
        # of N·C floats; a view of a pixel-major x (odd H or W drop their last row/column).
        cols = pixel_major(x)[:2 * oh, :2 * ow].reshape(2 * oh, ow, 2, n * c)
        row_max = np.maximum(cols[:, :, 0], cols[:, :, 1])  # (2·OH, OW, N·C)
        pairs = row_max.reshape(oh, 2, ow, n * c)
        y = np.maximum(pairs[:, 0], pairs[:, 1])  # (OH, OW, N·C)
        # Backward finds the winners from these two (so forwards for evaluation never do).
        self._cache = ("2x2", x.shape, cols, row_max)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    @staticmethod
    def _backward_2x2(dy, x_shape, cols, row_max):
        n, c, h, w = x_shape
        oh, ow = dy.shape[2:]
        dtype = np.result_type(dy, cols)
        # Route to the top or bottom row (top wins ties), then within it to the left or right
        # pixel (left wins ties): the first maximum in row-major order. dy − dy·1 = 0 and
        # dy − dy·0 = dy exactly, so each dy lands in exactly one place.
        pairs = row_max.reshape(oh, 2, ow, n * c)
        dy = pixel_major(dy).reshape(oh, ow, n * c)
        d_rows = np.empty((oh, 2, ow, n * c), dtype)
        np.multiply(dy, pairs[:, 0] >= pairs[:, 1], out=d_rows[:, 0])
        np.subtract(dy, d_rows[:, 0], out=d_rows[:, 1])
        d_rows = d_rows.reshape(2 * oh, ow, n * c)
        dx = np.empty(cols.shape, dtype)  # (2·OH, OW, 2, N·C)
        np.multiply(d_rows, cols[:, :, 0] >= cols[:, :, 1], out=dx[:, :, 0])
        np.subtract(d_rows, dx[:, :, 0], out=dx[:, :, 1])
        dx = dx.reshape(2 * oh, 2 * ow, n, c)
        if (2 * oh, 2 * ow) != (h, w):  # the dropped last row/column gets no gradient
            dx = np.pad(dx, ((0, h - 2 * oh), (0, w - 2 * ow), (0, 0), (0, 0)))
        return from_pixel_major(dx)

    @classmethod
    def gradcheck_cases(cls, rng):
        # distinct values: no window has a tie that a step of ±h could flip
        return [(cls(2), distinct_values(rng, (2, 2, 4, 5))), (cls(3, stride=2), distinct_values(rng, (2, 2, 5, 6)))]


class AvgPool2D(_Pool2D):
    """Mean of each KH×KW window, per channel: x (N, C, H, W) -> y (N, C, OH, OW).

        y = Σ_window x / (KH·KW)       dx = col2im(dy / (KH·KW) copied to every window position)
        OH = (H − KH) // stride + 1, OW likewise; stride defaults to the window size.

    Windows that tile the image (stride = size, the usual case) take a fast path: the image seen
    as (OH, KH, OW, KW, N·C) blocks, summed over KH and KW; backward copies dy / (KH·KW) into
    every pixel of its block. Overlapping or gapped windows use im2col.
    """

    def uses_im2col(self) -> bool:
        return self.stride != self.size

    def forward(self, x, training=False):
        n, c, h, w = check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        (kh, kw), area = self.size, self.size[0] * self.size[1]
        self._cache = x.shape
        if not self.uses_im2col():  # (odd H or W drop their last rows/columns)
            blocks = pixel_major(x)[:kh * oh, :kw * ow].reshape(oh, kh, ow, kw, n * c)
            y = blocks.sum(axis=(1, 3)) * np.asarray(1 / area, x.dtype)
        else:
            y = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c).mean(axis=1)  # (M, C)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        x_shape = self._take_cache()
        if not need_dx:
            return None
        n, c, oh, ow = dy.shape
        (kh, kw), area = self.size, self.size[0] * self.size[1]
        share = pixel_major(dy) / np.asarray(area, dy.dtype)  # (OH, OW, N, C)
        if self.stride == self.size:
            dx = np.empty((x_shape[2], x_shape[3], n, c), share.dtype)
            dx[kh * oh:] = 0  # rows and columns past the last window get no gradient
            dx[:kh * oh, kw * ow:] = 0
            blocks = dx[:kh * oh, :kw * ow].reshape(oh, kh, ow, kw, n, c)  # a view: kh·oh rows of dx
            blocks[...] = share[:, None, :, None]
            return from_pixel_major(dx)
        share = share.reshape(oh * ow * n, 1, c)
        return col2im(np.broadcast_to(share, (oh * ow * n, area, c)), x_shape, self.size, self.stride)

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(2), rng.standard_normal((2, 2, 4, 5))), (cls(2, stride=1), rng.standard_normal((2, 2, 4, 3)))]
