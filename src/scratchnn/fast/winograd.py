"""Winograd convolutions as pipelines over pieces of the batch, one run of pieces per thread.

Every scheme, F(2x2, 3x3) (``nn.winograd``) or F(m x m, 3x3) (``nn.winograd4``), makes passes
that are little arithmetic over a lot of memory: the input transform writes every tile's V, the
products read it and write M, the output transform reads M. Over the whole batch each pass runs
out of main memory (V of the 32 -> 32 channel layer at 28x28, batch 128, is 29 MB for
F(4x4, 3x3)). Tiles are independent, so the batch is cut into pieces, a few tile rows of a group
of images (about PIECE_FLOATS numbers a tile array), and one thread takes each piece through
every step while its arrays are still in cache, with BLAS on that thread only; the same tile
transforms run on each piece (``tile_rows``), reading the image's rows and writing dx's in place:
F(m x m, 3x3) never builds a padded copy of either (F(2x2, 3x3) pads each piece).

Each thread takes whole groups of images, their pieces top to bottom. Going back, vertically
neighbouring pieces share two padded image rows: a piece writes its rows of dx and adds into the
two it shares with the piece above, which the same thread has just written, so no piece waits on
another thread and no piece's input gradient is kept for a stitching pass. The weight gradient is
summed per thread, then over threads: its last bits differ from one product over every tile.

Measured on 2 cores (``conv_benchmark.py --fast``, F(4x4, 3x3), batch 128, forward + backward),
pieces of tile rows of the whole batch -> of tile rows of half of it, padded and stitched per
piece: 32 -> 32 channels at 28x28 40.4 -> 35.2 ms, 32 -> 64 at 13x13 (the ``cnn`` preset's)
15.9 -> 10.6 ms, at 14x14 19.4 -> 18.2 ms; a cnn-best epoch 6.54 -> 5.97 s, 47 MB less at the
peak. Smaller pieces lose: 2^16 numbers (a tile row of 8 images, L2-sized) made the 28x28 layer
twice as slow on two threads, a piece's ~40 NumPy calls costing more than the cache saves.
F(7x7, 3x3), fwd + bwd, 2 threads, three alternating runs, padded pieces -> the image's rows read
and dx's written in place: 28x28 32 -> 32 20.2 -> 19.0 ms, 14x14 32 -> 64 9.5 -> 9.0, 64 -> 64
14.3 -> 13.1.
"""
from __future__ import annotations

import numpy as np

from ..nn import winograd
from ..nn.base import Layer
from ..nn.conv import Conv2D
from ..nn.im2col import from_pixel_major, pixel_major
from .threads import Blocks, one_blas_thread, split


class BlockConv2D(Layer, register=False):
    """``conv`` (a Conv2D) with its Winograd transforms on ``blocks``' threads; im2col layers run
    as they are. Shares the layer's params, grads and work arrays."""

    def __init__(self, conv: Conv2D, blocks: Blocks):
        super().__init__()
        self.conv, self.blocks = conv, blocks
        self.params, self.grads = conv.params, conv.grads

    def forward(self, x, training=False):
        conv = self.conv
        fits = x.ndim == 4 and x.shape[1] == conv.in_channels
        scheme = conv.winograd_scheme(*x.shape[2:], rule=FAST_RULE) if fits else None
        if scheme is not None:
            params = conv.params
            y, cache = forward(x, params["W"], params["b"], conv.padding, conv.work_array, self.blocks, scheme)
            self._cache = ("blocks", cache)
            return y
        self._cache = ("textbook",)
        return conv.forward(x, training)

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "textbook":
            return self.conv.backward(dy, need_dx)
        return backward(dy, cache[1], self.conv.padding, self.grads, self.conv.work_array, self.blocks, need_dx)

    def output_shape(self, input_shape):
        return self.conv.output_shape(input_shape)

    def work_floats(self, input_shape):
        return self.conv.work_floats(input_shape)

    def __repr__(self):
        return f"BlockConv2D({self.conv!r}, {self.blocks!r})"


