"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer products.

The 1-D idea, F(2, 3): two outputs of a 3-tap filter g over four inputs d,

    y0 = d0·g0 + d1·g1 + d2·g2        y1 = d1·g0 + d2·g1 + d3·g2          (6 multiplications)

are also, with m0 = (d0 − d2)·g0,  m1 = (d1 + d2)·(g0 + g1 + g2)/2,
                  m2 = (d2 − d1)·(g0 − g1 + g2)/2,  m3 = (d1 − d3)·g2,

    y0 = m0 + m1 + m2                 y1 = m1 − m2 − m3                   (4 multiplications)

(the filter's sums are paid once per kernel, not per pixel). As matrices y = Aᵀ[(G·g) ⊙ (Bᵀ·d)];
applied along rows and then columns, a 4x4 input tile d gives a 2x2 output tile:

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        16 multiplications instead of 4·9 = 36

Over channels the ⊙ becomes a sum over C, so each of the 16 positions (i, j) of the transformed
4x4 tile is one matrix product: M[ij] (P, F) = V[ij] (P, C) · U[ij] (C, F), with P = N·TH·TW tiles
(TH = ⌈OH/2⌉, TW = ⌈OW/2⌉): 16 GEMMs doing 16·P·C·F multiply-adds where im2col's one GEMM does
4·P·9·C·F. Bᵀ and Aᵀ hold only 0, 1 and −1, so the tile transforms are additions of whole
strided slices of the image: every tile of every image and channel at once, written straight
into the (16, P, C) layout the products read.

Backward is this linear map transposed (so the gradients are exact, not approximations):

    dM = the adjoint of the output transform of dy (each dy pixel lands in its tile's 16 slots)
    dU[ij] = V[ij]ᵀ · dM[ij]    dW = Gᵀ dU G       (the weight gradient: forward's tiles V again)
    dV[ij] = dM[ij] · U[ij]ᵀ    dx = the adjoint of the input transform of dV (overlapping tiles add)

Arrays are pixel-major, as everywhere in the convolution layers: x (N, C, H, W) is (H, W, N, C)
in memory, and the output comes out that way (see ``im2col``).
"""
from __future__ import annotations

import sys

import numpy as np

from .im2col import conv_output_shape, from_pixel_major, pixel_major

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])  # input tiles: Bᵀ d B
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])      # kernel: G g Gᵀ
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])                                 # output tiles: Aᵀ M A
TILE = 2  # output tile side; input tiles are TILE + 2 = 4 a side, neighbours sharing 2 rows


def tiles(height: int, width: int, padding) -> tuple[int, int, int, int]:
    """(OH, OW, TH, TW): the output size of a 3x3 stride-1 convolution and its 2x2 tiles a side."""
    oh, ow = conv_output_shape(height, width, 3, 1, padding)
    return oh, ow, (oh + 1) // 2, (ow + 1) // 2


def work_floats(input_shape, out_channels: int, padding) -> int:
    """Numbers ``forward`` holds per sample besides its output: the padded image, the row-
    transformed tiles, V (16 per tile and input channel), M (16 per tile and output channel) and
    the output transform's half-way array (8 per tile and output channel)."""
    c, h, w = input_shape
    _, _, th, tw = tiles(h, w, padding)
    return (2 * th + 2) * (2 * tw + 2) * c + 4 * th * (2 * tw + 2) * c + th * tw * (16 * c + 24 * out_channels)


def rows_shape(th: int, tw: int, n: int, c: int) -> tuple[int, ...]:
    """The work array ``input_tiles`` and ``input_tiles_adjoint`` take: Bᵀ applied to rows."""
    return (4, th, 2 * tw + 2, n, c)


def output_work_shape(th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
    """The work array ``output_tiles`` takes: Aᵀ applied to the columns of the product tiles."""
    return (4, 2, th, tw, n, f)


def adjoint_work_shape(th: int, tw: int, n: int, f: int) -> tuple[int, ...]:
    """The work array ``output_tiles_adjoint`` takes (only its middle rows are computed)."""
    return (2, 2, th, tw, n, f)


def kernel_transform(W: np.ndarray, g: np.ndarray = G) -> np.ndarray:
    """U (16, C, F) = G·g·Gᵀ for every (f, c) kernel g of W (F, C, 3, 3), positions (i, j) first
    (with F(4x4, 3x3)'s 6x3 ``g``: U (36, C, F))."""
    f, c = W.shape[:2]
    g = g.astype(W.dtype)
    return np.einsum("ik,fckl,jl->ijcf", g, W, g, optimize=True).reshape(len(g) ** 2, c, f)


def kernel_gradient(dU: np.ndarray, out: np.ndarray, g: np.ndarray = G) -> np.ndarray:
    """dW (F, C, 3, 3) = Gᵀ·dU·G from dU (16, C, F), the transpose of ``kernel_transform``."""
    c, f = dU.shape[1:]
    g = g.astype(dU.dtype)
    out[...] = np.einsum("ik,ijcf,jl->fckl", g, dU.reshape(len(g), len(g), c, f), g, optimize=True)
    return out


def combine(coeffs, terms, out: np.ndarray) -> np.ndarray:
    """out = Σ_k coeffs[k]·terms[k] for coefficients 0, 1 or −1, one pass per term after the first."""
    plus = [t for c, t in zip(coeffs, terms) if c > 0]
    minus = [t for c, t in zip(coeffs, terms) if c < 0]
    if plus and (len(plus) > 1 or minus):
        first = plus.pop(0)
        np.add(first, plus.pop(0), out=out) if plus else np.subtract(first, minus.pop(0), out=out)
    elif plus:
        np.copyto(out, plus.pop())
    else:
        np.negative(minus.pop(0), out=out)
    for t in plus:
        out += t
    for t in minus:
        out -= t
    return out


def add_into(coeffs, terms, out: np.ndarray) -> np.ndarray:
    """out += Σ_k coeffs[k]·terms[k] (coefficients 0, 1 or −1), in place."""
    for c, t in zip(coeffs, terms):
        if c > 0:
            out += t
        elif c < 0:
            out -= t
    return out


def input_tiles(image: np.ndarray, padding, out: np.ndarray, rows: np.ndarray,
                tile_rows: tuple[int, int] | None = None) -> np.ndarray:
    """V (4, 4, TH, TW, N, C) = Bᵀ d B for every 4x4 tile d (stride 2) of the padded image;
    with ``tile_rows`` (a, z), of tile rows a..z only.

    image (H, W, N, C) pixel-major; ``rows`` a (4, TH, 2·TW + 2, N, C) work array; ``out`` is
    returned (its (16, TH·TW·N, C) reshape is what the products read). Bᵀ is applied to the
    rows of all tiles at once (4 strided slices of the image), then to their columns.
    """
    h, w = image.shape[:2]
    (ph, pw), (_, _, th, tw) = padding, tiles(h, w, padding)
    a, z = tile_rows or (0, th)
    th = z - a
    padded = padded_image(image, (2 * th + 2, 2 * tw + 2), (ph - 2 * a, pw))
    row_terms = [padded[k:k + 2 * th:2] for k in range(4)]       # (TH, W', N, C) each
    for i in range(4):
        combine(BT[i], row_terms, rows[i])
    for i in range(4):
        col_terms = [rows[i][:, k:k + 2 * tw:2] for k in range(4)]  # (TH, TW, N, C) each
        for j in range(4):
            combine(BT[j], col_terms, out[i, j])
    return out


def input_tiles_adjoint(dV: np.ndarray, image_shape, padding, rows: np.ndarray, out: np.ndarray | None = None,
                        tile_rows: tuple[int, int] | None = None) -> np.ndarray:
    """The transpose of ``input_tiles``: dx (N, C, H, W) from dV (4, 4, TH, TW, N, C).

    Tile (t, s) read padded rows 2t..2t+3 and columns 2s..2s+3, so neighbouring tiles share two
    rows (columns) and their gradients add there. ``rows`` is a (4, TH, 2·TW + 2, N, C) work array.
    dx is written into ``out`` (H, W, N, C) when given; with ``tile_rows`` (a, z) and a > 0,
    the first two rows are added to what ``out`` holds (as ``winograd4.MatrixTiles``' does).
    """
    h, w, n, c = image_shape
    (ph, pw), (_, _, th, tw) = padding, tiles(h, w, padding)
    a, z = tile_rows or (0, th)
    th = z - a
    for i in range(4):  # dR_i[:, 2s + k] += Σ_j BT[j, k]·dV[i, j][:, s]
        rows[i][:, 2 * tw:] = 0
        for k in range(4):
            view = rows[i][:, k:k + 2 * tw:2]
            (combine if k < 2 else add_into)(BT[:, k], dV[i], view)
    dpad = np.empty((2 * th + 2, 2 * tw + 2, n, c), dV.dtype)
    dpad[2 * th:] = 0
    for k in range(4):  # dP[2t + k] += Σ_i BT[i, k]·dR_i[t]
        view = dpad[k:k + 2 * th:2]
        (combine if k < 2 else add_into)(BT[:, k], rows, view)
    out = np.empty((h, w, n, c), dV.dtype) if out is None else out
    start = 2 * a - ph  # dpad's first row in the image
    shared = 2 if a > 0 else 0
    for low, high, add in ((start, start + shared, True), (start + shared, start + len(dpad), False)):
        top, bottom = max(low, 0), min(high, h)
        if top < bottom:
            part = dpad[top - start:bottom - start, pw:pw + w]
            if add:
                out[top:bottom] += part
            else:
                out[top:bottom] = part
    return from_pixel_major(out)


def output_tiles(M: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Y = Aᵀ M A for every tile: M (4, 4, TH, TW, N, F) -> out (OH, OW, N, F), pixel-major.

    The tile's output pixel (a, b) lands at (2t + a, 2s + b); tiles past an odd OH or OW are
    dropped. ``work`` is a (4, 2, TH, TW, N, F) array.
    """
    for i in range(4):
        for b in range(2):
            combine(AT[b], M[i], work[i, b])
    for a in range(2):
        for b in range(2):
            view = out[a::2, b::2]
            combine(AT[a], [s[:view.shape[0], :view.shape[1]] for s in work[:, b]], view)
    return out


def output_tiles_adjoint(dy: np.ndarray, th: int, tw: int, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """The transpose of ``output_tiles``: dM (4, 4, TH, TW, N, F) from dy (OH, OW, N, F).

    dy pixels of tiles past an odd OH or OW count as 0. ``work`` is a (2, 2, TH, TW, N, F) array.
    dM[i, j] = Σ_b AT[b, j]·dS[i, b] with dS[i, b] = Σ_a AT[a, i]·dy[a, b] (dy[a, b]: the tiles'
    output pixels (a, b), a (TH, TW, N, F) slice); Aᵀ's columns 0 and 3 pick one a, so dS[0] and
    dS[3] are slices of dy (with a sign), and only dS[1] and dS[2] are computed.
    """
    oh, ow = dy.shape[:2]
    if (oh, ow) != (2 * th, 2 * tw):
        full = np.zeros((2 * th, 2 * tw, *dy.shape[2:]), dy.dtype)
        full[:oh, :ow] = dy
        dy = full
    corners = [[dy[a::2, b::2] for b in range(2)] for a in range(2)]  # (TH, TW, N, F) each
    for i in range(4):
        a = np.flatnonzero(AT[:, i])
        if len(a) == 1:  # dS[i, b] = AT[a, i]·dy[a, b]: fold the sign into the coefficients
            sign, d_s = AT[a[0], i], corners[a[0]]
        else:
            sign = 1
            d_s = [combine(AT[:, i], [corners[0][b], corners[1][b]], work[i - 1, b]) for b in range(2)]
        for j in range(4):
            combine(sign * AT[:, j], d_s, out[i, j])
    return out


def padded_image(image: np.ndarray, size: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """image (H, W, N, C) inside zeros of (size[0], size[1], N, C), starting at ``offset``
    (a negative offset or a small size crops the image); the image itself when no zero is needed."""
    h, w = image.shape[:2]
    if size == (h, w) and offset == (0, 0):
        return image
    out = np.zeros((*size, *image.shape[2:]), image.dtype)
    (top, left), (bottom, right) = offset, (min(offset[0] + h, size[0]), min(offset[1] + w, size[1]))
    if max(top, 0) < bottom and max(left, 0) < right:
        out[max(top, 0):bottom, max(left, 0):right] = image[max(-top, 0):bottom - top, max(-left, 0):right - left]
    return out


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, padding, buffer, scheme=None) -> tuple[np.ndarray, tuple]:
    """y (N, F, OH, OW) pixel-major, and the cache ``backward`` reads, for a 3x3 stride-1 conv.

    ``buffer(name, shape, dtype)`` returns reused work arrays (Conv2D's scratch); ``scheme`` is
    the tiling: this module, F(2x2, 3x3), by default, or ``winograd4.F4`` / ``winograd5.F5``
    for F(4x4, 3x3) / F(5x5, 3x3)."""
    scheme = scheme or sys.modules[__name__]
    n, c, h, w = x.shape
    f = W.shape[0]
    oh, ow, th, tw = scheme.tiles(h, w, padding)
    side, p = scheme.TILE + 2, th * tw * n
    dtype = np.result_type(x, W)
    V = buffer("V", (side, side, th, tw, n, c), dtype)
    scheme.input_tiles(pixel_major(x).astype(dtype, copy=False), padding, V,
                       buffer("rows", scheme.rows_shape(th, tw, n, c), dtype))
    U, M = tile_products(V.reshape(side * side, p, c), W, b, buffer, scheme.G)
    y = scheme.output_tiles(M.reshape(side, side, th, tw, n, f), np.empty((oh, ow, n, f), dtype),
                            buffer("S", scheme.output_work_shape(th, tw, n, f), dtype))
    return from_pixel_major(y), (x.shape, V, U)


def tile_products(V: np.ndarray, W: np.ndarray, b: np.ndarray, buffer, g: np.ndarray = G):
    """U (16, C, F), the transformed kernels, and M (16, P, F): M[ij] = V[ij]·U[ij], 16 GEMMs
    over the tiles V (16, P, C), with the bias b (F,) added where it belongs (36 of each for
    F(4x4, 3x3)'s ``g``)."""
    slots, p, c = V.shape
    f = W.shape[0]
    U = kernel_transform(W.astype(V.dtype, copy=False), g)
    M = np.matmul(V, U, out=buffer("M", (slots, p, f), V.dtype))
    M[bias_slot(g)] += b
    return U, M


def bias_slot(g: np.ndarray = G) -> int:
    """Where in the flattened product tile the bias goes: M[1, 1], which Aᵀ's all-ones column 1
    sends to every output of its tile with weight 1 (5 of 16; for F(4x4, 3x3) 7 of 36)."""
    return len(g) + 1


def gradient_products(V: np.ndarray, U: np.ndarray, dM: np.ndarray, grads: dict, buffer,
                      need_dx: bool = True, g: np.ndarray = G) -> np.ndarray | None:
    """Fill grads["W"] and grads["b"] from dM (16, P, F); return dV (16, P, C) or None.

        dU[ij] = V[ij]ᵀ·dM[ij]    dW = Gᵀ·dU·G    db = Σ_tiles dM[1, 1]    dV[ij] = dM[ij]·U[ij]ᵀ
    """
    slots, p, c = V.shape
    # NOTE: computed as (dMᵀ·V)ᵀ: OpenBLAS is ~25% faster at that transposed product (one (F, C)
    # result from the long P axis) than at Vᵀ·dM
    dU = np.matmul(dM.transpose(0, 2, 1), V).transpose(0, 2, 1)  # (16, C, F)
    kernel_gradient(dU, grads["W"], g)
    np.matmul(np.ones(p, dM.dtype), dM[bias_slot(g)], out=grads["b"])  # Σ over tiles of M[1, 1]'s gradient
    if not need_dx:
        return None
    return np.matmul(dM, U.transpose(0, 2, 1), out=buffer("dV", (slots, p, c), dM.dtype))


def backward(dy: np.ndarray, cache, padding, grads: dict, buffer, need_dx: bool = True, scheme=None):
    """Fill grads["W"] (F, C, 3, 3) and grads["b"] (F,) from dy (N, F, OH, OW); return dx or None.
    ``scheme`` as in ``forward``."""
    scheme = scheme or sys.modules[__name__]
    x_shape, V, U = cache
    n, c, h, w = x_shape
    f = dy.shape[1]
    _, _, th, tw = scheme.tiles(h, w, padding)
    side, p = scheme.TILE + 2, th * tw * n
    dtype = V.dtype
    dM = scheme.output_tiles_adjoint(pixel_major(dy).astype(dtype, copy=False), th, tw,
                                     buffer("dM", (side, side, th, tw, n, f), dtype),
                                     buffer("dS", scheme.adjoint_work_shape(th, tw, n, f), dtype))
    dV = gradient_products(V.reshape(side * side, p, c), U, dM.reshape(side * side, p, f), grads, buffer, need_dx,
                           scheme.G)
    if dV is None:
        return None
    return scheme.input_tiles_adjoint(dV.reshape(side, side, th, tw, n, c), (h, w, n, c), padding,
                                      buffer("rows", scheme.rows_shape(th, tw, n, c), dtype))
