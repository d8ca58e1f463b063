"""Winograd convolutions with their tile transforms split across threads (see threads.py).

``nn.winograd`` transforms every tile of the batch in NumPy passes on one core, while BLAS runs
the 16 tile products on all of them; for the 32 -> 32 channel layer at 28x28 the transforms take
longer than the products. Tiles in different tile rows are independent, so here each thread
transforms a block of tile rows, calling the same ``nn.winograd`` functions on views of the
block: the same numbers, computed in the same order.

Two steps need more than a view. The zero padding is written by the blocks first, before any
block reads it (a tile row reads two image rows of the next one). And going back, neighbouring
tile rows share two padded image rows, so each block's input gradient is computed on its own and
the shared rows are added when the blocks are copied into dx.
"""
from __future__ import annotations

import numpy as np

from ..nn import winograd
from ..nn.base import Layer
from ..nn.conv import Conv2D
from ..nn.im2col import from_pixel_major, pixel_major
from .threads import Blocks


class BlockConv2D(Layer, register=False):
    """``conv`` (a Conv2D) with its Winograd transforms on ``blocks``' threads; im2col layers run
    as they are. Shares the layer's params, grads and work arrays."""

    def __init__(self, conv: Conv2D, blocks: Blocks):
        super().__init__()
        self.conv, self.blocks = conv, blocks
        self.params, self.grads = conv.params, conv.grads

    def forward(self, x, training=False):
        conv = self.conv
        if x.ndim == 4 and x.shape[1] == conv.in_channels and conv.uses_winograd(*x.shape[2:]):
            y, cache = forward(x, conv.params["W"], conv.params["b"], conv.padding, conv._buffer, self.blocks)
            self._cache = ("blocks", cache)
            return y
        self._cache = ("textbook",)
        return conv.forward(x, training)

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "textbook":
            return self.conv.backward(dy, need_dx)
        return backward(dy, cache[1], self.conv.padding, self.grads, self.conv._buffer, self.blocks, need_dx)

    def output_shape(self, input_shape):
        return self.conv.output_shape(input_shape)

    def work_floats(self, input_shape):
        return self.conv.work_floats(input_shape)

    def __repr__(self):
        return f"BlockConv2D({self.conv!r}, {self.blocks!r})"


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, padding, buffer, blocks: Blocks):
    """``nn.winograd.forward`` with the padding, the input transform and the output transform
    done by blocks of tile rows."""
    n, c, h, w = x.shape
    f = W.shape[0]
    oh, ow, th, tw = winograd.tiles(h, w, padding)
    dtype = np.result_type(x, W)
    image = pixel_major(x).astype(dtype, copy=False)
    padded = buffer("padded", (2 * th + 2, 2 * tw + 2, n, c), dtype)
    blocks.run(lambda a, b: _pad_rows(image, padded, padding, a, b), len(padded), padded.size)
    V = buffer("V", (4, 4, th, tw, n, c), dtype)
    rows = buffer("rows", (4, th, 2 * tw + 2, n, c), dtype)
    # tile rows a..b read padded rows 2a..2b+1: with no padding left, they are tiles of that slice
    blocks.run(lambda a, b: winograd.input_tiles(padded[2 * a:2 * b + 2], (0, 0), V[:, :, a:b], rows[:, a:b]),
               th, V.size)
    U, M = winograd.tile_products(V.reshape(16, th * tw * n, c), W, b, buffer)
    M, S = M.reshape(4, 4, th, tw, n, f), buffer("S", (4, 2, th, tw, n, f), dtype)
    y = np.empty((oh, ow, n, f), dtype)
    blocks.run(lambda a, b: winograd.output_tiles(M[:, :, a:b], y[2 * a:2 * b], S[:, :, a:b]), th, M.size)
    return from_pixel_major(y), (x.shape, V, U)


def backward(dy: np.ndarray, cache, padding, grads: dict, buffer, blocks: Blocks, need_dx: bool = True):
    """``nn.winograd.backward`` with both transforms done by blocks of tile rows."""
    x_shape, V, U = cache
    n, c, h, w = x_shape
    f = dy.shape[1]
    _, _, th, tw = winograd.tiles(h, w, padding)
    dtype = V.dtype
    dy = pixel_major(dy).astype(dtype, copy=False)
    dM = buffer("dM", (4, 4, th, tw, n, f), dtype)
    dS = buffer("dS", (2, 2, th, tw, n, f), dtype)
    blocks.run(lambda a, b: winograd.output_tiles_adjoint(dy[2 * a:2 * b], b - a, tw, dM[:, :, a:b], dS[:, :, a:b]),
               th, dM.size)
    p = th * tw * n
    dV = winograd.gradient_products(V.reshape(16, p, c), U, dM.reshape(16, p, f), grads, buffer, need_dx)
    if dV is None:
        return None
    dV = dV.reshape(4, 4, th, tw, n, c)
    rows = buffer("rows", (4, th, 2 * tw + 2, n, c), dtype)
    ranges = blocks.ranges(th, dV.size)

    def block_gradient(a, b):  # the padded input gradient of tile rows a..b: padded rows 2a..2b+1
        shape = (2 * (b - a) + 2, 2 * tw + 2, n, c)
        return pixel_major(winograd.input_tiles_adjoint(dV[:, :, a:b], shape, (0, 0), rows[:, a:b]))

    pads = blocks.run(block_gradient, th, dV.size)
    dx = np.empty((h, w, n, c), dtype)
    blocks.run(lambda a, b: _stitch(pads, ranges, ranges.index((a, b)), dx, padding), th, dV.size)
    return from_pixel_major(dx)


def _pad_rows(image: np.ndarray, padded: np.ndarray, padding, start: int, stop: int) -> None:
    """Rows start..stop of ``padded``: the image (H, W, N, C) placed at ``padding``, zeros around."""
    (ph, pw), (h, w) = padding, image.shape[:2]
    top, bottom = max(start, ph), min(stop, ph + h)  # the rows that hold image rows
    if top >= bottom:
        padded[start:stop] = 0
        return
    padded[start:top] = 0
    padded[bottom:stop] = 0
    inside = padded[top:bottom]
    width = min(w, inside.shape[1] - pw)
    inside[:, :pw] = 0
    inside[:, pw + width:] = 0
    inside[:, pw:pw + width] = image[top - ph:bottom - ph, :width]


def _stitch(pads: list[np.ndarray], ranges: list[tuple[int, int]], k: int, dx: np.ndarray, padding) -> None:
    """Write block k's rows of dx (H, W, N, C): its padded rows 2a..2b (..2b+1 for the last block)
    with the padding dropped, plus the previous block's last two rows, which are its first two."""
    (ph, pw), (h, w) = padding, dx.shape[:2]
    a, b = ranges[k]
    low, high = 2 * a, 2 * b + (2 if k == len(ranges) - 1 else 0)
    top, bottom = max(low, ph), min(high, ph + h)
    if top < bottom:
        dx[top - ph:bottom - ph] = pads[k][top - low:bottom - low, pw:pw + w]
    if k > 0:
        for row in range(max(low, ph), min(low + 2, ph + h)):
            dx[row - ph] += pads[k - 1][-2 + row - low, pw:pw + w]
