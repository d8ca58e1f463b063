"""Pooling over images x (N, C, H, W): MaxPool2D, AvgPool2D.

Both map (N, C, H, W) to (N, C, OH, OW), one KH×KW window per output pixel and channel, with
    OH = (H − KH) // stride + 1,   OW = (W − KW) // stride + 1      (no padding)
Arrays are pixel-major in memory, as in ``conv.py`` (see ``im2col``).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from .base import Layer
from .gradcheck_inputs import distinct_values
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

    def work_floats(self, input_shape):
        """The im2col matrix per sample."""
        c, oh, ow = self.output_shape(input_shape)
        return _im2col_floats(c, (oh, ow), self.size)

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

    With cols = im2col(x) seen as (OH·OW·N, KH·KW, C), one row of KH·KW pixels per window:
        forward    y = max over each window's pixels
        backward   winner = argmax over each window's pixels
                   dcols = dy at each window's winner, 0 elsewhere     dx = col2im(dcols)
    so where windows overlap, the routed gradients add. NOTE: on ties the first maximum in
    row-major window order wins alone (an all-zero window after a ReLU has 4 tied maxima; the
    gradient goes to one).
    """

    def forward(self, x, training=False):
        n, c, h, w = check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        cols = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c)  # (M, KH·KW, C)
        self._cache = (x.shape, cols)
        return from_pixel_major(cols.max(axis=1).reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        x_shape, cols = self._take_cache()
        if not need_dx:
            return None
        n, c, oh, ow = dy.shape
        # NOTE: found here, not in forward: argmax along the window axis is ~5x slower than max,
        # and a forward for a prediction never needs it
        winner = cols.argmax(axis=1)[:, None]  # (M, 1, C): the first maximum of each window
        dcols = np.zeros((oh * ow * n, self.size[0] * self.size[1], c), dy.dtype)
        np.put_along_axis(dcols, winner, pixel_major(dy).reshape(oh * ow * n, 1, c), axis=1)
        return col2im(dcols, x_shape, self.size, self.stride)

    @classmethod
    def gradcheck_cases(cls, rng):
        # distinct values: no window has a tie that a step of ±h could flip; windows and strides not
        # square too (the gradient audit: a height/width mix-up in col2im passed every check)
        return [(cls(2), distinct_values(rng, (2, 2, 4, 5))), (cls(3, stride=2), distinct_values(rng, (2, 2, 5, 6))),
                (cls((2, 3)), distinct_values(rng, (2, 2, 4, 6))),
                (cls((3, 2), stride=(1, 2)), distinct_values(rng, (2, 2, 5, 6)))]


class AvgPool2D(_Pool2D):
    """Mean of each KH×KW window, per channel: x (N, C, H, W) -> y (N, C, OH, OW).

        y = Σ_window x / (KH·KW)       dx = col2im(dy / (KH·KW) copied to every window position)
        OH = (H − KH) // stride + 1, OW likewise; stride defaults to the window size.
    """

    def forward(self, x, training=False):
        n, c, h, w = check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        self._cache = x.shape
        y = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c).mean(axis=1)  # (M, C)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        x_shape = self._take_cache()
        if not need_dx:
            return None
        n, c, oh, ow = dy.shape
        area = self.size[0] * self.size[1]
        share = (pixel_major(dy) / np.asarray(area, dy.dtype)).reshape(oh * ow * n, 1, c)
        return col2im(np.broadcast_to(share, (oh * ow * n, area, c)), x_shape, self.size, self.stride)

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(2), rng.standard_normal((2, 2, 4, 5))), (cls(2, stride=1), rng.standard_normal((2, 2, 4, 3))),
                (cls((2, 3), stride=(1, 2)), rng.standard_normal((2, 2, 4, 7)))]
