"""Winograd convolutions as pipelines over chunks of tile rows, one run of chunks per thread.

Either scheme, F(2x2, 3x3) (``nn.winograd``) or F(4x4, 3x3) (``nn.winograd4``), makes three
passes over the whole batch; for F(2x2, 3x3): the input transform writes every tile's
V (51 MB for the 32 -> 32 channel layer at 28x28, batch 128), the 16 products read it and write M
(as big), the output transform reads M. Each pass runs out of main memory. Tiles in different
tile rows are independent, so here each thread takes its own run of chunks (2 tile rows there)
through all three steps, with BLAS on one thread, while the chunk's V and M are still in cache;
the same ``nn.winograd`` functions on views of the same numbers. Measured on 2 cores: forward
31.5 -> 29.9 ms, backward 51.1 -> 44.0 ms against transforming by blocks around whole-batch
products (BLAS on both cores), and M is never held whole (~240 MB less at the peak of cnn-best).
F(4x4, 3x3) gains most: run over the whole batch, its transforms (small matrix products) cost
about what its products save; here it beats F(2x2, 3x3) on every layer of cnn-best (28x28:
forward 37.7 -> 29.4 ms, backward 63.0 -> 44.7 ms).

Two steps need more than a view. The zero padding is written by the blocks first, before any
chunk reads it (a tile row reads two image rows of the next one). And going back, neighbouring
chunks share two padded image rows, so each chunk's input gradient is computed on its own and the
shared rows are added when the chunks are copied into dx. The weight gradient is summed per
thread, then over threads: its last bits differ from one product over every tile.
"""
from __future__ import annotations

import numpy as np

from ..nn import winograd
from ..nn.base import Layer
from ..nn.conv import Conv2D
from ..nn.im2col import from_pixel_major, pixel_major
from .threads import Blocks, chunks, one_blas_thread


class BlockConv2D(Layer, register=False):
    """``conv`` (a Conv2D) with its Winograd transforms on ``blocks``' threads; im2col layers run
    as they are. Shares the layer's params, grads and work arrays."""

    def __init__(self, conv: Conv2D, blocks: Blocks):
        super().__init__()
        self.conv, self.blocks = conv, blocks
        self.params, self.grads = conv.params, conv.grads

    def forward(self, x, training=False):
        conv = self.conv
        scheme = conv.winograd_scheme(*x.shape[2:]) if x.ndim == 4 and x.shape[1] == conv.in_channels else None
        if scheme is not None:
            y, cache = forward(x, conv.params["W"], conv.params["b"], conv.padding, conv._buffer, self.blocks, scheme)
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


# A chunk of tile rows holds about this many numbers per tile array (V, M): 2 of the 14 tile rows
# of the 32 -> 32 channel layer at 28x28, batch 128 (measured fastest of 1, 2, 4, 7 rows).
CHUNK_FLOATS = 1 << 21


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, padding, buffer, blocks: Blocks, scheme=winograd):
    """``nn.winograd.forward`` for ``scheme`` (``nn.winograd`` or ``nn.winograd4``) as a pipeline
    over chunks of tile rows, each worker thread taking a run of chunks through the input transform, the 16 (36)
    products and the output transform."""
    n, c, h, w = x.shape
    f = W.shape[0]
    oh, ow, th, tw = scheme.tiles(h, w, padding)
    m, side = scheme.TILE, scheme.TILE + 2  # output and input tile sides
    dtype = np.result_type(x, W)
    image = pixel_major(x).astype(dtype, copy=False)
    padded = buffer("padded", (m * th + 2, m * tw + 2, n, c), dtype)
    blocks.run(lambda a, b: _pad_rows(image, padded, padding, a, b), len(padded), padded.size)
    V = buffer("V", (side, side, th, tw, n, c), dtype)
    U = winograd.kernel_transform(W.astype(dtype, copy=False), scheme.G)
    y = np.empty((oh, ow, n, f), dtype)
    pieces, step = _tile_row_chunks(th, side * side * tw * n * max(c, f))
    shapes = {"rows": lambda r: scheme.rows_shape(r, tw, n, c), "M": lambda r: (side * side, r * tw * n, f),
              "S": lambda r: scheme.output_work_shape(r, tw, n, f)}
    work = [_work_arrays(buffer, k, shapes, step, dtype) for k in range(blocks.workers)]
    slot = winograd.bias_slot(scheme.G)

    def pipeline(k, pieces):
        for a, z in pieces:  # tile rows a..z read padded rows m·a..m·z+1
            rows, M, S = (part(z - a) for part in work[k])
            scheme.input_tiles(padded[m * a:m * z + 2], (0, 0), V[:, :, a:z], rows)
            products = np.matmul(V[:, :, a:z].reshape(side * side, -1, c), U, out=M)
            products[slot] += b
            scheme.output_tiles(products.reshape(side, side, z - a, tw, n, f), y[m * a:m * z], S)

    with one_blas_thread():
        blocks.deal(pipeline, pieces)
    return from_pixel_major(y), (x.shape, V, U, scheme)