# "auto" on the fast path: Winograd from 16 input channels, and from 8 on outputs of at least 14
# a side (the layer's own rule, for one thread, wants 32, or 8 and 14). Measured with
# conv_benchmark.py --fast --grid (2 threads, N=128, C and F in 8..64, forward + backward), time
# over im2col's: C >= 16 0.22-0.88 on 11x11, 14x14 and 28x28 outputs (F(4x4, 3x3)); C = 8 with
# F(7x7, 3x3) 0.31-0.61 at 28x28 and 0.59-0.86 at 14x14, but with F(4x4, 3x3) on 11x11 0.88-1.18.
FAST_RULE = (16, 8, 14)

# A piece holds about this many numbers in its biggest tile array (V or M), by output tile side.
# F(4x4, 3x3): cnn-best epochs (5,000 images) took 5.85 s with 2^19, 5.97 s with 2^20, 6.45 s
# with 2^21 (one noisy run each). F(2x2, 3x3), whose transforms are many signed sums of slices
# (more NumPy calls a piece), was ~8% faster with 2^21 than 2^20 on the same layers. F(7x7, 3x3),
# forward + backward ms with 2^18 / 2^19 / 2^20 / 2^21: 32 -> 32 on 28x28 33.3 / 30.5 / 27.9 /
# 31.1, 64 -> 64 on 14x14 21.8 / 20.0 / 18.7 / 19.6 (batch 128, 2 threads); again with the tile
# transforms' products per image column, 2^17 .. 2^21: 42.5 / 28.4 / 24.5 / 21.7 / 25.2 and
# 27.2 / 19.5 / 18.6 / 15.1 / 16.5.
PIECE_FLOATS = {2: 1 << 21, 4: 1 << 20, 5: 1 << 20, 7: 1 << 20}


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, padding, buffer, blocks: Blocks, scheme=winograd):
    """``nn.winograd.forward`` for ``scheme`` (``nn.winograd`` or a ``winograd4.MatrixTiles``)
    as pipelines over pieces of the batch: each piece transformed, multiplied ((m+2)²
    products) and transformed back into its place in y while its arrays are in cache."""
    n, c, h, w = x.shape
    f = W.shape[0]
    oh, ow, th, tw = scheme.tiles(h, w, padding)
    m, side = scheme.TILE, scheme.TILE + 2  # output and input tile sides
    dtype = np.result_type(x, W)
    image = np.ascontiguousarray(pixel_major(x).astype(dtype, copy=False))  # (its pieces' N·C a run)
    plan = groups, rows_most, images_most = _pieces(th, n, side * side * tw * max(c, f), blocks.workers,
                                                    PIECE_FLOATS[m])
    V = _piece_views(buffer("V", (side * side * th * tw * n * c,), dtype), groups,
                     lambda r, k: (side, side, r, tw, k, c))
    U = winograd.kernel_transform(W.astype(dtype, copy=False), scheme.G)
    y = np.empty((oh, ow, n, f), dtype)
    shapes = {"rows": lambda r, k: scheme.rows_shape(r, tw, k, c), "M": lambda r, k: (side * side, r * tw * k, f),
              "S": lambda r, k: scheme.output_work_shape(r, tw, k, f)}
    work = [_work_arrays(buffer, worker, shapes, rows_most, images_most, dtype) for worker in range(blocks.workers)]
    slot = winograd.bias_slot(scheme.G)

    def pipeline(worker, share):
        for a, z, i, j in (piece for group in share for piece in group):  # tile rows a..z of images i..j
            rows, M, S = (part(z - a, j - i) for part in work[worker])
            scheme.input_tiles(image[:, :, i:j], padding, V[a, i], rows, (a, z))
            products = np.matmul(V[a, i].reshape(side * side, -1, c), U, out=M)
            products[slot] += b
            scheme.output_tiles(products.reshape(side, side, z - a, tw, j - i, f), y[m * a:m * z, :, i:j], S)

    with one_blas_thread():
        blocks.deal(pipeline, groups)
    return from_pixel_major(y), (x.shape, V, U, scheme, plan)


