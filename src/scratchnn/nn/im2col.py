"""Sliding windows as a matrix: im2col, its adjoint col2im, and the output-size arithmetic.

A convolution is one matrix product once every window of the input is laid out as a row:

    x (N, C, H, W)  --im2col-->  cols (OH·OW·N, KH·KW·C)       one row per output pixel
    OH = (H + 2·padding − KH) // stride + 1                      (OW likewise with W, KW)

Rows are ordered (oh, ow, n) and the columns of a row (kh, kw, c). CS231n's ``im2col_indices``
builds the transpose, (C·KH·KW, OH·OW·N): the same (oh, ow, n) windows as columns, with the
kernel entries ordered (c, kh, kw). Any order works as long as the kernel matrix matches it: for
W (F, C, KH, KW) that is ``kernel_matrix(W)`` (KH·KW·C, F).

col2im is the adjoint (transpose) of im2col: it adds every entry of cols back onto the input
pixel it was copied from, so pixels shared by overlapping windows receive the sum. That makes
⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for all x and c, which is exactly what a backward pass needs.

NOTE on memory layout: arrays keep the (N, C, H, W) shape everywhere, but the convolution layers
store them pixel-major, as x.transpose(2, 3, 0, 1) (H, W, N, C) in memory: for one pixel, the C
channels of all N images sit side by side. NumPy runs one tight loop per contiguous stretch of
memory, and every step here moves whole pixels: a window copy, a col2im add or a pooling
comparison is a run of N·C floats (4,096 for a batch of 128 with 32 channels) rather than the
C floats of an (N, H, W, C) layout; with few channels that made pooling 3-4x faster. A GEMM
over rows ordered (oh, ow, n) returns exactly that layout. Any other memory order is read too
(copied to pixel-major first); the answers are the same.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError, ShapeError


def as_pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or an (h, w) pair of ints >= ``minimum`` as a (h, w) tuple; ConfigError otherwise."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_is_int(v) and v >= minimum for v in pair):
        raise ConfigError(f"{name} must be an int >= {minimum} or a pair of them (height, width), got {value!r}")
    return int(pair[0]), int(pair[1])


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def conv_output_shape(height: int, width: int, kernel_size, stride=1, padding=0) -> tuple[int, int]:
    """(OH, OW) = ((H + 2·ph − KH) // sh + 1, (W + 2·pw − KW) // sw + 1).

    Raises ShapeError when the window is larger than the padded input (it fits nowhere).
    A stride that does not divide evenly drops the last rows/columns, as in PyTorch and Keras.

    >>> conv_output_shape(28, 28, 3)  # 3x3, no padding: (28 − 3) // 1 + 1
    (26, 26)
    >>> conv_output_shape(28, 28, 5, padding=2)  # LeNet-5's first layer keeps the size
    (28, 28)
    >>> conv_output_shape(5, 6, 3, stride=2, padding=1)  # (5 + 2 − 3) // 2 + 1, (6 + 2 − 3) // 2 + 1
    (3, 3)
    """
    (kh, kw), (sh, sw) = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    ph, pw = as_pair(padding, "padding", minimum=0)
    if kh > height + 2 * ph or kw > width + 2 * pw:
        raise ShapeError(f"a {kh}x{kw} window does not fit a {height}x{width} input with padding "
                         f"{ph}x{pw}; use a smaller kernel, more padding or a larger input")
    return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1


def kernel_matrix(W: np.ndarray) -> np.ndarray:
    """W (F, C, KH, KW) -> (KH·KW·C, F), rows in im2col's (kh, kw, c) column order (a copy)."""
    f = W.shape[0]
    return W.transpose(2, 3, 1, 0).reshape(-1, f)


def kernel_from_matrix(matrix: np.ndarray, kernel_shape: tuple[int, int, int, int],
                       out: np.ndarray | None = None) -> np.ndarray:
    """The inverse of ``kernel_matrix``: (KH·KW·C, F) -> (F, C, KH, KW), written into ``out``."""
    f, c, kh, kw = kernel_shape
    w = matrix.reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
    if out is None:
        return w.copy()
    out[...] = w
    return out


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, out: np.ndarray | None = None) -> np.ndarray:
    """Every KH×KW window of x (N, C, H, W) as a row: cols (OH·OW·N, KH·KW·C).

    cols[(oh, ow, n), (kh, kw, c)] = x_padded[n, c, oh·sh + kh, ow·sw + kw], with zeros around
    x when padding > 0. ``out``, a (OH·OW·N, KH·KW·C) array of x's dtype, is filled instead of
    allocating (layers reuse one buffer between batches of the same shape). It may be C- or
    Fortran-ordered, or the first columns of a wider such matrix (Conv2D keeps a column of
    ones beside them): with few channels (C < OW) Fortran order copies runs of OW·N floats
    instead of C, and BLAS reads either order without a copy.
    """
    n, c, h, w = _check_4d(x, "im2col")
    (kh, kw), (sh, sw) = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    ph, pw = as_pair(padding, "padding", minimum=0)
    oh, ow = conv_output_shape(h, w, (kh, kw), (sh, sw), (ph, pw))
    shape = (oh * ow * n, kh * kw * c)
    if out is None:
        out = np.empty(shape, x.dtype)
    elif out.shape != shape or not (out.strides[0] == out.itemsize or out.strides[1] == out.itemsize):
        raise ShapeError(f"im2col out must be a C- or Fortran-ordered matrix of shape {shape} (or the first "
                         f"columns of one), got shape {out.shape} with strides {out.strides}")
    image = pixel_major(x)  # (H, W, N, C)
    if ph or pw:
        padded = np.zeros((h + 2 * ph, w + 2 * pw, n, c), x.dtype)
        padded[ph:ph + h, pw:pw + w] = image
        image = padded
    # (H', W', N, C, KH, KW) windows at every position (a view), then every stride-th one.
    windows = sliding_window_view(image, (kh, kw), axis=(0, 1))[::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)
    # The one copy. NOTE: reshape splits each axis of a matrix with a unit stride as a view;
    # were it ever a copy, the windows would land there, so that is checked.
    rows = out.reshape(oh, ow, n, kh, kw, c)
    if not np.may_share_memory(rows, out):
        raise ShapeError(f"im2col out with strides {out.strides} cannot be filled in place")
    np.copyto(rows, windows)
    return out


