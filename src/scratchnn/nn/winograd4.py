"""Winograd's F(4x4, 3x3): a 3x3 stride-1 convolution with 4x fewer products (F(2x2, 3x3): 2.25x).

The idea of ``nn/winograd.py`` with bigger tiles. A 6x6 input tile d (stride 4) gives a 4x4
output tile through the interpolation points 0, 1, −1, 2, −2 and ∞ (Lavin & Gray, 2015):

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        36 multiplications instead of 16·9 = 144

so the products do 2.25 multiply-adds per output pixel and input channel where F(2x2, 3x3) does
4 and im2col 9. The price: Bᵀ and Aᵀ hold 2, 4, 5 and 8, not just ±1, so the tile transforms
are done as small matrix products (a 6x6 or 4x6 matrix times the tile rows of each image
column, read and written in place through strided views) instead of signed additions; and the
bigger constants cost float32 some precision (~5e-6 relative error against ~1e-6 for F(2x2, 3x3), both far below what training
notices). Tiles past the image (OH or OW not a multiple of 4) read zeros and are dropped.

The products, the bias and the forward and backward passes are those of F(2x2, 3x3) with 36
slots instead of 16 (``winograd.forward(..., scheme=F4)`` and ``winograd.backward(..., scheme=F4)``,
``F4`` below, which call its tile transforms): backward is the transposed map
    dM = A dY Aᵀ per tile,  dU = Vᵀ·dM,  dW = Gᵀ dU G,  dV = dM·Uᵀ,  dx = B dV Bᵀ added into place,
with neighbouring tiles sharing two rows (columns) of the padded image, whose gradients add.
Arrays are pixel-major, (H, W, N, C) in memory, as in every convolution layer here.

Nothing above depends on the tile side but the three matrices: ``MatrixTiles(BT, G, AT)`` is
F(m x m, 3x3) for any m (input tiles m + 2 a side), ``MatrixTiles.from_points`` builds the
matrices from the interpolation points, ``F4`` is this module's, ``winograd5.F5`` and
``winograd7.F7`` bigger tiles. Each is a *scheme*: what ``winograd.forward`` and the fast path take.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .im2col import conv_output_shape, from_pixel_major

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])          # input tiles
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])             # kernels
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])  # outputs


class MatrixTiles:
    """F(m x m, 3x3) with tile transforms done as small matrix products: Bᵀ (m+2, m+2) for input
    tiles, G (m+2, 3) for kernels, Aᵀ (m, m+2) for output tiles; m = len(Aᵀ) = ``TILE``."""

    def __init__(self, bt, g, at):
        self.BT, self.G, self.AT = (np.asarray(a) for a in (bt, g, at))
        self.TILE = len(self.AT)  # output tile side m; input tiles are m + 2 a side, neighbours sharing 2 rows
        self.SIDE = self.TILE + 2
        if self.BT.shape != (self.SIDE, self.SIDE) or self.G.shape != (self.SIDE, 3) or self.AT.shape[1] != self.SIDE:
            raise ValueError(f"F({self.TILE}x{self.TILE}, 3x3) needs Bᵀ {self.SIDE}x{self.SIDE}, G {self.SIDE}x3 and "
                             f"Aᵀ {self.TILE}x{self.SIDE}; got {self.BT.shape}, {self.G.shape}, {self.AT.shape}")

    @classmethod
    def from_points(cls, *points) -> MatrixTiles:
        """F(m x m, 3x3) through m + 1 finite interpolation points a₀.. (a₁ must be 1: the bias
        goes to M[1, 1]) and ∞, by the Cook-Toom construction, in exact fractions:

            Aᵀ[i, j] = aⱼⁱ        G[j] = (1, aⱼ, aⱼ²) / Πₗ≠ⱼ(aⱼ − aₗ)        Bᵀ[j] = Πₗ≠ⱼ(x − aₗ)
            ∞: Aᵀ's last column (0, .., 0, 1), G's last row (0, 0, 1), Bᵀ's last row Πₗ(x − aₗ)

        (a row of Bᵀ is a polynomial's coefficients, x⁰ first). ``from_points(0, 1, -1, 2, -2)``
        gives this module's F(4x4, 3x3) matrices exactly.
        """
        a = [Fraction(p) for p in points]
        if len(a) < 3 or len(set(a)) < len(a) or a[1] != 1:
            raise ValueError(f"F(m x m, 3x3) needs 3 or more distinct points, the second 1; got {points}")
        m = len(a) - 1
        at = [[p ** i for p in a] + [int(i == m - 1)] for i in range(m)]
        g = [[p ** k / math.prod(p - q for q in a if q != p) for k in range(3)] for p in a] + [[0, 0, 1]]
        bt = [_polynomial([q for q in a if q != p]) + [0] for p in a] + [_polynomial(a)]
        return cls(*(np.array(matrix, dtype=float) for matrix in (bt, g, at)))

    def tiles(self, height: int, width: int, padding) -> tuple[int, int, int, int]:
        """(OH, OW, TH, TW): the output size of a 3x3 stride-1 convolution and its m x m tiles a side."""
        oh, ow = conv_output_shape(height, width, 3, 1, padding)
        return oh, ow, -(-oh // self.TILE), -(-ow // self.TILE)

    def products(self, height: int, width: int, padding) -> int:
        """Multiplications per image and (input, output) channel pair: (m+2)² for each tile."""
        _, _, th, tw = self.tiles(height, width, padding)
        return th * tw * self.SIDE ** 2

    def work_floats(self, input_shape, out_channels: int, padding) -> int:
        """Numbers ``forward`` holds per sample besides its output: a copy of the image (when its
        channels are not one run of memory), the row-transformed tiles, V ((m+2)² per tile and
        input channel), M ((m+2)² per tile and output channel), the output transform's half-way
        array ((m+2)·m) and the m x m tiles."""
        c, h, w = input_shape
        m, s = self.TILE, self.SIDE
        _, _, th, tw = self.tiles(h, w, padding)
        return h * w * c + s * th * (m * tw + 2) * c + th * tw * (s * s * c + (s * s + s * m + m * m) * out_channels)

    def rows_shape(self, th: int, tw: int, n: int, c: int) -> tuple[int, ...]:
        """The work array ``input_tiles`` and ``input_tiles_adjoint`` take: Bᵀ applied to rows."""
        return (self.SIDE, th, self.TILE * tw + 2, n, c)

    def output_work_shape(self, th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
        """The work array ``output_tiles`` takes: Aᵀ applied to the columns of the product tiles."""
        return (self.SIDE, th, tw, self.TILE, n, f)

    def adjoint_work_shape(self, th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
        """The work array ``output_tiles_adjoint`` takes: A applied to the rows of dy's tiles."""
        return (th, self.SIDE, tw, self.TILE, n, f)

    def _windows(self, rows: np.ndarray, count: int, axis: int) -> np.ndarray:
        """The ``count`` overlapping (m+2)-long windows (stride m) along ``axis`` of ``rows``, as
        a new axis pair (count, m+2) in its place: a strided view, nothing copied."""
        step = rows.strides[axis]
        shape = rows.shape[:axis] + (count, self.SIDE) + rows.shape[axis + 1:]
        strides = rows.strides[:axis] + (self.TILE * step, step) + rows.strides[axis + 1:]
        return as_strided(rows, shape, strides, writeable=False)

    def input_tiles(self, image: np.ndarray, padding, out: np.ndarray, rows: np.ndarray,
                    tile_rows: tuple[int, int] | None = None) -> np.ndarray:
        """V (m+2, m+2, TH, TW, N, C) = Bᵀ d B for every (m+2)-square tile d (stride m) of the
        padded image; with ``tile_rows`` (a, z), of tile rows a..z only (V (m+2, m+2, z − a, ..)).

        image (H, W, N, C) pixel-major; ``rows`` a ``rows_shape`` work array; ``out`` is returned
        (its ((m+2)², TH·TW·N, C) reshape is what the products read). Bᵀ goes over the tiles'
        rows, then over their columns, one (m+2, N·C) product per tile row and image column. The
        padding is never built: a tile row's product reads the image rows it covers, with the
        columns of Bᵀ that meet them, and the padding columns of ``rows`` are zeros.
        """
        m, s = self.TILE, self.SIDE
        h, w = image.shape[:2]
        (ph, pw), (_, _, th, tw) = padding, self.tiles(h, w, padding)
        a, z = tile_rows or (0, th)
        pixels = _pixel_rows(image)
        nc = pixels.shape[2]
        bt = self.BT.astype(out.dtype)
        R = _view(rows, (s, z - a, m * tw + 2, nc))
        R[:, :, :pw] = 0
        R[:, :, pw + w:] = 0
        for t in range(a, z):
            top = m * t - ph  # the image row of the tile row's first padded row
            low, high = max(top, 0), min(top + s, h)
            inside = R[:, t - a, pw:pw + w].transpose(1, 0, 2)  # (W, m+2, N·C)
            if low < high:
                np.matmul(bt[:, low - top:high - top], pixels[low:high].transpose(1, 0, 2), out=inside)
            else:
                inside[...] = 0
        columns = self._windows(R, tw, 2)  # (s, TH, TW, s, NC)
        np.matmul(bt, columns, out=_view(out, (s, s, z - a, tw, nc)).transpose(0, 2, 3, 1, 4))
        return out

    def input_tiles_adjoint(self, dV: np.ndarray, image_shape, padding, rows: np.ndarray,
                            out: np.ndarray | None = None, tile_rows: tuple[int, int] | None = None) -> np.ndarray:
        """The transpose of ``input_tiles``: dx (N, C, H, W) from dV (m+2, m+2, TH, TW, N, C).

        Tile (t, s) read padded rows mt..mt+m+1 and columns ms..ms+m+1: its first m land alone,
        its last two on the next tile's first two, where the gradients add; padding's are dropped.
        dx is written into ``out`` (H, W, N, C) when given. With ``tile_rows`` (a, z), dV holds
        tile rows a..z only, and with a > 0 their first two rows are added to what ``out`` holds
        (the tile row above's last two, written by this call for tile rows ..a).
        """
        m, s = self.TILE, self.SIDE
        h, w, n, c = image_shape
        (ph, pw), (_, _, th, tw) = padding, self.tiles(h, w, padding)
        a, z = tile_rows or (0, th)
        b = self.BT.T.astype(dV.dtype)  # the adjoint of Bᵀ·d is B·d
        nc = n * c
        R = _view(rows, (s, z - a, m * tw + 2, nc))
        tiles_by_row = _view(dV, (s, s, z - a, tw, nc)).transpose(0, 2, 3, 1, 4)  # (s, r, TW, s, NC)
        np.matmul(b[:m], tiles_by_row, out=_view(R[:, :, :m * tw], (s, z - a, tw, m, nc)))
        R[:, :, m * tw:] = 0
        shared = np.matmul(b[m:], tiles_by_row)  # (s, r, TW, 2, NC): columns ms + m and ms + m + 1
        R[:, :, m::m] += shared[:, :, :, 0]
        R[:, :, m + 1::m] += shared[:, :, :, 1]
        out = np.empty((h, w, n, c), dV.dtype) if out is None else out
        pixels = _pixel_rows(out, copy=False)
        carry = _take_rows(pixels, m * a - ph, 2) if a > 0 else None  # the tile row above's last two
        for t in range(a, z):
            by_column = R[:, t - a, pw:pw + w].transpose(1, 0, 2)  # (W, m+2, N·C)
            top = m * t - ph  # the image row of the tile row's first padded row
            low, high = max(top, 0), min(top + m, h)
            if low < high:
                np.matmul(b[low - top:high - top], by_column, out=pixels[low:high].transpose(1, 0, 2))
            if carry is not None:
                _put_rows(pixels, top, carry, add=True)
            carry = np.matmul(b[m:], by_column).transpose(1, 0, 2)  # (2, W, N·C): rows mt + m, mt + m + 1
        _put_rows(pixels, m * z - ph, carry)
        return from_pixel_major(out)

    def output_tiles(self, M: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Y = Aᵀ M A for every tile: M (m+2, m+2, TH, TW, N, F) -> out (OH, OW, N, F), pixel-major.

        The tile's output pixel (a, b) lands at (mt + a, ms + b); pixels past OH or OW are
        dropped. ``work`` is an ``output_work_shape`` array.
        """
        m, s = self.TILE, self.SIDE
        th, tw, n, f = M.shape[2:]
        at = self.AT.astype(M.dtype)
        nf = n * f
        S = _view(work, (s, th, tw, m, nf))
        np.matmul(at, _view(M, (s, s, th, tw, nf)).transpose(0, 2, 3, 1, 4), out=S)  # S[i, t, s, b]
        whole = out.shape[:2] == (m * th, m * tw) and out.strides[2:] == (f * out.itemsize, out.itemsize)
        Y = out if whole else np.empty((m * th, m * tw, n, f), M.dtype)
        rows = _view(Y, (th, m, m * tw, nf))  # a view: Y's image and channel axes are one run of memory
        np.matmul(at, _view(S, (s, th, tw * m, nf)).transpose(1, 2, 0, 3), out=rows.transpose(0, 2, 1, 3))
        if not whole:
            out[...] = Y[:out.shape[0], :out.shape[1]]
        return out

    def output_tiles_adjoint(self, dy: np.ndarray, th: int, tw: int, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The transpose of ``output_tiles``: dM (m+2, m+2, TH, TW, N, F) from dy (OH, OW, N, F).

        dM[i, j] = Σ_a Σ_b AT[a, i]·AT[b, j]·dy[mt + a, ms + b], A over the tiles' rows, then
        columns; dy pixels of tiles past OH or OW count as 0. ``work`` is an ``adjoint_work_shape`` array.
        """
        m, s = self.TILE, self.SIDE
        oh, ow, n, f = dy.shape
        if (oh, ow) != (m * th, m * tw):
            full = np.zeros((m * th, m * tw, n, f), dy.dtype)
            full[:oh, :ow] = dy
            dy = full
        elif dy.strides[2:] != (f * dy.itemsize, dy.itemsize):
            dy = np.ascontiguousarray(dy)
        a = self.AT.T.astype(out.dtype)
        nf = n * f
        dS = _view(work, (th, s, tw, m, nf))  # dS[t, i, s, b] = Σ_a AT[a, i]·dy[mt + a, ms + b]
        rows = _view(dy, (th, m, m * tw, nf))  # a view: dy's image and channel axes are one run of memory
        np.matmul(a, rows.transpose(0, 2, 1, 3), out=_view(dS, (th, s, tw * m, nf)).transpose(0, 2, 1, 3))
        np.matmul(a, dS, out=_view(out, (s, s, th, tw, nf)).transpose(2, 0, 3, 1, 4))
        return out

    def __repr__(self):
        return f"F({self.TILE}x{self.TILE}, 3x3)"


def _polynomial(roots: list) -> list:
    """The coefficients (x⁰ first) of Π (x − r) over ``roots``."""
    coefficients = [Fraction(1)]
    for r in roots:  # times (x − r)
        shifted = [Fraction(0)] + coefficients
        coefficients = [c - r * d for c, d in zip(shifted, coefficients + [Fraction(0)])]
    return coefficients


def _columns_inside(windows: np.ndarray) -> np.ndarray:
    """Windows (TH, m+2, W', N·C) as (TH, W', m+2, N·C): a product per tile row and image column.

    NOTE: one (m+2, m+2)·(m+2, W'·N·C) product takes OpenBLAS ~4x longer than W' products of
    (m+2, m+2)·(m+2, N·C): the long one is packed through memory, the short ones take its
    small-matrix kernels (7x9 by 9x61,440 floats: 571 µs against 144 µs on one thread)."""
    return windows.transpose(0, 2, 1, 3)


def _pixel_rows(image: np.ndarray, copy: bool = True) -> np.ndarray:
    """image (H, W, N, C) as (H, W, N·C), a view (N and C must be one run of memory; otherwise a
    contiguous copy, or with ``copy`` False an error)."""
    h, w, n, c = image.shape
    if image.strides[2:] != (c * image.itemsize, image.itemsize):
        if not copy:
            raise ValueError("the image's N and C axes must be one run of memory")
        image = np.ascontiguousarray(image)
    return _view(image, (h, w, n * c))


def _take_rows(pixels: np.ndarray, start: int, count: int) -> np.ndarray:
    """A copy of rows start..start + count of ``pixels``, zeros for rows outside it (padding)."""
    rows = np.zeros((count, *pixels.shape[1:]), pixels.dtype)
    low, high = max(start, 0), min(start + count, len(pixels))
    if low < high:
        rows[low - start:high - start] = pixels[low:high]
    return rows


def _put_rows(pixels: np.ndarray, start: int, rows: np.ndarray, add: bool = False) -> None:
    """``rows`` written (or added) into ``pixels`` from row ``start``; rows outside it (padding) dropped."""
    low, high = max(start, 0), min(start + len(rows), len(pixels))
    if low < high:
        if add:
            pixels[low:high] += rows[low - start:high - start]
        else:
            pixels[low:high] = rows[low - start:high - start]


def _view(array: np.ndarray, shape) -> np.ndarray:
    """``array`` reshaped without a copy (an error, never a silent copy, when that is impossible):
    results are written through these views."""
    view = array.view()
    view.shape = shape
    return view


F4 = MatrixTiles(BT, G, AT)