def backward(dy: np.ndarray, cache, padding, grads: dict, buffer, blocks: Blocks, need_dx: bool = True):
    """``nn.winograd.backward`` as a pipeline over chunks of tile rows: per chunk the output
    transform's adjoint, the weight gradient's products (summed per worker, then over workers),
    and the input gradient's products and transform; then the chunks' padded input gradients are
    stitched into dx (neighbouring chunks share two padded rows)."""
    x_shape, V, U, scheme = cache
    n, c, h, w = x_shape
    f = dy.shape[1]
    _, _, th, tw = scheme.tiles(h, w, padding)
    m, side = scheme.TILE, scheme.TILE + 2
    dtype = V.dtype
    dy = pixel_major(dy).astype(dtype, copy=False)
    pieces, step = _tile_row_chunks(th, side * side * tw * n * max(c, f))
    shapes = {"dM": lambda r: (side * side, r * tw * n, f), "dS": lambda r: scheme.adjoint_work_shape(r, tw, n, f),
              "dV": lambda r: (side * side, r * tw * n, c), "rows": lambda r: scheme.rows_shape(r, tw, n, c)}
    work = [_work_arrays(buffer, k, shapes, step, dtype) for k in range(blocks.workers)]
    pads = [None] * len(pieces)  # each chunk's padded input gradient
    slot = winograd.bias_slot(scheme.G)

    def pipeline(k, share):
        dU, db = np.zeros((side * side, f, c), dtype), np.zeros(f, dtype)
        for i in share:
            a, z = pieces[i]
            r, p = z - a, (z - a) * tw * n
            dM, dS, dV, rows = (part(r) for part in work[k])
            scheme.output_tiles_adjoint(dy[m * a:m * z], r, tw, dM.reshape(side, side, r, tw, n, f), dS)
            # NOTE: (dMᵀ·V), not Vᵀ·dM: OpenBLAS is ~25% faster at the product with the long axis inside
            dU += np.matmul(dM.transpose(0, 2, 1), V[:, :, a:z].reshape(side * side, p, c))
            db += np.ones(p, dtype) @ dM[slot]  # the bias was added to M[1, 1]
            if need_dx:
                dVa = np.matmul(dM, U.transpose(0, 2, 1), out=dV).reshape(side, side, r, tw, n, c)
                pads[i] = pixel_major(scheme.input_tiles_adjoint(dVa, (m * r + 2, m * tw + 2, n, c), (0, 0), rows))
        return dU, db

    chunk_indices = list(range(len(pieces)))
    with one_blas_thread():
        sums = blocks.deal(pipeline, chunk_indices)
    winograd.kernel_gradient(sum(dU for dU, _ in sums).transpose(0, 2, 1), grads["W"], scheme.G)
    grads["b"][...] = sum(db for _, db in sums)
    if not need_dx:
        return None
    dx = np.empty((h, w, n, c), dtype)
    blocks.deal(lambda k, share: [_stitch(pads, pieces, i, dx, padding, m) for i in share], chunk_indices)
    return from_pixel_major(dx)


def _work_arrays(buffer, k: int, shapes: dict, step: int, dtype) -> list:
    """Worker k's work arrays, one per ``shapes`` entry {name: rows -> shape}, each sized for
    ``step`` tile rows; returned as functions r -> a contiguous view for a chunk of r rows."""
    flat = {name: buffer(f"{name}{k}", (int(np.prod(shape(step))),), dtype) for name, shape in shapes.items()}
    return [lambda r, a=flat[name], shape=shape: a[:int(np.prod(shape(r)))].reshape(shape(r))
            for name, shape in shapes.items()]


def _tile_row_chunks(tile_rows: int, row_floats: int) -> tuple[list[tuple[int, int]], int]:
    """The chunks (a, z) of tile rows, about CHUNK_FLOATS numbers per tile array each (a tile
    row holding ``row_floats``), and the most tile rows one holds (its work arrays' size)."""
    step = max(1, min(tile_rows, CHUNK_FLOATS // row_floats))
    return list(chunks(0, tile_rows, row_floats, step * row_floats)), step


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


def _stitch(pads: list[np.ndarray], ranges: list[tuple[int, int]], k: int, dx: np.ndarray, padding,
            m: int = 2) -> None:
    """Write block k's rows of dx (H, W, N, C): its padded rows m·a..m·b (..m·b+1 for the last
    block; m the output tile side) with the padding dropped, plus the previous block's last two
    rows, which are its first two."""
    (ph, pw), (h, w) = padding, dx.shape[:2]
    a, b = ranges[k]
    low, high = m * a, m * b + (2 if k == len(ranges) - 1 else 0)
    top, bottom = max(low, ph), min(high, ph + h)
    if top < bottom:
        dx[top - ph:bottom - ph] = pads[k][top - low:bottom - low, pw:pw + w]
    if k > 0:
        for row in range(max(low, ph), min(low + 2, ph + h)):
            dx[row - ph] += pads[k - 1][-2 + row - low, pw:pw + w]