def backward(dy: np.ndarray, cache, padding, grads: dict, buffer, blocks: Blocks, need_dx: bool = True):
    """``nn.winograd.backward`` as pipelines over the forward's pieces: per piece the output
    transform's adjoint, the weight gradient's products (summed per thread, then over threads),
    and the input gradient's products and transform, added into dx."""
    x_shape, V, U, scheme, (groups, rows_most, images_most) = cache
    n, c, h, w = x_shape
    f = dy.shape[1]
    _, _, th, tw = scheme.tiles(h, w, padding)
    m, side = scheme.TILE, scheme.TILE + 2
    dtype = U.dtype
    dy = pixel_major(dy).astype(dtype, copy=False)
    shapes = {"dM": lambda r, k: (side * side, r * tw * k, f), "dS": lambda r, k: scheme.adjoint_work_shape(r, tw, k, f),
              "dV": lambda r, k: (side * side, r * tw * k, c), "rows": lambda r, k: scheme.rows_shape(r, tw, k, c)}
    work = [_work_arrays(buffer, worker, shapes, rows_most, images_most, dtype) for worker in range(blocks.workers)]
    dx = np.empty((h, w, n, c), dtype) if need_dx else None
    slot = winograd.bias_slot(scheme.G)

    def pipeline(worker, share):
        dU, db = np.zeros((side * side, f, c), dtype), np.zeros(f, dtype)
        for a, z, i, j in (piece for group in share for piece in group):
            r, k = z - a, j - i
            dM, dS, dV, rows = (part(r, k) for part in work[worker])
            scheme.output_tiles_adjoint(dy[m * a:m * z, :, i:j], r, tw, dM.reshape(side, side, r, tw, k, f), dS)
            # NOTE: (dMᵀ·V), not Vᵀ·dM: OpenBLAS is ~25% faster at the product with the long axis inside
            dU += np.matmul(dM.transpose(0, 2, 1), V[a, i].reshape(side * side, -1, c))
            db += np.ones(dM.shape[1], dtype) @ dM[slot]  # the bias was added to M[1, 1]
            if need_dx:
                dVp = np.matmul(dM, U.transpose(0, 2, 1), out=dV).reshape(side, side, r, tw, k, c)
                scheme.input_tiles_adjoint(dVp, (h, w, k, c), padding, rows, dx[:, :, i:j], (a, z))
        return dU, db

    with one_blas_thread():
        sums = blocks.deal(pipeline, groups)
    winograd.kernel_gradient(sum(dU for dU, _ in sums).transpose(0, 2, 1), grads["W"], scheme.G)
    grads["b"][...] = sum(db for _, db in sums)
    return None if dx is None else from_pixel_major(dx)


def _pieces(tile_rows: int, images: int, row_floats: int, workers: int, piece_floats: int):
    """(groups, most tile rows, most images) of a piece: the images cut into groups (a multiple
    of ``workers``, so the threads get equal shares), each group's tile rows into runs; a piece
    (a, z, i, j), tile rows a..z of images i..j, holds about ``piece_floats`` numbers per tile
    array (a tile row of one image holding ``row_floats``)."""
    per_group = max(1, piece_floats // row_floats)
    count = min(images, workers * -(-images // (workers * per_group)))
    image_ranges = split(images, count)
    most = max(j - i for i, j in image_ranges)
    step = max(1, min(tile_rows, piece_floats // (row_floats * most)))
    groups = [[(a, min(a + step, tile_rows), i, j) for a in range(0, tile_rows, step)] for i, j in image_ranges]
    return groups, step, most


def _piece_views(flat: np.ndarray, groups, shape) -> dict:
    """{(a, i): piece (a, z, i, j)'s array, of shape(z - a, j - i)}: contiguous views of ``flat``,
    which holds them all, one after another."""
    arrays, start = {}, 0
    for a, z, i, j in (piece for group in groups for piece in group):
        size = int(np.prod(shape(z - a, j - i)))
        arrays[a, i] = flat[start:start + size].reshape(shape(z - a, j - i))
        start += size
    return arrays


def _work_arrays(buffer, worker: int, shapes: dict, rows: int, images: int, dtype) -> list:
    """A worker's work arrays, one per ``shapes`` entry {name: (r, k) -> shape}, each sized for
    ``rows`` tile rows of ``images`` images; returned as functions (r, k) -> a contiguous view."""
    flat = {name: buffer(f"{name}{worker}", (int(np.prod(shape(rows, images))),), dtype)
            for name, shape in shapes.items()}
    return [lambda r, k, a=flat[name], shape=shape: a[:int(np.prod(shape(r, k)))].reshape(shape(r, k))
            for name, shape in shapes.items()]
