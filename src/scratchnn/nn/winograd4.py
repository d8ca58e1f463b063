"""Winograd's F(4x4, 3x3): a 3x3 stride-1 convolution with 4x fewer products (F(2x2, 3x3): 2.25x).

The idea of ``nn/winograd.py`` with bigger tiles. A 6x6 input tile d (stride 4) gives a 4x4
output tile through the interpolation points 0, 1, −1, 2, −2 and ∞ (Lavin & Gray, 2015):

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        36 multiplications instead of 16·9 = 144

so the products do 2.25 multiply-adds per output pixel and input channel where F(2x2, 3x3) does
4 and im2col 9. The price: Bᵀ and Aᵀ hold 2, 4, 5 and 8, not just ±1, so the tile transforms
are done as small matrix products (a 6x6 or 4x6 matrix times long stacks of tile rows, read in
place through strided views) instead of signed additions; and the bigger constants cost float32
some precision (~5e-6 relative error against ~1e-6 for F(2x2, 3x3), both far below what training
notices). Tiles past the image (OH or OW not a multiple of 4) read zeros and are dropped.

The products, the bias and the forward and backward passes are those of F(2x2, 3x3) with 36
slots instead of 16 (``winograd.forward(..., scheme=winograd4)`` and ``winograd.backward``, which
call this module's tile transforms): backward is the transposed map
    dM = A dY Aᵀ per tile,  dU = Vᵀ·dM,  dW = Gᵀ dU G,  dV = dM·Uᵀ,  dx = B dV Bᵀ added into place,
with neighbouring tiles sharing two rows (columns) of the padded image, whose gradients add.
Arrays are pixel-major, (H, W, N, C) in memory, as in every convolution layer here.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .im2col import conv_output_shape, from_pixel_major
from .winograd import padded_image

TILE = 4  # output tile side; input tiles are TILE + 2 = 6 a side, neighbours sharing 2 rows
BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])          # input tiles
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])             # kernels
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])  # outputs


def tiles(height: int, width: int, padding) -> tuple[int, int, int, int]:
    """(OH, OW, TH, TW): the output size of a 3x3 stride-1 convolution and its 4x4 tiles a side."""
    oh, ow = conv_output_shape(height, width, 3, 1, padding)
    return oh, ow, -(-oh // 4), -(-ow // 4)


def work_floats(input_shape, out_channels: int, padding) -> int:
    """Numbers ``forward`` holds per sample besides its output: the padded image, the row-
    transformed tiles, V (36 per tile and input channel), M (36 per tile and output channel),
    the output transform's half-way array (24 per tile and output channel) and the 4x4 tiles."""
    c, h, w = input_shape
    _, _, th, tw = tiles(h, w, padding)
    return (4 * th + 2 + 6 * th) * (4 * tw + 2) * c + th * tw * (36 * c + 76 * out_channels)


def rows_shape(th: int, tw: int, n: int, c: int) -> tuple[int, ...]:
    """The work array ``input_tiles`` and ``input_tiles_adjoint`` take: Bᵀ applied to rows."""
    return (6, th, 4 * tw + 2, n, c)