def col2im(cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel_size, stride=1,
           padding=0) -> np.ndarray:
    """The adjoint of ``im2col``: add each row's KH·KW·C numbers back onto their input pixels.

    cols holds OH·OW·N·KH·KW·C numbers in im2col's order: a (OH·OW·N, KH·KW·C) matrix, or any
    array viewed as (OH, OW, N, KH, KW, C) whatever its memory order. Returns dx with shape
    input_shape = (N, C, H, W), pixel-major in memory; the padding border is dropped.

    Loops over the KH·KW kernel offsets: each is one strided add of an (OH, OW, N, C) block.
    """
    n, c, h, w = (int(s) for s in input_shape)
    (kh, kw), (sh, sw) = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    ph, pw = as_pair(padding, "padding", minimum=0)
    oh, ow = conv_output_shape(h, w, (kh, kw), (sh, sw), (ph, pw))
    if cols.size != n * oh * ow * kh * kw * c:
        raise ShapeError(f"col2im expects {n * oh * ow} x {kh * kw * c} numbers for input {tuple(input_shape)}, "
                         f"got cols of shape {cols.shape}")
    blocks = cols.reshape(oh, ow, n, kh, kw, c)
    dx = np.zeros((h + 2 * ph, w + 2 * pw, n, c), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += blocks[:, :, :, i, j]
    return from_pixel_major(dx[ph:ph + h, pw:pw + w])


def pixel_major(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) as its (H, W, N, C) view: no copy when x is stored pixel-major, else a copy."""
    return np.ascontiguousarray(x.transpose(2, 3, 0, 1))


def from_pixel_major(image: np.ndarray) -> np.ndarray:
    """(H, W, N, C) memory as an (N, C, H, W) array (a view): what the layers pass on."""
    return image.transpose(2, 3, 0, 1)


def _check_4d(x: np.ndarray, what: str) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ShapeError(f"{what} expects images of shape (N, C, H, W), got an array of shape {x.shape}")
    return x.shape