def output_work_shape(th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
    """The work array ``output_tiles`` takes: Aᵀ applied to the columns of the product tiles."""
    return (6, th, tw, 4, n, f)


def adjoint_work_shape(th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
    """The work array ``output_tiles_adjoint`` takes: A applied to the rows of dy's tiles."""
    return (th, 6, tw, 4, n, f)


def _view(array: np.ndarray, shape) -> np.ndarray:
    """``array`` reshaped without a copy (an error, never a silent copy, when that is impossible):
    results are written through these views."""
    view = array.view()
    view.shape = shape
    return view


def _windows(rows: np.ndarray, count: int, axis: int) -> np.ndarray:
    """The ``count`` overlapping 6-long windows (stride 4) along ``axis`` of ``rows``, as a new
    axis pair (count, 6) in its place: a strided view, nothing copied."""
    step = rows.strides[axis]
    shape = rows.shape[:axis] + (count, 6) + rows.shape[axis + 1:]
    strides = rows.strides[:axis] + (4 * step, step) + rows.strides[axis + 1:]
    return as_strided(rows, shape, strides, writeable=False)


def input_tiles(image: np.ndarray, padding, out: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """V (6, 6, TH, TW, N, C) = Bᵀ d B for every 6x6 tile d (stride 4) of the padded image.

    image (H, W, N, C) pixel-major; ``rows`` a ``rows_shape`` work array; ``out`` is returned
    (its (36, TH·TW·N, C) reshape is what the products read). Bᵀ goes over the tiles' rows
    (one 6x6 by 6x(W'·N·C) product per tile row), then over their columns.
    """
    h, w = image.shape[:2]
    (ph, pw), (_, _, th, tw) = padding, tiles(h, w, padding)
    padded = np.ascontiguousarray(padded_image(image, (4 * th + 2, 4 * tw + 2), (ph, pw)))
    bt = BT.astype(out.dtype)
    flat = _view(padded, (padded.shape[0], -1))                      # (H', W'·N·C)
    np.matmul(bt, _windows(flat, th, 0), out=_view(rows, (6, th, flat.shape[1])).transpose(1, 0, 2))
    nc = rows.shape[3] * rows.shape[4]
    columns = _windows(_view(rows, (6, th, rows.shape[2], nc)), tw, 2)  # (6, TH, TW, 6, NC)
    np.matmul(bt, columns, out=_view(out, (6, 6, th, tw, nc)).transpose(0, 2, 3, 1, 4))
    return out


def input_tiles_adjoint(dV: np.ndarray, image_shape, padding, rows: np.ndarray) -> np.ndarray:
    """The transpose of ``input_tiles``: dx (N, C, H, W) from dV (6, 6, TH, TW, N, C).

    Tile (t, s) read padded rows 4t..4t+5 and columns 4s..4s+5: its first four land alone, its
    last two on the next tile's first two, where the gradients add.
    """
    h, w, n, c = image_shape
    (ph, pw), (_, _, th, tw) = padding, tiles(h, w, padding)
    b = BT.T.astype(dV.dtype)  # the adjoint of Bᵀ·d is B·d
    nc = n * c
    R = _view(rows, (6, th, 4 * tw + 2, nc))
    tiles_by_row = _view(dV, (6, 6, th, tw, nc)).transpose(0, 2, 3, 1, 4)  # (6, TH, TW, 6, NC)
    np.matmul(b[:4], tiles_by_row, out=_view(R[:, :, :4 * tw], (6, th, tw, 4, nc)))
    R[:, :, 4 * tw:] = 0
    shared = np.matmul(b[4:], tiles_by_row)  # (6, TH, TW, 2, NC): columns 4s + 4 and 4s + 5
    R[:, :, 4::4] += shared[:, :, :, 0]
    R[:, :, 5::4] += shared[:, :, :, 1]
    width = (4 * tw + 2) * nc
    dpad = np.empty((4 * th + 2, 4 * tw + 2, n, c), dV.dtype)
    D = _view(dpad, (4 * th + 2, width))
    by_tile_row = _view(rows, (6, th, width)).transpose(1, 0, 2)  # (TH, 6, W'·N·C)
    np.matmul(b[:4], by_tile_row, out=_view(D[:4 * th], (th, 4, width)))
    D[4 * th:] = 0
    shared = np.matmul(b[4:], by_tile_row)  # (TH, 2, W'·N·C): rows 4t + 4 and 4t + 5
    D[4::4] += shared[:, 0]
    D[5::4] += shared[:, 1]
    return from_pixel_major(dpad[ph:ph + h, pw:pw + w])


def output_tiles(M: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Y = Aᵀ M A for every tile: M (6, 6, TH, TW, N, F) -> out (OH, OW, N, F), pixel-major.

    The tile's output pixel (a, b) lands at (4t + a, 4s + b); pixels past OH or OW are dropped.
    ``work`` is an ``output_work_shape`` array.
    """
    th, tw, n, f = M.shape[2:]
    at = AT.astype(M.dtype)
    nf = n * f
    S = _view(work, (6, th, tw, 4, nf))
    np.matmul(at, _view(M, (6, 6, th, tw, nf)).transpose(0, 2, 3, 1, 4), out=S)  # S[i, t, s, b]
    whole = out.shape[:2] == (4 * th, 4 * tw) and out.flags.c_contiguous
    Y = out if whole else np.empty((4 * th, 4 * tw, n, f), M.dtype)
    np.matmul(at, _view(S, (6, th, tw * 4 * nf)).transpose(1, 0, 2), out=_view(Y, (th, 4, tw * 4 * nf)))
    if not whole:
        out[...] = Y[:out.shape[0], :out.shape[1]]
    return out


def output_tiles_adjoint(dy: np.ndarray, th: int, tw: int, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """The transpose of ``output_tiles``: dM (6, 6, TH, TW, N, F) from dy (OH, OW, N, F).

    dM[i, j] = Σ_a Σ_b AT[a, i]·AT[b, j]·dy[4t + a, 4s + b], A over the tiles' rows, then
    columns; dy pixels of tiles past OH or OW count as 0. ``work`` is an ``adjoint_work_shape`` array.
    """
    oh, ow, n, f = dy.shape
    if (oh, ow) != (4 * th, 4 * tw):
        full = np.zeros((4 * th, 4 * tw, n, f), dy.dtype)
        full[:oh, :ow] = dy
        dy = full
    dy = np.ascontiguousarray(dy)  # the rows are read as one matrix each
    a = AT.T.astype(out.dtype)
    nf = n * f
    dS = _view(work, (th, 6, tw, 4, nf))  # dS[t, i, s, b] = Σ_a AT[a, i]·dy[4t + a, 4s + b]
    np.matmul(a, _view(dy, (th, 4, tw * 4 * nf)), out=_view(dS, (th, 6, tw * 4 * nf)))
    np.matmul(a, dS, out=_view(out, (6, 6, th, tw, nf)).transpose(2, 0, 3, 1, 4))
    return out
